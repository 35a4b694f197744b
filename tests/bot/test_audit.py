"""The question log: an existing database keeps working after the schema moves on."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from bot.audit import NO_ANSWER_REASON, AuditLog
from bot.messages import Decision, Reply

# The schema as the first release wrote it (version 0), before escalation reasons were logged.
SCHEMA_0 = """
CREATE TABLE exchanges (reply_id TEXT PRIMARY KEY, at REAL NOT NULL, channel TEXT NOT NULL,
    conversation TEXT NOT NULL, user TEXT NOT NULL, question TEXT NOT NULL, query TEXT NOT NULL,
    decision TEXT NOT NULL, reply TEXT NOT NULL, citations TEXT NOT NULL, confidence REAL, ticket INTEGER);
CREATE INDEX exchanges_at ON exchanges(at);
CREATE TABLE feedback (reply_id TEXT NOT NULL, user TEXT NOT NULL, at REAL NOT NULL,
    value INTEGER NOT NULL CHECK (value IN (-1, 1)), PRIMARY KEY (reply_id, user));
"""


def test_an_old_log_is_migrated_and_only_its_unanswered_escalations_become_gaps(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA_0)
    now = time.time()
    rows = [("r1", "Mag ik drie bestellingen apart plaatsen?", "escalate", 0.86, 1),  # retrieval was unsure
            ("r2", "Een inschrijver dreigt met een kort geding.", "escalate", None, 2),  # a legal-advice rule
            ("r3", "Wat is een innovatiepartnerschap?", "answer", 0.91, None)]
    old.executemany("INSERT INTO exchanges VALUES (?, ?, 'console', 'c', 'u', ?, ?, ?, '…', '[]', ?, ?)",
                    [(rid, now, q, q, d, conf, ticket) for rid, q, d, conf, ticket in rows])
    old.commit()
    old.close()

    audit = AuditLog(path, key=b"k")
    assert audit.version == 2
    assert audit.exchange("r1")["escalation_reason"] == NO_ANSWER_REASON
    assert audit.exchange("r2")["escalation_reason"] is None
    assert audit.stats().gaps == [("mag ik drie bestellingen apart plaatsen?", 1)]
    audit.record(channel="console", conversation_id="c", user_id="u", question="Wat is een PCP?",
                 query="Wat is een PCP?", reply=Reply(text="…", decision=Decision.NOT_FOUND, reply_id="r4"), confidence=0.7)
    assert audit.stats().decisions["not_found"] == 1
    audit.close()
    again = AuditLog(path, key=b"k")  # opening a migrated log changes nothing
    assert again.version == 2 and again.exchange("r4")["decision"] == "not_found"
    again.close()
