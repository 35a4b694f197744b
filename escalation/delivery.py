"""The port through which an expert's answer goes back to a chat channel (each channel implements it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from escalation.attachments import AnswerFile
from escalation.errors import EscalationError


class DeliveryError(EscalationError):
    """A channel could not deliver an answer; ``permanent`` when retrying is pointless (user blocked the bot)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Deliverer(Protocol):
    """Pushes a text, and the files that go with it, into a chat, given the channel's stored reply address."""

    def deliver(self, reply_address: dict[str, Any], text: str, files: Sequence[AnswerFile] = ()) -> None:
        """Send, or raise DeliveryError."""
        ...
