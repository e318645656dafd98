"""The prompts: a grounded answer over numbered sources, and the rewrite of a
follow-up question into a standalone one for retrieval."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from rag_core.conversations import Message, Role
from rag_core.ports import ChatMessage

CHARS_PER_TOKEN = 4  # a conservative estimate for English prose and code

ANSWER_SYSTEM = """You are the assistant of a documentation website. Answer the reader's \
question using only the numbered sources below. Cite every claim with the number of its \
source in square brackets, like [1] or [2][3], right after the claim. Never cite a number \
that is not listed. If the sources do not contain the answer, say so briefly instead of \
guessing. Keep code, commands and technical terms exactly as they appear. Answer in the \
language of the question, concisely, in Markdown."""

SELECTION_NOTE = """Source [1] is the passage the reader selected on the page: it is the \
primary source for this question."""

REWRITE_SYSTEM = """Rewrite the reader's last question as one standalone search query that \
can be understood without the conversation. Resolve pronouns and references using the \
conversation. Reply with the query only, no explanation."""


@attrs.frozen(slots=True)
class NumberedSource:
    number: int
    label: str  # "Title > Heading (/route)" or "Selected text"
    text: str


@attrs.frozen(slots=True)
class PromptBudget:
    """Token budgets (estimated at CHARS_PER_TOKEN) for each part of the prompt."""

    source_tokens: int = 700  # per source
    history_tokens: int = 1_500


def grounded_messages(
    question: str,
    sources: Sequence[NumberedSource],
    history: Sequence[Message] = (),
    *,
    has_selection: bool = False,
    budget: PromptBudget | None = None,
) -> list[ChatMessage]:
    """System instructions with the numbered sources, the bounded history, then the question."""
    budget = budget or PromptBudget()
    limit = budget.source_tokens * CHARS_PER_TOKEN
    blocks = [f"[{s.number}] {s.label}\n{_clip(s.text, limit)}" for s in sources]
    system = ANSWER_SYSTEM + ("\n\n" + SELECTION_NOTE if has_selection else "")
    system += "\n\nSources:\n\n" + "\n\n".join(blocks)
    return [
        ChatMessage(Role.SYSTEM, system),
        *bounded_history(history, budget.history_tokens),
        ChatMessage(Role.USER, question),
    ]


def rewrite_messages(question: str, history: Sequence[Message]) -> list[ChatMessage]:
    turns = "\n".join(f"{m.role.value}: {m.content}" for m in bounded_history(history, 600))
    return [
        ChatMessage(Role.SYSTEM, REWRITE_SYSTEM),
        ChatMessage(Role.USER, f"Conversation:\n{turns}\n\nLast question: {question}"),
    ]


def bounded_history(history: Sequence[Message], max_tokens: int) -> list[ChatMessage]:
    """The most recent user/assistant messages that fit in ``max_tokens``, oldest first."""
    kept: list[ChatMessage] = []
    used = 0
    for message in reversed(history):
        if message.role is Role.SYSTEM:
            continue
        cost = len(message.content) // CHARS_PER_TOKEN + 4
        if used + cost > max_tokens:
            break
        used += cost
        kept.append(ChatMessage(message.role, message.content))
    kept.reverse()
    return kept


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit("\n", 1)[0] + "\n…"
