"""`vraagbaak serve`: one aiohttp server for the channels' webhooks, the channels, and the escalation worker."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from bot.channels.base import Channel
from bot.worker import EscalationWorker
from retrieval.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerSettings:
    """Where the HTTP server listens (``VRAAGBAAK_HOST``, ``VRAAGBAAK_PORT``)."""

    host: str = "127.0.0.1"
    port: int = 3978

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ServerSettings":
        """Read the listen address."""
        env = os.environ if env is None else env
        port = env.get("VRAAGBAAK_PORT") or "3978"
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"VRAAGBAAK_PORT must be a port number, got {port!r}")
        return cls(host=env.get("VRAAGBAAK_HOST") or "127.0.0.1", port=int(port))


def build_web_app(channels: list[Channel]) -> web.Application:
    """The aiohttp application with every channel's routes and a health check."""
    app = web.Application(client_max_size=256 * 1024)  # chat payloads are small; refuse anything big

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "channels": [c.name for c in channels]})

    app.router.add_get("/healthz", health)
    for channel in channels:
        app.add_routes(channel.routes())
    return app


async def run_server(*, channels: list[Channel], worker: EscalationWorker, settings: ServerSettings,
                     stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set; channels start after the HTTP server listens and stop before it closes."""
    runner = web.AppRunner(build_web_app(channels))
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    logger.info("listening on %s:%d with channels %s", settings.host, settings.port, [c.name for c in channels])
    started: list[Channel] = []
    try:
        for channel in channels:
            await channel.start()
            started.append(channel)
        await worker.run(stop)
    finally:
        for channel in reversed(started):
            try:
                await channel.stop()
            except Exception:  # stopping one channel must not keep the others running
                logger.exception("channel %s did not stop cleanly", channel.name)
        await runner.cleanup()
