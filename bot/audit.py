"""Question / reply log with feedback, pseudonymised users, retention, stats and export (SQLite)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bot.messages import Decision, Reply

_SCHEMA = """
CREATE TABLE IF NOT EXISTS exchanges (
    reply_id TEXT PRIMARY KEY,
    at REAL NOT NULL,
    channel TEXT NOT NULL,
    conversation TEXT NOT NULL,
    user TEXT NOT NULL,
    question TEXT NOT NULL,
    query TEXT NOT NULL,
    decision TEXT NOT NULL,
    reply TEXT NOT NULL,
    citations TEXT NOT NULL,
    confidence REAL,
    ticket INTEGER
);
CREATE INDEX IF NOT EXISTS exchanges_at ON exchanges(at);
CREATE TABLE IF NOT EXISTS feedback (
    reply_id TEXT NOT NULL,
    user TEXT NOT NULL,
    at REAL NOT NULL,
    value INTEGER NOT NULL CHECK (value IN (-1, 1)),
    PRIMARY KEY (reply_id, user)
);
"""


def load_or_create_key(path: Path) -> bytes:
    """The pseudonymisation key: from a file in the data dir, created (mode 600) on first use."""
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    with open(path, "x", opener=lambda p, flags: os.open(p, flags, 0o600)) as fh:
        fh.write(key.hex())
    return key


@dataclass(frozen=True)
class Stats:
    """Aggregates for `vraagbaak stats`."""

    per_day: list[tuple[str, int]]
    decisions: dict[str, int]
    total: int
    escalation_rate: float
    feedback_up: int
    feedback_down: int
    gaps: list[tuple[str, int]]
    """Most frequent questions without a good answer (escalated, out of scope or disliked)."""


class AuditLog:
    """Every question and reply, and 👍 / 👎 per reply. User ids are stored only as keyed hashes."""

    def __init__(self, path: Path, *, key: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._key = key
        self._lock = threading.Lock()

    def pseudonym(self, channel: str, user_id: str) -> str:
        """A stable pseudonym for a channel user (not reversible without the key)."""
        return hmac.new(self._key, f"{channel}:{user_id}".encode(), hashlib.sha256).hexdigest()[:20]

    def record(self, *, channel: str, conversation_id: str, user_id: str, question: str, query: str,
               reply: Reply, confidence: float | None) -> None:
        """Log one exchange."""
        citations = json.dumps([c.as_dict() | {"chunk_id": c.chunk_id} for c in reply.citations], ensure_ascii=False)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO exchanges (reply_id, at, channel, conversation, user, question, query, "
                "decision, reply, citations, confidence, ticket) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (reply.reply_id, time.time(), channel, self.pseudonym(channel, conversation_id),
                 self.pseudonym(channel, user_id), question, query, str(reply.decision), reply.text, citations,
                 confidence, reply.ticket),
            )
            self._db.commit()

    def exchange(self, reply_id: str) -> dict | None:
        """One logged exchange, or None."""
        with self._lock:
            cur = self._db.execute("SELECT reply_id, question, query, decision, citations, channel FROM exchanges "
                                   "WHERE reply_id = ?", (reply_id,))
            row = cur.fetchone()
        if row is None:
            return None
        keys = ("reply_id", "question", "query", "decision", "citations", "channel")
        record = dict(zip(keys, row))
        record["citations"] = json.loads(record["citations"])
        return record

    def feedback(self, *, reply_id: str, channel: str, user_id: str, value: int) -> bool:
        """Store 👍 (+1) or 👎 (-1) for a reply; a second vote by the same user replaces the first."""
        if value not in (1, -1):
            raise ValueError("feedback is +1 or -1")
        if self.exchange(reply_id) is None:
            return False
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO feedback (reply_id, user, at, value) VALUES (?, ?, ?, ?)",
                             (reply_id, self.pseudonym(channel, user_id), time.time(), value))
            self._db.commit()
        return True

    def purge(self, *, older_than_days: float) -> int:
        """Delete exchanges (and their feedback) older than the retention period; returns how many."""
        cutoff = time.time() - older_than_days * 86400
        with self._lock:
            self._db.execute("DELETE FROM feedback WHERE reply_id IN (SELECT reply_id FROM exchanges WHERE at < ?)",
                             (cutoff,))
            cur = self._db.execute("DELETE FROM exchanges WHERE at < ?", (cutoff,))
            self._db.commit()
            return cur.rowcount

    def stats(self, *, days: int = 30, top: int = 10) -> Stats:
        """Questions per day, decision mix, escalation and feedback rates, and the knowledge gaps."""
        since = time.time() - days * 86400
        with self._lock:
            db = self._db
            per_day = db.execute("SELECT date(at, 'unixepoch', 'localtime') d, count(*) FROM exchanges WHERE at >= ? "
                                 "GROUP BY d ORDER BY d", (since,)).fetchall()
            decisions = dict(db.execute("SELECT decision, count(*) FROM exchanges WHERE at >= ? GROUP BY decision",
                                        (since,)).fetchall())
            up, down = db.execute(
                "SELECT coalesce(sum(value = 1), 0), coalesce(sum(value = -1), 0) FROM feedback f "
                "JOIN exchanges e USING (reply_id) WHERE e.at >= ?", (since,)).fetchone()
            gaps = db.execute(
                "SELECT lower(trim(question)) q, count(*) n FROM exchanges e WHERE at >= ? AND (decision IN (?, ?) "
                "OR EXISTS (SELECT 1 FROM feedback f WHERE f.reply_id = e.reply_id AND f.value = -1)) "
                "GROUP BY q ORDER BY n DESC, max(at) DESC LIMIT ?",
                (since, str(Decision.ESCALATE), str(Decision.OUT_OF_SCOPE), top)).fetchall()
        total = sum(decisions.values())
        return Stats(per_day=per_day, decisions=decisions, total=total,
                     escalation_rate=decisions.get(str(Decision.ESCALATE), 0) / total if total else 0.0,
                     feedback_up=up, feedback_down=down, gaps=gaps)

    def export_disliked(self) -> list[dict]:
        """Disliked answers as eval lines ({"id", "question", "gold": [], "expect"}) to turn into test questions."""
        with self._lock:
            rows = self._db.execute(
                "SELECT e.reply_id, e.question, e.decision, e.citations FROM exchanges e JOIN feedback f "
                "USING (reply_id) WHERE f.value = -1 GROUP BY e.reply_id ORDER BY min(e.at)").fetchall()
        return [{"id": reply_id, "question": question, "gold": [],
                 "expect": "answer" if decision == str(Decision.ANSWER) else decision,
                 "answered_with": [c.get("label") or c.get("title") for c in json.loads(citations)]}
                for reply_id, question, decision, citations in rows]

    def close(self) -> None:
        """Close the database."""
        self._db.close()
