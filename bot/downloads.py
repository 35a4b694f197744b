"""Signed, expiring download links for files the helpdesk hands out (an expert's attachment, later templates).

A link names a file by an opaque reference (``attachment:12``) and an expiry, both covered by an HMAC-SHA256 under
a key of the data dir; ``vraagbaak serve`` hands out the file only for a valid, unexpired signature, and never
looks at anything else in the URL. The route lives on the same server as the channels' webhooks, so a Teams user
reaches it at ``VRAAGBAAK_PUBLIC_URL``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from bot.texts import DOWNLOAD_EXPIRED, DOWNLOAD_GONE, DOWNLOAD_INVALID, DOWNLOAD_UNAVAILABLE
from escalation.attachments import safe_name

logger = logging.getLogger(__name__)

ROUTE = "/downloads/{token}/{name}"
MAX_TOKEN_CHARS = 400
DEFAULT_TTL_SECONDS = 14 * 86400.0
"""Two weeks: long enough to open an expert's answer after a holiday, short enough that a forwarded link dies."""


@dataclass(frozen=True)
class Download:
    """What a reference resolves to: the file on disk, the name it is offered under, its content type."""

    path: Path
    name: str
    content_type: str


@dataclass(frozen=True)
class DownloadLinks:
    """Signs and checks download links under ``base_url`` (the server as users reach it)."""

    key: bytes = field(repr=False)
    base_url: str
    ttl_seconds: float = DEFAULT_TTL_SECONDS
    clock: Callable[[], float] = time.time

    def url(self, ref: str, name: str) -> tuple[str, float]:
        """A link to ``ref`` offered as ``name``, and when it expires (epoch seconds)."""
        expires = int(self.clock() + self.ttl_seconds)
        payload = _b64(json.dumps({"r": ref, "e": expires}, separators=(",", ":")).encode())
        token = f"{payload}.{_b64(self._mac(payload))}"
        return (f"{self.base_url.rstrip('/')}/downloads/{token}/{urllib.parse.quote(name, safe='')}",
                float(expires))

    def verify(self, token: str) -> tuple[str | None, str]:
        """(the reference, "") for a valid, unexpired token; (None, "invalid" | "expired") otherwise."""
        if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            return None, "invalid"
        payload, mac = token.split(".")
        try:
            given = _unb64(mac)
        except ValueError:
            return None, "invalid"
        if not hmac.compare_digest(given, self._mac(payload)):
            return None, "invalid"  # checked before anything of the payload is read
        try:
            data = json.loads(_unb64(payload))
        except ValueError:
            return None, "invalid"
        if not isinstance(data, dict) or not isinstance(data.get("r"), str) or not isinstance(data.get("e"), int):
            return None, "invalid"
        if data["e"] < self.clock():
            return None, "expired"
        return data["r"], ""

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self.key, b"vraagbaak-download\x00" + payload.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or len(text) > MAX_TOKEN_CHARS:
        raise ValueError("bad token part")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_PAGE = ("<!doctype html><html lang=\"nl\"><meta charset=\"utf-8\"><title>Vraagbaak</title>"
         "<body><p>{text}</p></body></html>")


def download_routes(links: DownloadLinks, resolve: Callable[[str], Download | None]) -> list[web.RouteDef]:
    """The GET route that serves a file for a valid link (Dutch pages for the officer otherwise)."""

    async def download(request: web.Request) -> web.StreamResponse:
        ref, problem = links.verify(request.match_info["token"])
        if ref is None:
            logger.info("download refused: %s link", problem)
            return _page(DOWNLOAD_EXPIRED if problem == "expired" else DOWNLOAD_INVALID,
                         410 if problem == "expired" else 403)
        def lookup() -> Download | None:
            found = resolve(ref)
            return found if found is not None and found.path.is_file() else None

        try:
            # The database and the disk block: not on the loop that also answers Teams and Telegram.
            download = await asyncio.to_thread(lookup)
        except Exception:  # noqa: BLE001 - a database hiccup gets a page, not a traceback
            logger.exception("download of %s could not be resolved", ref)
            return _page(DOWNLOAD_UNAVAILABLE, 503)
        if download is None:
            return _page(DOWNLOAD_GONE, 404)
        name = safe_name(download.name)
        quoted = urllib.parse.quote(name, safe="")
        ascii_name = re.sub(r'[^A-Za-z0-9 ._()-]', "_", name)
        return web.FileResponse(download.path, headers={
            "Content-Type": download.content_type,
            "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quoted}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
            "Referrer-Policy": "no-referrer",
        })

    return [web.get(ROUTE, download)]


def _page(text: str, status: int) -> web.Response:
    return web.Response(text=_PAGE.format(text=text), status=status, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
