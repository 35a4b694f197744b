"""What a chat channel provides to the server: HTTP routes, a lifecycle, and proactive delivery."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from aiohttp import web

from escalation.attachments import AnswerFile
from escalation.delivery import ExpertAnswer


class Channel(Protocol):
    """A chat platform adapter around the helpdesk core; the only place its SDK is imported."""

    name: str
    """Channel name as stored in Incoming.channel and in tickets ("telegram", "teams")."""

    def routes(self) -> list[web.RouteDef]:
        """Endpoints this channel serves on the shared aiohttp server (webhooks); may be empty."""
        ...

    async def start(self) -> None:
        """Begin receiving (e.g. start long polling); called once the HTTP server is up."""
        ...

    async def stop(self) -> None:
        """Stop receiving and release connections."""
        ...

    async def deliver(self, reply_address: dict[str, Any], answer: ExpertAnswer,
                      files: Sequence[AnswerFile] = ()) -> None:
        """Push an expert's answer into a chat, on the event loop the channel serves on (``escalation.delivery``).

        Raise ``escalation.delivery.DeliveryError`` (permanent=True when the user blocked the bot or left).
        """
        ...
