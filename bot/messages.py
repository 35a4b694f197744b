"""Neutral message types between the channels and the helpdesk core (no SDK types)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from bot.texts import ASK_EXPERT_LABEL, citation_date


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
    CHOICE = "choice"
    """An answer in a guided walk (`/procedure`): the button sends ``Action.command`` back as a message."""


ACTION_LABELS = {
    ActionKind.FEEDBACK_UP: "👍",
    ActionKind.FEEDBACK_DOWN: "👎",
    ActionKind.ASK_EXPERT: ASK_EXPERT_LABEL,
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
    answer_arrives: str | None = None
    """Dutch, completing "Het antwoord krijg je ...": where an expert's later answer reaches the officer, set by a
    channel that cannot write into this conversation afterwards (the console). None: "hier in dit gesprek"."""
    shared: bool = False
    """A group chat or channel: colleagues read every reply, so nothing of one officer's own is listed there."""


@dataclass(frozen=True)
class Press:
    """A button pressed under an earlier reply, as every channel hands it to the core (each channel's codec turns
    its own payload into this and back: ``telegram_render.parse_callback_data``, ``teams_cards.parse_submit``)."""

    kind: ActionKind
    reply_id: str | None = None
    """The reply the button was under (votes and "Vraag een expert")."""
    command: str | None = None
    """What a walk's choice sends, as if typed ("/procedure markt 2")."""


@dataclass(frozen=True)
class Escalation:
    """What opening a ticket gave: its number (None when no ticket could be made) and the Dutch sentence on what
    happens next."""

    ticket: int | None
    next_step: str


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

    @property
    def date_text(self) -> str | None:
        """How the date is said: a template's version, any other source's "geldig op" date."""
        if not self.effective_date:
            return None
        return citation_date(self.kind, self.effective_date)

    def line(self) -> str:
        """One line of the source list: title, label, effective date (a template's version), link."""
        parts = [self.title, self.label, self.date_text, self.url]
        return f"[{self.n}] " + " — ".join(p for p in parts if p)


@dataclass(frozen=True)
class Action:
    """A suggested next step attached to a reply."""

    kind: ActionKind
    reply_id: str
    text: str | None = None
    """The button text of a CHOICE."""
    command: str | None = None
    """What a CHOICE button sends back, as if typed ("/procedure markt 2")."""

    @property
    def label(self) -> str:
        """The Dutch button text."""
        return self.text or ACTION_LABELS[self.kind]


class StoredFile(Protocol):
    """What the helpdesk knows of a file it hands out (escalation's AnswerFile has this shape)."""

    @property
    def ref(self) -> str: ...  # noqa: D102 - the handle a signed download link names
    @property
    def name(self) -> str: ...  # noqa: D102
    @property
    def content_type(self) -> str: ...  # noqa: D102
    @property
    def size(self) -> int: ...  # noqa: D102
    @property
    def path(self) -> Path: ...  # noqa: D102


@dataclass(frozen=True)
class FileOffer:
    """A file a reply hands to the officer: Telegram sends it, Teams links to it, the console prints its path."""

    ref: str
    """Opaque handle ("attachment:12") that a signed download link names; resolved by the server, never a path."""
    name: str
    """The name the officer sees and saves it under (already cleaned)."""
    content_type: str
    size: int
    path: Path
    note: str | None = None
    """Dutch, what it is: "Bijlage van de expert bij VB-12", "Sjabloon, versie van 2026-01-15"."""

    @classmethod
    def of(cls, file: StoredFile, note: str | None = None) -> "FileOffer":
        """An offer of a stored file."""
        return cls(ref=file.ref, name=file.name, content_type=file.content_type, size=file.size, path=file.path,
                   note=note)

    @property
    def size_text(self) -> str:
        """"840 kB", "2,3 MB"."""
        if self.size < 1024 * 1024:
            return f"{max(1, round(self.size / 1024))} kB"
        return f"{self.size / (1024 * 1024):.1f} MB".replace(".", ",")


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
    files: tuple[FileOffer, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `vraagbaak ask --json`."""
        return {"decision": str(self.decision), "text": self.text,
                "citations": [c.as_dict() for c in self.citations], "ticket": self.ticket,
                "actions": [str(a.kind) for a in self.actions], "reply_id": self.reply_id,
                "files": [{"name": f.name, "size": f.size, "path": str(f.path), "note": f.note} for f in self.files]}
