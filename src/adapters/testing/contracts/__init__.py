"""The contract suite of every port, as pytest base classes.

An adapter passes its port's contract by subclassing the suite (as ``Test...``) and
providing the fixture the suite's docstring names; the subclass then runs every test
of the suite against it::

    from adapters.testing.contracts.vector_index import VectorIndexContract

    class TestMyIndex(VectorIndexContract):
        async def make_index(self, tmp_path):
            return MyIndex()

The suites are ``async``: they need pytest-asyncio with ``asyncio_mode = "auto"``.

| module | suite(s) | the subclass provides |
|---|---|---|
| ``vector_index`` | ``VectorIndexContract`` | ``make_index(tmp_path)`` |
| ``conversation_store`` | ``ConversationStoreContract`` | fixture ``make_store`` (clock, ids -> store) |
| ``account_store`` | ``AccountStoreContract`` | fixture ``store`` |
| ``content_cache`` | ``ContentCacheContract`` | fixture ``cache`` |
| ``models`` | ``EmbedderContract``, ``ChatModelContract`` | fixtures ``embedder``, ``make_model`` |
| ``question_log`` | ``QuestionLogContract`` | fixture ``log`` |
"""

import pytest

# Before the suites are imported, so their asserts get pytest's detailed messages.
pytest.register_assert_rewrite(
    "adapters.testing.contracts.account_store",
    "adapters.testing.contracts.content_cache",
    "adapters.testing.contracts.conversation_store",
    "adapters.testing.contracts.models",
    "adapters.testing.contracts.question_log",
    "adapters.testing.contracts.vector_index",
)
