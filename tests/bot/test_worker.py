"""The background pass of `vraagbaak serve`: mail that waited for a server leaves, replies come in."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.app import App
from bot.cli import main
from bot.settings import BotSettings
from bot.worker import EscalationWorker
from escalation.store import NewTicket
from retrieval.settings import RetrievalSettings
from tests.smtp_server import SmtpServer


@pytest.fixture
def app(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer) -> App:
    pool = tmp_path / "experts.yaml"
    pool.write_text("fallback: jd@example.be\nexperts:\n  - {name: A, email: a@example.be, topics: [general]}\n")
    monkeypatch.setenv("VRAAGBAAK_EXPERTS_FILE", str(pool))
    monkeypatch.setenv("VRAAGBAAK_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("VRAAGBAAK_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("VRAAGBAAK_SMTP_SECURITY", "none")
    return App(RetrievalSettings.from_env(), BotSettings.from_env())


def _ticket(app: App) -> int:
    return app.tickets.open_ticket(NewTicket(officer="o", channel="console", reply_address={"user": "u"},
                                             question="Hoe archiveer ik offertes?", reason="test", topic="")).number


def test_queued_mail_leaves_once_the_server_is_back(app: App, smtp_server: SmtpServer) -> None:
    smtp_server.stop()
    _ticket(app)
    worker = EscalationWorker(service=app.tickets, mailbox_factory=app.mailbox, interval_seconds=0.01)
    smtp_server.start()
    later = time.time() + 120
    app.tickets.store.clock = lambda: later  # two minutes on: the 30 s backoff has passed, the SLA has not
    assert worker.run_once()["sent"] == 1
    assert worker.run_once()["sent"] == 0
    assert len(smtp_server.received) == 1


def test_run_loop_stops_on_request(app: App, smtp_server: SmtpServer) -> None:
    _ticket(app)
    worker = EscalationWorker(service=app.tickets, mailbox_factory=app.mailbox, interval_seconds=0.01)

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        while worker.passes < 2:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(go())
    assert worker.passes >= 2 and len(smtp_server.received) == 1


def test_serve_once_reports_the_pass(app: App, smtp_server: SmtpServer) -> None:
    smtp_server.stop()
    _ticket(app)
    smtp_server.start()
    result = CliRunner().invoke(main, ["serve", "--once"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)
    assert counts["sent"] == 0 and counts["failed"] == 0  # still backing off after the failed first try
    retried = CliRunner().invoke(main, ["tickets", "retry"])
    assert retried.output.strip() == "1 sent, 0 failed." and len(smtp_server.received) == 1
