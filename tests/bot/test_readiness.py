"""`/readyz`: is this worker ready for traffic (an index to answer from, a ticket database that answers)?"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot import server
from bot.app import App
from bot.server import build_web_app
from corpus.manifest import load_manifest

NOTES = "# Drempels\n\n## Aanvaarde factuur\nOnder 30.000 euro excl. btw volstaat een aanvaarde factuur.\n"


async def _get(app, path: str) -> tuple[int, dict]:
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        response = await client.get(path)
        return response.status, await response.json()
    finally:
        await client.close()


@pytest.mark.parametrize(("checks", "status"), [({"index": "ok", "database": "ok"}, 200),
                                                ({"index": "ok", "database": "unreachable: OperationalError"}, 503)])
def test_readyz_is_200_only_when_every_check_is_ok(checks: dict, status: int) -> None:
    code, body = asyncio.run(_get(build_web_app([], ready=lambda: checks), "/readyz"))
    assert code == status and body["database"] == checks["database"]
    assert body["status"] == ("ready" if status == 200 else "not ready")
    assert asyncio.run(_get(build_web_app([], ready=lambda: checks), "/healthz"))[0] == 200  # alive either way


def test_a_check_that_hangs_or_raises_is_not_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "READY_TIMEOUT_SECONDS", 0.2)

    def boom() -> dict:
        raise RuntimeError("disk gone")

    for check in (lambda: time.sleep(2) or {}, boom):
        code, body = asyncio.run(_get(build_web_app([], ready=check), "/readyz"))
        assert code == 503 and body["checks"].startswith("failed:")


def test_the_app_reports_its_index_and_database(tmp_path: Path) -> None:
    home = tmp_path / "home"
    app = App.from_env({"VRAAGBAAK_HOME": str(home), "VRAAGBAAK_EMBEDDER": "fake"})
    assert app.readiness() == {"index": "no index: run `vraagbaak corpus refresh`", "database": "ok"}
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "drempels.md").write_text(NOTES, encoding="utf-8")
    (tmp_path / "m.yaml").write_text("sources:\n  - id: n\n    title: N\n    kind: guidance\n"
                                     "    location: 'notes/*.md'\n", encoding="utf-8")
    generation = app.refresher().refresh(load_manifest(tmp_path / "m.yaml")).generation
    assert app.readiness() == {"index": "ok", "database": "ok"}
    app.retriever.search("factuur")  # the first question loads the index: the worker says what it answers from
    assert app.readiness() == {"index": "ok", "database": "ok", "serving": generation}
    code, body = asyncio.run(_get(build_web_app([], ready=app.readiness), "/readyz"))
    assert code == 200 and body["serving"] == generation  # information, not a check that could fail

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    down = App.from_env({"VRAAGBAAK_HOME": str(home), "VRAAGBAAK_EMBEDDER": "fake",
                         "VRAAGBAAK_DATABASE_URL": f"postgresql+psycopg://vb@127.0.0.1:{port}/vb"})
    assert down.readiness()["database"].startswith("unreachable:")
