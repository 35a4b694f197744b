"""Neutral message types between the channels and the helpdesk core (no SDK types)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Decision(StrEnum):
    """What the helpdesk decided to do with a question."""

    ANSWER = "answer"
    CLARIFY = "clarify"
    ESCALATE = "escalate"
    OUT_OF_SCOPE = "out_of_scope"
    """Not about public procurement (or anything else the corpus covers)."""
    NOT_FOUND = "not_found"
    """About procurement, but no source in the corpus answers it: said plainly, with the offer of an expert."""


class ActionKind(StrEnum):
    """Follow-up actions a channel can render as buttons or commands."""

    FEEDBACK_UP = "feedback_up"
    FEEDBACK_DOWN = "feedback_down"
    ASK_EXPERT = "ask_expert"


ACTION_LABELS = {
    ActionKind.FEEDBACK_UP: "👍",
    ActionKind.FEEDBACK_DOWN: "👎",
    ActionKind.ASK_EXPERT: "Vraag een expert",
}


@dataclass(frozen=True)
class Incoming:
    """A message from an officer, as any channel hands it to the core."""

    channel: str
    """"console", "telegram", "teams"."""
    conversation_id: str
    """Stable per chat; keys the short conversation context."""
    user_id: str
    """The channel's user id; pseudonymised before it is stored."""
    text: str
    user_name: str | None = None
    reply_address: dict[str, Any] | None = None
    """Opaque data the channel needs to write back later (chat id, ConversationReference)."""
    message_id: str | None = None
    answer_arrives: str | None = None
    """Dutch, completing "Het antwoord krijg je ...": where an expert's later answer reaches the officer, set by a
    channel that cannot write into this conversation afterwards (the console). None: "hier in dit gesprek"."""


@dataclass(frozen=True)
class Citation:
    """A numbered source shown under an answer; ``n`` is the [n] marker in the text."""

    n: int
    title: str
    label: str | None
    url: str | None
    kind: str
    effective_date: str | None
    chunk_id: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `vraagbaak ask --json`."""
        return {"n": self.n, "title": self.title, "label": self.label, "url": self.url, "kind": self.kind,
                "effective_date": self.effective_date}

    def line(self) -> str:
        """One line of the source list: title, label, effective date, link."""
        parts = [self.title, self.label, f"geldig op {self.effective_date}" if self.effective_date else None,
                 self.url]
        return f"[{self.n}] " + " — ".join(p for p in parts if p)


@dataclass(frozen=True)
class Action:
    """A suggested next step attached to a reply."""

    kind: ActionKind
    reply_id: str

    @property
    def label(self) -> str:
        """The Dutch button text."""
        return ACTION_LABELS[self.kind]


@dataclass(frozen=True)
class Reply:
    """What the helpdesk answers; channels only render it."""

    text: str
    """Dutch text; [n] markers refer to ``citations``; ends with a next step."""
    decision: Decision
    reply_id: str
    citations: tuple[Citation, ...] = ()
    actions: tuple[Action, ...] = ()
    ticket: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `vraagbaak ask --json`."""
        return {"decision": str(self.decision), "text": self.text,
                "citations": [c.as_dict() for c in self.citations], "ticket": self.ticket,
                "actions": [str(a.kind) for a in self.actions], "reply_id": self.reply_id}
