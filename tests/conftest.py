import pytest

# The reusable contract suites are plain modules imported by the test modules;
# register them so their asserts get pytest's detailed failure messages.
pytest.register_assert_rewrite(
    "account_store_contract",
    "content_cache_contract",
    "conversation_store_contract",
    "model_contract",
    "vector_index_contract",
)
