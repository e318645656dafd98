"""The shipped contract suites, run against this project's adapter and against the
in-memory adapters that ship in the same wheel."""

from __future__ import annotations

from pathlib import Path

import pytest
from toy_conversations import DictConversationStore

from adapters.memory.index import InMemoryIndex
from adapters.testing.contracts.conversation_store import ConversationStoreContract, StoreFactory
from adapters.testing.contracts.vector_index import VectorIndexContract
from rag_core.ports import ConversationStore, VectorIndex
from rag_core.testing import FakeClock, SequentialIds


class TestDictConversationStore(ConversationStoreContract):
    @pytest.fixture
    def make_store(self) -> StoreFactory:
        def make(clock: FakeClock, ids: SequentialIds) -> ConversationStore:
            return DictConversationStore(clock, ids)

        return make


class TestShippedInMemoryIndex(VectorIndexContract):
    async def make_index(self, tmp_path: Path) -> VectorIndex:
        return InMemoryIndex()


def test_the_suites_asserts_are_rewritten() -> None:
    # adapters.testing.contracts registers its suites with pytest's assertion
    # rewriting, so a failing contract test says which values differed.
    from adapters.testing.contracts import conversation_store

    assert "@py_builtins" in vars(conversation_store)
