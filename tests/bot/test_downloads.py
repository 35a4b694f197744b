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
from common.errors import ConfigError


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


def test_serve_mounts_the_download_route_and_teams_signs_with_the_data_dirs_key(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import stat

    from click.testing import CliRunner

    import bot.server
    from bot.app import App
    from bot.cli import main

    monkeypatch.setenv("VRAAGBAAK_PUBLIC_URL", "https://vraagbaak.example.be")
    monkeypatch.setenv("VRAAGBAAK_TEAMS_AUTH", "off")
    app = App.from_env(os.environ)
    [teams] = [c for c in app.channels() if c.name == "teams"]
    url, _ = teams._links("attachment:1:abcd", "a.pdf")
    key_file = home / "download.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = bytes.fromhex(key_file.read_text(encoding="ascii"))
    assert DownloadLinks(key=key, base_url="x").verify(_token(url)) == ("attachment:1:abcd", "")

    seen: dict = {}

    async def fake_run_server(**kwargs) -> None:
        seen.update(kwargs)

    monkeypatch.setattr(bot.server, "run_server", fake_run_server)
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 0, result.output
    assert [r.path for r in seen["extra_routes"]] == ["/downloads/{token}/{name}"]
    assert [c.name for c in seen["channels"]] == ["teams"]


def test_a_public_address_over_plain_http_is_refused_except_on_this_machine() -> None:
    with pytest.raises(ConfigError, match="https"):
        ServerSettings.from_env({"VRAAGBAAK_PUBLIC_URL": "http://vraagbaak.example.be"})
    assert ServerSettings.from_env({"VRAAGBAAK_PUBLIC_URL": "http://127.0.0.1:3978"}).public_url
