import pytest

# The reusable contract suites are plain modules imported by the test modules;
# register them so their asserts get pytest's detailed failure messages.
pytest.register_assert_rewrite("conversation_store_contract", "vector_index_contract")
