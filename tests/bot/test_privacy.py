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
from bot.worker import EscalationWorker
from escalation.store import CLOSED, FORGOTTEN, NewTicket
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
    return App.from_env(os.environ)


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
        pseudonym = app.audit.pseudonym("telegram", user)
        from bot.audit import exchanges

        with app.audit.engine.begin() as conn:
            conn.execute(exchanges.update().where(exchanges.c.officer == pseudonym).values(at=then))


def _logged(app: App, column: str, *, table: str = "exchanges") -> list:
    """One column of the question log's exchanges or feedback, as stored."""
    import sqlalchemy as sa

    from bot import audit

    stored = audit.exchanges if table == "exchanges" else audit.feedback
    with app.audit.engine.connect() as conn:
        return list(conn.execute(sa.select(stored.c[column])).scalars())


def _archived(app: App) -> list[Path]:
    folder = app.tickets.archive_dir
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def _erased(app: App, number: int) -> bool:
    t = app.tickets.store.get(number)
    return (t.state == CLOSED and t.officer == FORGOTTEN and t.question == "" and t.officer_name is None
            and t.reply_address == {} and t.answer is None)


def test_one_retention_period_covers_log_tickets_mails_and_archive(app: App, smtp_server: SmtpServer) -> None:
    old = _answered_ticket(app, smtp_server, "1")
    app.tickets.store.set_state(old, CLOSED)
    _age(app, old, 400, user="1")
    recent = _answered_ticket(app, smtp_server, "2")
    stuck = app.tickets.open_ticket(NewTicket(officer="o3", channel="console", reply_address={"user": "u"},
                                              question="Nooit beantwoord?", reason="test", topic=""))
    _age(app, stuck.number, 400)  # an expert never answered in a year: the retention period covers it too
    orphan = app.tickets.archive_dir / "orphan.eml"  # a copy whose record went missing
    orphan.write_bytes(b"From: x@example.org\n\nTekst")
    os.utime(orphan, (app.tickets.clock() - 400 * DAY,) * 2)
    feedback = app.audit.feedback(reply_id="r1", channel="telegram", user_id="1", value=-1)
    assert feedback and len(_archived(app)) == 3

    result = CliRunner().invoke(main, ["privacy", "purge"])
    assert result.exit_code == 0, result.output
    assert "1 logged exchange" in result.output and "2 ticket(s) erased" in result.output
    assert _erased(app, old) and _erased(app, stuck.number) and not _erased(app, recent)
    assert len(_archived(app)) == 1 and all(m.ticket == recent for m in app.tickets.store.due_mails(
        include_future=True))
    assert app.tickets.store.inbound("accepted") and all(r["ticket"] == recent
                                                         for r in app.tickets.store.inbound("accepted"))
    assert _logged(app, "reply_id") == ["r2"] and _logged(app, "reply_id", table="feedback") == []

    # The numbers of erased tickets are never given again: a late reply to VB-1 cannot answer a new ticket.
    newest = app.tickets.open_ticket(NewTicket(officer="o4", channel="console", reply_address={"user": "v"},
                                               question="Nieuwe vraag?", reason="test", topic=""))
    assert newest.number > max(old, recent, stuck.number)


def test_forgetting_an_officer_removes_their_log_and_tickets_only(app: App, smtp_server: SmtpServer) -> None:
    mine = _answered_ticket(app, smtp_server, "42")
    still_open = app.tickets.open_ticket(NewTicket(
        officer=app.audit.pseudonym("telegram", "42"), channel="telegram", reply_address={"chat_id": 7},
        question="Tweede vraag?", reason="test", topic=""))
    other = _answered_ticket(app, smtp_server, "43")
    app.audit.feedback(reply_id="r42", channel="telegram", user_id="42", value=1)
    result = CliRunner().invoke(main, ["privacy", "forget", "--channel", "telegram", "42"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Removed 1 logged exchange(s), 2 ticket(s)")
    assert _erased(app, mine) and _erased(app, still_open.number) and not _erased(app, other)
    assert _logged(app, "officer") == [app.audit.pseudonym("telegram", "43")]
    assert _logged(app, "officer", table="feedback") == []
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
