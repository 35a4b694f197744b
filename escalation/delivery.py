"""The port through which an expert's answer goes back to a chat channel (each channel implements it)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from escalation.attachments import AnswerFile
from escalation.errors import EscalationError


class DeliveryError(EscalationError):
    """A channel could not deliver an answer; ``permanent`` when retrying is pointless (user blocked the bot)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Deliverer(Protocol):
    """Pushes an expert's answer, and the files that go with it, into a chat, given the channel's stored reply
    address."""

    async def deliver(self, reply_address: dict[str, Any], answer: ExpertAnswer,
                      files: Sequence[AnswerFile] = ()) -> None:
        """Send on the running event loop (a serving channel's own), or raise DeliveryError."""
        ...


@dataclass(frozen=True)
class ExpertAnswer:
    """An expert's answer on its way back to the officer, as data: each channel words and shows it (in Dutch, in
    ``bot/texts.py``), so the escalation service holds no text an officer reads."""

    ticket: int
    question: str
    answer: str
    """Cut at a paragraph or sentence end when longer than a chat message allows (then ``truncated``)."""
    expert: str | None = None
    """The expert's name when the expert the ticket went to answered; None for someone else of the pool."""
    truncated: bool = False
    refused: tuple[str, ...] = ()
    """Attachments the expert sent that are not passed on."""
    wording: str | None = None
    """The whole text of an answer queued by a version that stored it worded: shown as it is."""

    @property
    def tag(self) -> str:
        return f"VB-{self.ticket}"

    def stored(self) -> str:
        """The form kept in the delivery queue until the answer is delivered."""
        return json.dumps({"question": self.question, "answer": self.answer, "expert": self.expert,
                           "truncated": self.truncated, "refused": list(self.refused)}, ensure_ascii=False)

    @classmethod
    def from_stored(cls, ticket: int, text: str) -> "ExpertAnswer":
        """Read back ``stored()``; anything else is the worded text of an older version."""
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("answer"), str):
            return cls(ticket=ticket, question="", answer=text, wording=text if text.strip() else None)
        return cls(ticket=ticket, question=str(data.get("question") or ""), answer=data["answer"],
                   expert=data.get("expert") if isinstance(data.get("expert"), str) else None,
                   truncated=data.get("truncated") is True,
                   refused=tuple(str(r) for r in data.get("refused") or () if isinstance(r, str)))
