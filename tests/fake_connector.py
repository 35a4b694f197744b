"""A stand-in for the Bot Framework connector (the serviceUrl in Teams activities), on loopback for tests.

Records what the bot posts to ``/v3/conversations/{id}/activities[/{replyToId}]`` and answers like the real
service (``{"id": ...}``); a conversation can be made to fail with a status, as when the bot was removed, or to
hold its answer until the test lets it go, as a slow connector would.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass(frozen=True)
class Posted:
    """One activity the bot sent."""

    conversation_id: str
    reply_to_id: str | None
    activity: dict[str, Any]
    authorization: bool
    """Whether the request carried an Authorization header (never its value)."""

    @property
    def type(self) -> str:
        """The activity type: message, typing ..."""
        return self.activity.get("type", "")


@dataclass
class FakeConnector:
    """The connector's REST surface a bot uses to answer; start with ``await connector.start()``."""

    posted: list[Posted] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    """conversation id -> HTTP status to answer with instead of accepting the activity."""
    holds: dict[str, asyncio.Event] = field(default_factory=dict)
    """conversation id -> an event; a post to it is recorded only once the event is set, then answered."""
    _transports: list[Any] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _server: TestServer | None = None

    async def start(self) -> str:
        """Listen on a free loopback port; returns the serviceUrl to put in activities."""
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._post)
        app.router.add_post("/v3/conversations/{conversation}/activities/{reply_to}", self._post)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return str(self._server.make_url("/"))

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            await self._server.close()

    def open_connections(self) -> int:
        """How many of the connections the bot opened to post are still open (kept alive or in use)."""
        return sum(1 for transport in {id(t): t for t in self._transports}.values() if not transport.is_closing())

    def messages(self, conversation_id: str | None = None) -> list[Posted]:
        """Posted message activities (typing indicators left out), optionally for one conversation."""
        return [p for p in self.posted
                if p.type == "message" and (conversation_id is None or p.conversation_id == conversation_id)]

    async def _post(self, request: web.Request) -> web.Response:
        conversation = request.match_info["conversation"]
        self._transports.append(request.transport)
        hold = self.holds.get(conversation)
        if hold is not None:
            await hold.wait()
        status = self.failures.get(conversation)
        if status is not None:
            return web.json_response({"error": {"code": "BotNotInConversationRoster",
                                                "message": "The bot is not part of the conversation roster."}},
                                     status=status)
        activity = await request.json()
        self.posted.append(Posted(conversation_id=conversation, reply_to_id=request.match_info.get("reply_to"),
                                  activity=activity, authorization="Authorization" in request.headers))
        return web.json_response({"id": f"1:{next(self._ids)}"}, status=200)
