"""Data protection as the welcome text promises: one retention period for everything, one officer forgotten on
request, files for Vraagbaak's own user only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.app import App
from bot.cli import main
from bot.messages import Decision, Reply
from bot.settings import BotSettings
from bot.worker import EscalationWorker
from escalation.store import CLOSED, NewTicket
from retrieval.settings import RetrievalSettings
from tests.smtp_server import SmtpServer, expert_reply

DAY = 86400.0


@pytest.fixture
def app(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer) -> App:
    pool = tmp_path / "experts.yaml"
    pool.write_text("fallback: jd@example.be\nexperts:\n"
                    "  - {name: Chloé Dubois, email: chloe.dubois@example.be, topics: [general]}\n")
    monkeypatch.setenv("VRAAGBAAK_EXPERTS_FILE", str(pool))
    monkeypatch.setenv("VRAAGBAAK_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("VRAAGBAAK_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("VRAAGBAAK_SMTP_SECURITY", "none")
    return App(RetrievalSettings.from_env(), BotSettings.from_env())


def _answered_ticket(app: App, smtp_server: SmtpServer, user: str) -> int:
    officer = app.audit.pseudonym("telegram", user)
    ticket = app.tickets.open_ticket(NewTicket(
        officer=officer, channel="telegram", reply_address={"chat_id": 7}, question=f"Vraag van {user}?",
        reason="test", topic="", officer_name=f"Officer {user}"))
    sent = [m for m in smtp_server.received if f"[{ticket.tag}]" in m["Subject"]][0]
    assert app.tickets.ingest(expert_reply(sent, "Dat mag.")).status == "accepted"
    app.audit.record(channel="telegram", conversation_id=f"c{user}", user_id=user, question=f"Vraag van {user}?",
                     query="q", reply=Reply(text="Antwoord", decision=Decision.ESCALATE, reply_id=f"r{user}"),
                     confidence=None)
    return ticket.number


def _age(app: App, number: int, days: float, user: str | None = None) -> None:
    """Pretend a ticket and its mails were last touched ``days`` ago."""
    import sqlalchemy as sa

    from escalation.store import inbox, tickets

    then = app.tickets.clock() - days * DAY
    with app.tickets.store.transaction() as conn:
        conn.execute(tickets.update().where(tickets.c.number == number).values(updated_at=then))
        conn.execute(inbox.update().where(inbox.c.ticket == number).values(received_at=then))
        for row in conn.execute(sa.select(inbox.c.archive).where(inbox.c.ticket == number)):
            os.utime(row.archive, (then, then))
    if user is not None:
        app.audit._db.execute("UPDATE exchanges SET at = ? WHERE user = ?", (then, app.audit.pseudonym("telegram", user)))
        app.audit._db.commit()


def _archived(app: App) -> list[Path]:
    folder = app.tickets.archive_dir
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def test_one_retention_period_covers_log_tickets_mails_and_archive(app: App, smtp_server: SmtpServer) -> None:
    old = _answered_ticket(app, smtp_server, "1")
    app.tickets.store.set_state(old, CLOSED)
    _age(app, old, 400, user="1")
    recent = _answered_ticket(app, smtp_server, "2")
    waiting = app.tickets.open_ticket(NewTicket(officer="o3", channel="console", reply_address={"user": "u"},
                                                question="Nog geen antwoord?", reason="test", topic=""))
    _age(app, waiting.number, 400)  # still waiting for an expert: kept whatever its age
    assert len(_archived(app)) == 2

    result = CliRunner().invoke(main, ["privacy", "purge"])
    assert result.exit_code == 0, result.output
    assert "1 logged exchange" in result.output and "1 finished ticket(s)" in result.output
    numbers = {t.number for t in app.tickets.store.list()}
    assert numbers == {recent, waiting.number}
    assert len(_archived(app)) == 1 and all(m.ticket != old for m in app.tickets.store.due_mails(include_future=True))
    assert app.audit._db.execute("SELECT count(*) FROM exchanges").fetchone()[0] == 1


def test_forgetting_an_officer_removes_their_log_and_tickets_only(app: App, smtp_server: SmtpServer) -> None:
    mine = _answered_ticket(app, smtp_server, "42")
    other = _answered_ticket(app, smtp_server, "43")
    result = CliRunner().invoke(main, ["privacy", "forget", "--channel", "telegram", "42"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Removed 1 logged exchange(s), 1 ticket(s)")
    assert {t.number for t in app.tickets.store.list()} == {other}
    assert mine not in {t.number for t in app.tickets.store.list()}
    users = [r[0] for r in app.audit._db.execute("SELECT user FROM exchanges")]
    assert users == [app.audit.pseudonym("telegram", "43")]
    assert len(_archived(app)) == 1


def test_serve_purges_once_a_day(app: App) -> None:
    now = [0.0]
    purges: list[float] = []
    worker = EscalationWorker(app.tickets, lambda: None, purge=lambda: purges.append(now[0]),
                              clock=lambda: now[0])
    worker.run_once()
    now[0] = DAY - 1
    worker.run_once()
    now[0] = DAY + 1
    assert worker.run_once()["purged"] == 1
    assert purges == [0.0, DAY + 1]


def test_files_and_folders_are_for_vraagbaaks_user_only(home: Path, tmp_path: Path) -> None:
    eml = tmp_path / "reply.eml"
    eml.write_bytes(b"From: x@example.org\nSubject: hallo\nMessage-ID: <a@b>\n\nTekst.\n")
    CliRunner().invoke(main, ["tickets", "ingest", str(eml)])
    created = [p for p in home.rglob("*")]
    assert created and {oct(stat.S_IMODE(p.stat().st_mode)) for p in created if p.is_file()} == {"0o600"}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in created if p.is_dir()} <= {"0o700"}
