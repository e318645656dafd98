# The contract suites live in the shipped testing kit (adapters.testing.contracts),
# which registers them for pytest's assertion rewriting itself.

# tests/downstream is a separate project with its own pyproject: test_downstream.py
# builds this project's wheel and runs that project's tests against it, in a venv of
# its own, never in this session.
collect_ignore = ["downstream"]
