# The contract suites live in the shipped testing kit (rag_core.testing.contracts),
# which registers them for pytest's assertion rewriting itself.
