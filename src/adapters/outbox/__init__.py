"""The conversation outbox: signed-in users' turns survive a database outage.

:class:`OutboxConversationStore` decorates a ConversationStore: writes the database
cannot take are kept in a local SQLite file and written, in order and once, when it is
back. Its :meth:`~OutboxConversationStore.chat_view` keeps chat answering meanwhile.
"""

from adapters.outbox.chat_view import ChatView
from adapters.outbox.ids import PresetIds
from adapters.outbox.store import OutboxConversationStore

__all__ = ["ChatView", "OutboxConversationStore", "PresetIds"]
