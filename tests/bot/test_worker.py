"""The background pass of `vraagbaak serve`: mail that waited for a server leaves, replies come in."""

from __future__ import annotations

import os
import asyncio
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.app import App
from bot.cli import main
from bot.worker import EscalationWorker
from escalation.store import NewTicket
from tests.smtp_server import SmtpServer


@pytest.fixture
def app(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer) -> App:
    pool = tmp_path / "experts.yaml"
    pool.write_text("fallback: jd@example.be\nexperts:\n  - {name: A, email: a@example.be, topics: [general]}\n")
    monkeypatch.setenv("VRAAGBAAK_EXPERTS_FILE", str(pool))
    monkeypatch.setenv("VRAAGBAAK_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("VRAAGBAAK_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("VRAAGBAAK_SMTP_SECURITY", "none")
    return App.from_env(os.environ)


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


def test_a_failing_step_does_not_hold_back_the_others(app: App, smtp_server: SmtpServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # On main an error from the mailbox (here not even an EscalationError) skipped deliveries and reminders.
    calls: list[str] = []

    def broken_mailbox():
        raise RuntimeError("IMAP settings unusable")

    async def deliver(deliverers, stop=None) -> int:
        calls.append("deliver")
        return 0

    monkeypatch.setattr(app.tickets, "deliver", deliver)
    monkeypatch.setattr(app.tickets, "remind_overdue", lambda: calls.append("remind") or 0)
    _ticket(app)
    smtp_server.received.clear()
    app.tickets.store.enqueue(1, kind="reminder", recipients=["a@example.be"], subject="s", body="b",
                              message_id="<m1@example.be>")
    counts = EscalationWorker(app.tickets, broken_mailbox).run_once()
    assert counts["errors"] == 1 and counts["sent"] == 1
    assert calls == ["deliver", "remind"]


def test_an_unknown_imap_security_is_refused_at_start_up(tmp_path: Path) -> None:
    from escalation.settings import EscalationConfigError, EscalationSettings

    env = {"VRAAGBAAK_IMAP_HOST": "imap.example.be", "VRAAGBAAK_IMAP_USER": "u", "VRAAGBAAK_IMAP_PASSWORD": "p",
           "VRAAGBAAK_IMAP_SECURITY": "ssl"}
    with pytest.raises(EscalationConfigError, match="VRAAGBAAK_IMAP_SECURITY"):
        EscalationSettings.from_env(tmp_path, env)


def test_the_maintainer_lists_and_releases_quarantine_and_sees_no_terminal_escapes(
        app: App, smtp_server: SmtpServer, tmp_path: Path) -> None:
    from email.message import EmailMessage

    number = _ticket(app)
    reply = EmailMessage()
    reply["From"] = "a@example.be"
    reply["Subject"] = f"RE: [VB-{number}] Hoe archiveer ik offertes?"  # the client dropped the references
    reply["Message-ID"] = "<r1@example.be>"
    reply.set_content("Tien jaar bewaren.\x1b]0;pwned\x07\x1b[2J Zie de archiefwet.")
    eml = tmp_path / "reply.eml"
    eml.write_bytes(bytes(reply))

    ingested = CliRunner().invoke(main, ["tickets", "ingest", str(eml)])
    assert ingested.exit_code == 1 and ingested.output.startswith("quarantined: VB-1")
    listed = CliRunner().invoke(main, ["tickets", "quarantine"])
    assert listed.exit_code == 0 and "not authenticated" in listed.output
    key = listed.output.split()[0]
    released = CliRunner().invoke(main, ["tickets", "release", key])
    assert released.exit_code == 0 and released.output.strip() == f"accepted: VB-{number}"
    shown = CliRunner().invoke(main, ["tickets", "show", str(number)])
    assert "Tien jaar bewaren." in shown.output and "\x1b" not in shown.output and "\x07" not in shown.output
    assert CliRunner().invoke(main, ["tickets", "release", key]).exit_code == 1


def test_a_pass_runs_on_the_servers_loop_without_blocking_it(app: App) -> None:
    # IMAP, SMTP and the database block: the pass runs them in a worker thread, so chats are answered meanwhile.
    def slow_mailbox():
        time.sleep(0.5)  # a mail server that takes its time to log in
        return None

    worker = EscalationWorker(app.tickets, slow_mailbox)

    async def scenario() -> tuple[dict[str, int], int]:
        ticks = 0

        async def heartbeat() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beating = asyncio.create_task(heartbeat())
        counts = await worker.run_pass()
        beating.cancel()
        return counts, ticks

    counts, ticks = asyncio.run(scenario())
    assert counts["errors"] == 0
    assert ticks >= 20  # the loop went on during the half second the mailbox took


def test_once_stopping_a_pass_starts_no_further_step(app: App) -> None:
    stop = asyncio.Event()
    steps: list[str] = []

    def mailbox():
        steps.append("intake")
        stop.set()  # SIGTERM during intake
        return None

    async def deliver(deliverers, stop=None) -> int:
        steps.append("deliver")
        return 0

    app.tickets.deliver = deliver  # type: ignore[method-assign]
    asyncio.run(EscalationWorker(app.tickets, mailbox).run_pass(stop))
    assert steps == ["intake"]


def test_every_worker_drops_its_copies_of_erased_attachments_once_an_hour_leader_or_not(app: App) -> None:
    folder = app.tickets.attachments_dir
    folder.mkdir(parents=True)
    erased = folder / "7-0123456789abcdef0123456789abcdef"  # its ticket was erased through another worker
    erased.write_bytes(b"%PDF-1.7 oud advies")
    an_hour_ago = time.time() - 3700
    os.utime(erased, (an_hour_ago, an_hour_ago))
    now = [1000.0]
    worker = EscalationWorker(app.tickets, lambda: None, leader=lambda: False, clock=lambda: now[0])
    assert worker.run_once()["copies_dropped"] == 1 and not erased.exists()
    erased.write_bytes(b"%PDF-1.7 oud advies")
    os.utime(erased, (an_hour_ago, an_hour_ago))
    now[0] += 60
    assert worker.run_once()["copies_dropped"] == 0 and erased.exists()  # not due yet
    now[0] += 3600
    assert worker.run_once()["copies_dropped"] == 1 and not erased.exists()
