"""Signed download links: only a valid, unexpired signature gets a file, and the route serves it safely."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.downloads import Download, DownloadLinks, download_routes
from bot.server import ServerSettings
from retrieval.errors import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _links(clock: Clock, key: bytes = b"k" * 32) -> DownloadLinks:
    return DownloadLinks(key=key, base_url="https://vraagbaak.example.be/", ttl_seconds=3600, clock=clock)


def _token(url: str) -> str:
    return url.split("/downloads/", 1)[1].split("/")[0]


def test_a_link_names_its_file_until_it_expires() -> None:
    clock = Clock()
    links = _links(clock)
    url, expires = links.url("attachment:7", "Nota gunning é.pdf")
    assert url.startswith("https://vraagbaak.example.be/downloads/") and url.endswith("/Nota%20gunning%20%C3%A9.pdf")
    assert expires == clock.now + 3600
    assert links.verify(_token(url)) == ("attachment:7", "")
    clock.now += 3601
    assert links.verify(_token(url)) == (None, "expired")


def test_a_reference_or_expiry_changed_without_the_key_is_refused() -> None:
    clock = Clock()
    links = _links(clock)
    payload, mac = _token(links.url("attachment:7", "a.pdf")[0]).split(".")
    for changed in ({"r": "attachment:8", "e": int(clock.now + 3600)}, {"r": "attachment:7", "e": 4_000_000_000}):
        forged = base64.urlsafe_b64encode(json.dumps(changed, separators=(",", ":")).encode()).rstrip(b"=").decode()
        assert links.verify(f"{forged}.{mac}") == (None, "invalid")
    assert _links(clock, key=b"o" * 32).verify(f"{payload}.{mac}") == (None, "invalid")  # another installation
    for junk in ("", ".", "a.b.c", "x" * 1000, f"{payload}.", f"{payload}.!!!", "e30." + mac):
        assert links.verify(junk)[0] is None


def test_the_route_serves_the_file_as_a_download_and_explains_refusals_in_dutch(tmp_path: Path) -> None:
    clock = Clock()
    links = _links(clock)
    stored = tmp_path / "12-abc"
    stored.write_bytes(b"%PDF-1.7 advies")
    files = {"attachment:1": Download(stored, "Advies “VB-12”.pdf", "application/pdf"),
             "attachment:2": Download(tmp_path / "gone", "weg.pdf", "application/pdf")}

    async def scenario() -> None:
        client = TestClient(TestServer(_web_app(links, files.get), host="127.0.0.1"))
        await client.start_server()
        try:
            def path(ref: str) -> str:
                return "/downloads/" + links.url(ref, "x.pdf")[0].split("/downloads/", 1)[1]

            ok = await client.get(path("attachment:1"))
            assert ok.status == 200 and await ok.read() == b"%PDF-1.7 advies"
            assert ok.headers["Content-Type"] == "application/pdf"
            assert ok.headers["Content-Disposition"] == (
                "attachment; filename=\"Advies _VB-12_.pdf\"; filename*=UTF-8''Advies%20%E2%80%9CVB-12%E2%80%9D.pdf")
            assert ok.headers["Cache-Control"] == "private, no-store"
            gone = await client.get(path("attachment:2"))
            assert gone.status == 404 and "er niet meer" in await gone.text()
            unknown = await client.get(path("attachment:3"))
            assert unknown.status == 404
            old = path("attachment:1")
            clock.now += 7200
            expired = await client.get(old)
            assert expired.status == 410 and "/bijlagen" in await expired.text()
        finally:
            await client.close()

    asyncio.run(scenario())


def _web_app(links: DownloadLinks, resolve) -> web.Application:
    app = web.Application()
    app.add_routes(download_routes(links, resolve))
    return app


@pytest.mark.parametrize("value", ["vraagbaak.example.be", "ftp://x", "https://x.be/?a=1", "https://"])
def test_a_public_address_that_is_no_base_url_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="VRAAGBAAK_PUBLIC_URL"):
        ServerSettings.from_env({"VRAAGBAAK_PUBLIC_URL": value})
    with pytest.raises(ConfigError, match="VRAAGBAAK_DOWNLOAD_DAYS"):
        ServerSettings.from_env({"VRAAGBAAK_DOWNLOAD_DAYS": "nooit"})
    assert ServerSettings.from_env({"VRAAGBAAK_PUBLIC_URL": "https://vb.example.be/bot"}).public_url \
        == "https://vb.example.be/bot"
