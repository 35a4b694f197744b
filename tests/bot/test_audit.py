"""The question log: in the deployment's database, shared by the workers; an earlier version's file moves in once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.audit import LEGACY_FILE, NO_ANSWER_REASON, AuditLog
from bot.messages import Decision, Reply
from common.database import database_url

# The schema as the first release wrote it (version 0), before escalation reasons were logged.
SCHEMA_0 = """
CREATE TABLE exchanges (reply_id TEXT PRIMARY KEY, at REAL NOT NULL, channel TEXT NOT NULL,
    conversation TEXT NOT NULL, user TEXT NOT NULL, question TEXT NOT NULL, query TEXT NOT NULL,
    decision TEXT NOT NULL, reply TEXT NOT NULL, citations TEXT NOT NULL, confidence REAL, ticket INTEGER);
CREATE INDEX exchanges_at ON exchanges(at);
CREATE TABLE feedback (reply_id TEXT NOT NULL, user TEXT NOT NULL, at REAL NOT NULL,
    value INTEGER NOT NULL CHECK (value IN (-1, 1)), PRIMARY KEY (reply_id, user));
"""
SCHEMA_2_COLUMNS = ("ALTER TABLE exchanges ADD COLUMN escalation_reason TEXT",
                    "ALTER TABLE exchanges ADD COLUMN full_question TEXT")


def _old_log(path: Path, rows: list[tuple], *, version: int) -> None:
    old = sqlite3.connect(path)
    old.executescript(SCHEMA_0)
    if version == 2:
        for statement in SCHEMA_2_COLUMNS:
            old.execute(statement)
    now = time.time()
    for reply_id, question, decision, confidence, ticket, *later in rows:
        values = [reply_id, now, question, question, decision, confidence, ticket] + (later if version == 2 else [])
        marks = ", ".join("?" * len(later)) if version == 2 else ""
        old.execute("INSERT INTO exchanges VALUES (?, ?, 'console', 'c', 'u', ?, ?, ?, '…', '[]', ?, ?"
                    + (", " + marks if marks else "") + ")", values)
    old.execute("INSERT INTO feedback VALUES (?, 'u', ?, -1)", (rows[-1][0], now))
    old.commit()
    old.close()


def test_an_old_log_moves_into_the_database_and_only_its_unanswered_escalations_become_gaps(
        home: Path, store_url: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    path = home / LEGACY_FILE
    _old_log(path, [("r1", "Mag ik drie bestellingen apart plaatsen?", "escalate", 0.86, 1),  # retrieval was unsure
                    ("r2", "Een inschrijver dreigt met een kort geding.", "escalate", None, 2),  # a legal-advice rule
                    ("r3", "Wat is een innovatiepartnerschap?", "answer", 0.91, None)], version=0)
    audit = AuditLog(store_url, key=b"k", legacy=path)
    assert not path.exists() and list(home.iterdir()) == []  # deleted: the purge reaches only the database
    assert audit.exchange("r1")["escalation_reason"] == NO_ANSWER_REASON
    assert audit.exchange("r2")["escalation_reason"] is None
    assert audit.exchange("r3")["user"] == "u"
    stats = audit.stats()
    assert stats.gaps == [("mag ik drie bestellingen apart plaatsen?", 1), ("wat is een innovatiepartnerschap?", 1)]
    assert stats.feedback_down == 1 and stats.total == 3
    audit.record(channel="console", conversation_id="c", user_id="u", question="Wat is een PCP?",
                 query="Wat is een PCP?", reply=Reply(text="…", decision=Decision.NOT_FOUND, reply_id="r4"),
                 confidence=0.7)
    assert audit.stats().decisions["not_found"] == 1
    audit.close()

    # Another worker's log of its own, with one reply id that is already in the database: merged, that one kept.
    _old_log(path, [("r4", "Iets anders", "answer", 0.9, None),
                    ("r5", "Wat is een marktconsultatie?", "answer", 0.9, None)], version=0)
    again = AuditLog(store_url, key=b"k", legacy=path)
    assert not path.exists() and again.stats().total == 5
    assert again.exchange("r4")["decision"] == "not_found" and again.exchange("r5")["decision"] == "answer"
    assert again.stats().feedback_down == 2  # r5's vote came along
    again.close()


def test_a_log_of_the_last_file_version_keeps_its_reasons_and_spelled_out_follow_ups(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    path = home / LEGACY_FILE
    _old_log(path, [("r1", "Een inschrijver dreigt met een kort geding.", "escalate", 0.5, 3, "juridisch advies", None),
                    ("r2", "en voor werken?", "answer", 0.9, None, None, "Welke drempel geldt voor werken?")],
             version=2)
    audit = AuditLog(database_url(home, {}), key=b"k", legacy=path)
    assert audit.exchange("r1")["escalation_reason"] == "juridisch advies"  # not turned into a gap
    assert audit.exchange("r2")["full_question"] == "Welke drempel geldt voor werken?"
    audit.close()


def test_a_reply_logged_by_one_worker_takes_votes_and_the_expert_button_at_the_other(store_url: str) -> None:
    one, other = AuditLog(store_url, key=b"k" * 32), AuditLog(store_url, key=b"k" * 32)
    try:
        one.record(channel="teams", conversation_id="c", user_id="an", question="en voor werken?", query="q",
                   reply=Reply(text="…", decision=Decision.ANSWER, reply_id="abc123"), confidence=0.9,
                   full_question="Welke drempel geldt voor werken?")
        assert other.exchange("abc123")["full_question"] == "Welke drempel geldt voor werken?"
        other.record(channel="teams", conversation_id="c", user_id="an", question="en voor werken?", query="q",
                     reply=Reply(text="…", decision=Decision.ANSWER, reply_id="abc123"), confidence=0.9,
                     full_question="Welke drempel geldt voor werken in 2026?")  # the same reply logged again
        assert one.exchange("abc123")["full_question"] == "Welke drempel geldt voor werken in 2026?"
        assert other.feedback(reply_id="abc123", channel="teams", user_id="an", value=1)
        assert one.feedback(reply_id="abc123", channel="teams", user_id="an", value=-1)  # the second vote replaces
        assert not other.feedback(reply_id="unknown", channel="teams", user_id="an", value=1)
        stats = other.stats()
        assert (stats.total, stats.feedback_up, stats.feedback_down) == (1, 0, 1)
        assert [line["id"] for line in other.export_disliked()] == ["abc123"]
        assert other.top_questions() == [("en voor werken?", 1)]
        assert one.forget_user(one.pseudonym("teams", "an")) == 1 and other.stats().total == 0
    finally:
        one.close()
        other.close()


def test_while_the_database_is_away_a_reply_is_not_logged_and_nothing_raises(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    audit = AuditLog(f"sqlite:///{tmp_path / 'tickets.sqlite'}", key=b"k" * 32)
    audit.engine.dispose()
    audit.engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none",  # nothing listens on port 9
                                    connect_args={"connect_timeout": 2})
    for n in range(3):
        assert not audit.record(channel="teams", conversation_id="c", user_id="an", question="Wat is PCP?",
                                query="q", reply=Reply(text="…", decision=Decision.ANSWER, reply_id=f"r{n}"),
                                confidence=0.9)
    assert caplog.text.count("question log not written") == 1  # once a minute, not once a reply
    audit.close()
