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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.messages import Decision, Reply
from common.errors import ConfigError

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
"""Version 0 of the schema; the numbered migrations below take it to the current one."""

NO_ANSWER_REASON = "onvoldoende zekerheid over het antwoord"
"""The escalation reason the helpdesk gives when no source answers the question well enough: a knowledge gap,
unlike a question escalated on purpose (a legal-advice rule, an own case, the officer asking for an expert)."""


def _migration_1(db: sqlite3.Connection) -> None:
    # Why a reply was escalated, so that stats can tell knowledge gaps from escalations on purpose.
    db.execute("ALTER TABLE exchanges ADD COLUMN escalation_reason TEXT")
    # Before this column the helpdesk logged a confidence with an escalation only when no source answered
    # confidently (rule escalations and requests for an expert had none): that reason can be restored.
    db.execute("UPDATE exchanges SET escalation_reason = ? WHERE decision = ? AND confidence IS NOT NULL",
               (NO_ANSWER_REASON, str(Decision.ESCALATE)))


def _migration_2(db: sqlite3.Connection) -> None:
    # A follow-up ("en voor werken?") spelled out, so "Vraag een expert" on an old reply sends the whole question.
    db.execute("ALTER TABLE exchanges ADD COLUMN full_question TEXT")


_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migration_1, 2: _migration_2}


def _migrate(db: sqlite3.Connection) -> int:
    """Apply the missing migrations in order, each in one transaction with its version; returns the version."""
    for number in sorted(_MIGRATIONS):
        if db.execute("PRAGMA user_version").fetchone()[0] >= number:
            continue
        with db:
            db.execute("BEGIN IMMEDIATE")
            # Another process may have migrated while this one waited for the lock.
            if db.execute("PRAGMA user_version").fetchone()[0] >= number:
                continue
            _MIGRATIONS[number](db)
            db.execute(f"PRAGMA user_version = {int(number)}")  # a pragma takes no parameters; an int of ours
    return db.execute("PRAGMA user_version").fetchone()[0]


KEY_BYTES = 32
KEY_NAMES = ("pseudonym", "mail", "download")
"""The secret keys of a deployment: officers' pseudonyms, signed mail references, signed download links."""


def secret_key(name: str, home: Path, env: Mapping[str, str]) -> bytes:
    """The key ``name``: from ``VRAAGBAAK_<NAME>_KEY`` (hex) when set, else from ``<name>.key`` in the data dir.

    Workers of one deployment need the same keys (an expert's reply to a mail one worker sent is read by another;
    a pseudonym must name the same officer everywhere), so several workers take them from the environment. Moving
    from one worker to several keeps the keys: the variable gets the hex text of the existing file.
    """
    if name not in KEY_NAMES:
        raise ValueError(f"unknown key {name!r}")
    variable = f"VRAAGBAAK_{name.upper()}_KEY"
    raw = (env.get(variable) or "").strip()
    if not raw:
        return load_or_create_key(home / f"{name}.key")
    try:
        key = bytes.fromhex(raw)
    except ValueError:
        raise ConfigError(f"{variable} is not hexadecimal (generate one with `openssl rand -hex 32`)") from None
    if len(key) < KEY_BYTES:
        raise ConfigError(f"{variable} holds {len(key)} bytes, at least {KEY_BYTES} are needed")
    return key


def load_or_create_key(path: Path) -> bytes:
    """A secret key (pseudonyms, signed mail references) from a file in the data dir, created on first use.

    The file is written whole or not at all (a temporary file, then renamed) with mode 600; an empty, short or
    unreadable key file is an error, never a weak key.
    """
    if path.exists():
        try:
            key = bytes.fromhex(path.read_text(encoding="ascii").strip())
        except (ValueError, UnicodeDecodeError):
            raise ConfigError(f"key file {path} is not hexadecimal: restore it from a backup") from None
        if len(key) < KEY_BYTES:
            raise ConfigError(f"key file {path} holds {len(key)} bytes, at least {KEY_BYTES} are needed: restore it "
                              "from a backup (deleting it makes a new key, and old pseudonyms or mail references "
                              "stop matching)")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "x", encoding="ascii", opener=lambda p, flags: os.open(p, flags, 0o600)) as fh:
        fh.write(key.hex())
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # never replaces a key another process created meanwhile
    except FileExistsError:
        return load_or_create_key(path)
    finally:
        tmp.unlink()
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
    """Most frequent questions the sources could not answer (not found, escalated for lack of an answer) or whose
    answer was disliked; off-topic questions and escalations on purpose (legal advice, an own case) are not gaps."""


