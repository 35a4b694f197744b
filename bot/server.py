"""`vraagbaak serve`: one aiohttp server for the channels' webhooks, the channels, and the escalation worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from bot.channels.base import Channel
from bot.worker import EscalationWorker
from common.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerSettings:
    """Where the HTTP server listens (``VRAAGBAAK_HOST``, ``VRAAGBAAK_PORT``), the address users reach it at
    (``VRAAGBAAK_PUBLIC_URL``, for download links) and how long such a link works (``VRAAGBAAK_DOWNLOAD_DAYS``)."""

    host: str = "127.0.0.1"
    port: int = 3978
    public_url: str | None = None
    download_days: float = 14.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ServerSettings":
        """Read the listen address and the public address."""
        port = env.get("VRAAGBAAK_PORT") or "3978"
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"VRAAGBAAK_PORT must be a port number, got {port!r}")
        public = (env.get("VRAAGBAAK_PUBLIC_URL") or "").strip() or None
        if public is not None:
            parts = urlsplit(public)
            if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
                raise ConfigError(f"VRAAGBAAK_PUBLIC_URL must be the server's address as users reach it, such as "
                                  f"https://vraagbaak.example.be, got {public!r}")
            if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
                # A download link is a bearer token: it must not travel in clear text.
                raise ConfigError(f"VRAAGBAAK_PUBLIC_URL must be https:// (http only for localhost), got {public!r}")
        days = env.get("VRAAGBAAK_DOWNLOAD_DAYS") or "14"
        try:
            download_days = float(days)
        except ValueError:
            download_days = 0.0
        if not 0 < download_days <= 365:
            raise ConfigError(f"VRAAGBAAK_DOWNLOAD_DAYS must be a number of days from 1 to 365, got {days!r}")
        return cls(host=env.get("VRAAGBAAK_HOST") or "127.0.0.1", port=int(port), public_url=public,
                   download_days=download_days)


READY_TIMEOUT_SECONDS = 5.0
"""A readiness check that takes longer counts as failed: a proxy should stop sending traffic here."""
READY_INFO = frozenset({"serving"})
"""Fields of the readiness answer that inform (the index generation answered from) rather than check."""


def build_web_app(channels: list[Channel], extra_routes: Sequence[web.RouteDef] = (), *,
                  ready: Callable[[], dict[str, str]] | None = None) -> web.Application:
    """The aiohttp application with every channel's routes, ``extra_routes`` (downloads), a health check (the
    process answers) and a readiness check (``ready``: what each dependency says, "ok" when it is fine)."""
    app = web.Application(client_max_size=256 * 1024)  # chat payloads are small; refuse anything big

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "channels": [c.name for c in channels]})

    async def readiness(_: web.Request) -> web.Response:
        checks = {"server": "ok"}
        if ready is not None:
            try:
                checks.update(await asyncio.wait_for(asyncio.to_thread(ready), READY_TIMEOUT_SECONDS))
            except Exception as exc:  # noqa: BLE001 - a check that fails or hangs means: not ready
                checks["checks"] = f"failed: {type(exc).__name__}"
        ok = all(value == "ok" for name, value in checks.items() if name not in READY_INFO)
        return web.json_response({"status": "ready" if ok else "not ready", **checks}, status=200 if ok else 503)

    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", readiness)
    app.add_routes(list(extra_routes))
    for channel in channels:
        app.add_routes(channel.routes())
    return app


async def run_server(*, channels: list[Channel], worker: EscalationWorker, settings: ServerSettings,
                     stop: asyncio.Event, extra_routes: Sequence[web.RouteDef] = (),
                     ready: Callable[[], dict[str, str]] | None = None) -> None:
    """Serve until ``stop`` is set; channels start after the HTTP server listens and stop before it closes."""
    runner = web.AppRunner(build_web_app(channels, extra_routes, ready=ready))
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