class AuditLog:
    """Every question and reply, and 👍 / 👎 per reply. User ids are stored only as keyed hashes."""

    def __init__(self, path: Path, *, key: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")  # one log write per reply; readers (`stats`) never block it
        self._db.executescript(_SCHEMA)
        self.version = _migrate(self._db)
        self._key = key
        self._lock = threading.Lock()

    def pseudonym(self, channel: str, user_id: str) -> str:
        """A stable pseudonym for a channel user (not reversible without the key)."""
        return hmac.new(self._key, f"{channel}:{user_id}".encode(), hashlib.sha256).hexdigest()[:20]

    def record(self, *, channel: str, conversation_id: str, user_id: str, question: str, query: str,
               reply: Reply, confidence: float | None, reason: str | None = None,
               full_question: str | None = None) -> None:
        """Log one exchange; ``reason`` says why an escalated question went to the expert pool."""
        citations = json.dumps([c.as_dict() | {"chunk_id": c.chunk_id} for c in reply.citations], ensure_ascii=False)
        with self._lock:
            reason = reason if reply.decision is Decision.ESCALATE else None
            self._db.execute(
                "INSERT OR REPLACE INTO exchanges (reply_id, at, channel, conversation, user, question, query, "
                "decision, reply, citations, confidence, ticket, escalation_reason, full_question) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (reply.reply_id, time.time(), channel, self.pseudonym(channel, conversation_id),
                 self.pseudonym(channel, user_id), question, query, str(reply.decision), reply.text, citations,
                 confidence, reply.ticket, reason, full_question if full_question != question else None),
            )
            self._db.commit()

    def exchange(self, reply_id: str) -> dict | None:
        """One logged exchange, or None (``user`` is the asker's pseudonym)."""
        with self._lock:
            cur = self._db.execute("SELECT reply_id, question, query, decision, citations, channel, escalation_reason, "
                                   "coalesce(full_question, question), user FROM exchanges WHERE reply_id = ?",
                                   (reply_id,))
            row = cur.fetchone()
        if row is None:
            return None
        keys = ("reply_id", "question", "query", "decision", "citations", "channel", "escalation_reason",
                "full_question", "user")
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

    def forget_user(self, user: str) -> int:
        """Delete every logged exchange and feedback of one user (their pseudonym); returns the exchanges removed."""
        with self._lock:
            self._db.execute("DELETE FROM feedback WHERE user = ? OR reply_id IN "
                             "(SELECT reply_id FROM exchanges WHERE user = ?)", (user, user))
            cur = self._db.execute("DELETE FROM exchanges WHERE user = ?", (user,))
            self._db.commit()
            return cur.rowcount

    def stats(self, *, days: int = 30, top: int = 10) -> Stats:
        """Questions per day, decision mix, escalation and feedback rates, and the knowledge gaps."""
        since = time.time() - days * 86400
        with self._lock:
            db = self._db
            per_day = db.execute("SELECT date(at, 'unixepoch', 'localtime') d, count(*) FROM exchanges WHERE at >= ? "
                                 "GROUP BY d ORDER BY d", (since,)).fetchall()
            counts = dict(db.execute("SELECT decision, count(*) FROM exchanges WHERE at >= ? GROUP BY decision",
                                     (since,)).fetchall())
            up, down = db.execute(
                "SELECT coalesce(sum(value = 1), 0), coalesce(sum(value = -1), 0) FROM feedback f "
                "JOIN exchanges e USING (reply_id) WHERE e.at >= ?", (since,)).fetchone()
            gaps = db.execute(
                "SELECT lower(trim(question)) q, count(*) n FROM exchanges e WHERE at >= ? AND (decision = ? "
                "OR (decision = ? AND escalation_reason = ?) "
                "OR EXISTS (SELECT 1 FROM feedback f WHERE f.reply_id = e.reply_id AND f.value = -1)) "
                "GROUP BY q ORDER BY n DESC, max(at) DESC LIMIT ?",
                (since, str(Decision.NOT_FOUND), str(Decision.ESCALATE), NO_ANSWER_REASON, top)).fetchall()
        # Every decision is shown, in the order of the enum, even at 0; an unknown one (an older log) after them.
        decisions = {str(d): counts.pop(str(d), 0) for d in Decision} | dict(sorted(counts.items()))
        total = sum(decisions.values())
        return Stats(per_day=per_day, decisions=decisions, total=total,
                     escalation_rate=decisions.get(str(Decision.ESCALATE), 0) / total if total else 0.0,
                     feedback_up=up, feedback_down=down, gaps=gaps)

    def top_questions(self, *, days: int = 30, limit: int = 500) -> list[tuple[str, int]]:
        """The questions asked in the period (case and spacing aside), most asked first."""
        since = time.time() - days * 86400
        with self._lock:
            return self._db.execute(
                "SELECT lower(trim(question)) q, count(*) n FROM exchanges WHERE at >= ? AND question != '' "
                "GROUP BY q ORDER BY n DESC, max(at) DESC LIMIT ?", (since, limit)).fetchall()

    def export_disliked(self) -> list[dict]:
        """Disliked questions as eval lines ({"id", "question", "gold": [], "expect"}) to turn into test questions.

        One line per distinct question (case and spacing aside), in the order the question was first asked and
        described by that first disliked reply; ``dislikes`` counts the 👎 over all its replies.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT e.reply_id, e.question, e.decision, e.citations, count(*) FROM exchanges e JOIN feedback f "
                "USING (reply_id) WHERE f.value = -1 GROUP BY e.reply_id ORDER BY e.at, e.reply_id").fetchall()
        lines: dict[str, dict] = {}
        for reply_id, question, decision, citations, dislikes in rows:
            key = " ".join(question.split()).casefold()
            if key in lines:
                lines[key]["dislikes"] += dislikes
                continue
            lines[key] = {"id": reply_id, "question": question, "gold": [],
                          "expect": "answer" if decision == str(Decision.ANSWER) else decision,
                          "answered_with": [c.get("label") or c.get("title") for c in json.loads(citations)],
                          "dislikes": dislikes}
        return list(lines.values())

    def close(self) -> None:
        """Close the database."""
        self._db.close()
