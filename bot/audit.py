"""Question / reply log with feedback, pseudonymised users, retention, stats and export.

The log is in the deployment's database (SQLite under the data dir by default, PostgreSQL when
``VRAAGBAAK_DATABASE_URL`` names one), so 👍 / 👎 and "Vraag een expert" under a reply work whichever worker the
press lands on, and `vraagbaak stats` counts every worker's questions. An earlier version kept it in
``audit.sqlite`` under the data dir; the first start that finds that file merges it into the database and deletes
it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import time
from collections import Counter
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import DisconnectionError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.messages import Decision, Reply
from common.database import SMALL_POOL, delete_sqlite_file, lock_for_merge, merge_legacy_file, open_database
from common.errors import ConfigError

logger = logging.getLogger(__name__)

NO_ANSWER_REASON = "onvoldoende zekerheid over het antwoord"
"""The escalation reason the helpdesk gives when no source answers the question well enough: a knowledge gap,
unlike a question escalated on purpose (a legal-advice rule, an own case, the officer asking for an expert)."""

LEGACY_FILE = "audit.sqlite"
"""Where versions before the shared database kept the question log (under VRAAGBAAK_HOME); merged in, then deleted."""

metadata = sa.MetaData()

exchanges = sa.Table(
    "audit_exchanges", metadata,
    sa.Column("reply_id", sa.String(40), primary_key=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("conversation", sa.String(40), nullable=False),
    sa.Column("officer", sa.String(40), nullable=False, index=True),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("query", sa.Text, nullable=False),
    sa.Column("decision", sa.String(40), nullable=False),
    sa.Column("reply", sa.Text, nullable=False),
    sa.Column("citations", sa.Text, nullable=False),
    sa.Column("confidence", sa.Float),
    sa.Column("ticket", sa.Integer),
    sa.Column("escalation_reason", sa.Text),
    sa.Column("full_question", sa.Text),
)
"""One row per reply. ``conversation`` and ``officer`` are pseudonyms; ``escalation_reason`` says why an escalated
question went to the experts; ``full_question`` is a follow-up ("en voor werken?") spelled out, when it differs."""
feedback = sa.Table(
    "audit_feedback", metadata,
    sa.Column("reply_id", sa.String(40), primary_key=True),
    sa.Column("officer", sa.String(40), primary_key=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("value", sa.Integer, sa.CheckConstraint("value IN (-1, 1)"), nullable=False),
)

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
    """Every question and reply, and 👍 / 👎 per reply. User ids are stored only as keyed hashes.

    ``url``: the database (``sqlite://`` keeps a log in memory, for evaluations); ``legacy``: a question log of an
    earlier version, merged into the database and then deleted.
    """

    def __init__(self, url: str, *, key: bytes, legacy: Path | None = None) -> None:
        self.engine = open_database(url, metadata, then=merge_legacy_file("question log", legacy, _import_legacy),
                                    pool_pre_ping=True, **SMALL_POOL)
        self._key = key
        self._warned_at = float("-inf")

    def pseudonym(self, channel: str, user_id: str) -> str:
        """A stable pseudonym for a channel user (not reversible without the key)."""
        return hmac.new(self._key, f"{channel}:{user_id}".encode(), hashlib.sha256).hexdigest()[:20]

    def record(self, *, channel: str, conversation_id: str, user_id: str, question: str, query: str,
               reply: Reply, confidence: float | None, reason: str | None = None,
               full_question: str | None = None) -> bool:
        """Log one exchange; ``reason`` says why an escalated question went to the expert pool. False when the
        database could not be reached (the reply goes out all the same)."""
        citations = json.dumps([c.as_dict() | {"chunk_id": c.chunk_id} for c in reply.citations], ensure_ascii=False)
        row = dict(reply_id=reply.reply_id, at=time.time(), channel=channel[:40],
                   conversation=self.pseudonym(channel, conversation_id), officer=self.pseudonym(channel, user_id),
                   question=question, query=query, decision=str(reply.decision), reply=reply.text,
                   citations=citations, confidence=confidence, ticket=reply.ticket,
                   escalation_reason=reason if reply.decision is Decision.ESCALATE else None,
                   full_question=full_question if full_question != question else None)
        try:
            try:
                with self.engine.begin() as conn:
                    conn.execute(exchanges.insert().values(**row))
            except IntegrityError:  # a reply id is new for every reply; one logged again keeps the latest
                with self.engine.begin() as conn:
                    conn.execute(exchanges.delete().where(exchanges.c.reply_id == reply.reply_id))
                    conn.execute(exchanges.insert().values(**row))
        except (OperationalError, InterfaceError, DisconnectionError, PoolTimeout) as exc:
            # The database is away: the officer still gets the answer; the log misses it (and a vote under it
            # is answered as lost). Said once a minute, not once a reply.
            now = time.monotonic()
            if now - self._warned_at >= 60:
                self._warned_at = now
                logger.warning("question log not written while the database is away (%s)",
                               type(getattr(exc, "orig", None) or exc).__name__)
            return False
        return True

    def exchange(self, reply_id: str) -> dict | None:
        """One logged exchange, or None (``user`` is the asker's pseudonym)."""
        e = exchanges.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(e.reply_id, e.question, e.query, e.decision, e.citations, e.channel,
                                         e.escalation_reason, sa.func.coalesce(e.full_question, e.question),
                                         e.officer).where(e.reply_id == reply_id)).first()
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
        officer = self.pseudonym(channel, user_id)
        try:
            with self.engine.begin() as conn:
                if conn.execute(sa.select(exchanges.c.reply_id).where(exchanges.c.reply_id == reply_id)).first() \
                        is None:
                    return False
                conn.execute(feedback.delete().where(feedback.c.reply_id == reply_id, feedback.c.officer == officer))
                conn.execute(feedback.insert().values(reply_id=reply_id, officer=officer, at=time.time(),
                                                      value=value))
        except IntegrityError:  # the same officer's other press, on another worker, a moment ago: that one stands
            pass
        return True

    def purge(self, *, older_than_days: float) -> int:
        """Delete exchanges (and their feedback) older than the retention period; returns how many."""
        cutoff = time.time() - older_than_days * 86400
        old = sa.select(exchanges.c.reply_id).where(exchanges.c.at < cutoff)
        with self.engine.begin() as conn:
            conn.execute(feedback.delete().where(feedback.c.reply_id.in_(old)))
            return conn.execute(exchanges.delete().where(exchanges.c.at < cutoff)).rowcount

    def forget_user(self, user: str) -> int:
        """Delete every logged exchange and feedback of one user (their pseudonym); returns the exchanges removed."""
        theirs = sa.select(exchanges.c.reply_id).where(exchanges.c.officer == user)
        with self.engine.begin() as conn:
            conn.execute(feedback.delete().where(sa.or_(feedback.c.officer == user, feedback.c.reply_id.in_(theirs))))
            return conn.execute(exchanges.delete().where(exchanges.c.officer == user)).rowcount

    def stats(self, *, days: int = 30, top: int = 10) -> Stats:
        """Questions per day, decision mix, escalation and feedback rates, and the knowledge gaps."""
        since = time.time() - days * 86400
        e, f = exchanges.c, feedback.c
        disliked = sa.exists().where(f.reply_id == e.reply_id, f.value == -1)
        with self.engine.connect() as conn:
            # Days in the local time of whoever runs `stats`, counted here: the same on SQLite and PostgreSQL.
            per_day = Counter(time.strftime("%Y-%m-%d", time.localtime(at))
                              for (at,) in conn.execute(sa.select(e.at).where(e.at >= since)))
            counts = dict(conn.execute(sa.select(e.decision, sa.func.count()).where(e.at >= since)
                                       .group_by(e.decision)).all())
            up, down = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(sa.case((f.value == 1, 1), else_=0)), 0),
                          sa.func.coalesce(sa.func.sum(sa.case((f.value == -1, 1), else_=0)), 0))
                .select_from(feedback.join(exchanges, f.reply_id == e.reply_id)).where(e.at >= since)).one()
            gaps = conn.execute(_most_asked(e.at >= since, sa.or_(
                e.decision == str(Decision.NOT_FOUND),
                sa.and_(e.decision == str(Decision.ESCALATE), e.escalation_reason == NO_ANSWER_REASON),
                disliked), limit=top)).all()
        # Every decision is shown, in the order of the enum, even at 0; an unknown one (an older log) after them.
        decisions = {str(d): counts.pop(str(d), 0) for d in Decision} | dict(sorted(counts.items()))
        total = sum(decisions.values())
        return Stats(per_day=sorted(per_day.items()), decisions=decisions, total=total,
                     escalation_rate=decisions.get(str(Decision.ESCALATE), 0) / total if total else 0.0,
                     feedback_up=int(up), feedback_down=int(down), gaps=[tuple(row) for row in gaps])

    def top_questions(self, *, days: int = 30, limit: int = 500) -> list[tuple[str, int]]:
        """The questions asked in the period (case and spacing aside), most asked first."""
        since = time.time() - days * 86400
        e = exchanges.c
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(_most_asked(e.at >= since, e.question != "", limit=limit))]

    def export_disliked(self) -> list[dict]:
        """Disliked questions as eval lines ({"id", "question", "gold": [], "expect"}) to turn into test questions.

        One line per distinct question (case and spacing aside), in the order the question was first asked and
        described by that first disliked reply; ``dislikes`` counts the 👎 over all its replies.
        """
        e, f = exchanges.c, feedback.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(e.reply_id, e.question, e.decision, e.citations, sa.func.count())
                .select_from(exchanges.join(feedback, f.reply_id == e.reply_id)).where(f.value == -1)
                .group_by(e.reply_id, e.question, e.decision, e.citations, e.at)
                .order_by(e.at, e.reply_id)).all()
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
        """Release the connections."""
        self.engine.dispose()


def _most_asked(*conditions: sa.ColumnElement[bool], limit: int) -> sa.Select:
    """(question, times asked) of the exchanges that meet ``conditions``, case and spacing aside: most asked
    first, then the most recently asked."""
    e = exchanges.c
    asked = sa.func.lower(sa.func.trim(e.question))
    n = sa.func.count().label("n")
    return (sa.select(asked, n).where(*conditions).group_by(asked)
            .order_by(n.desc(), sa.func.max(e.at).desc()).limit(limit))


_EXCHANGE_COLUMNS = ("reply_id", "at", "channel", "conversation", "user", "question", "query", "decision", "reply",
                     "citations", "confidence", "ticket", "escalation_reason", "full_question")
IMPORT_BATCH = 500
"""Rows per insert, and ids per IN list (older SQLite libraries take at most 999 parameters)."""


def _import_legacy(engine: sa.engine.Engine, path: Path) -> None:
    """Merge the question log of an earlier version's ``audit.sqlite`` into the database, then delete the file (the
    retention purge and `privacy forget` reach only the database).

    Each of its schema versions is read as it is: before version 1 an escalation had no reason, and one logged with a
    confidence was a knowledge gap (rule escalations and requests for an expert had none), which is restored.
    Several workers each had a log of their own: every file is merged; a reply already in the database is kept.
    """
    if not path.is_file():
        return
    moved = 0
    with closing(sqlite3.connect(path)) as old:  # not read-only: a file in WAL mode needs its -shm to be read
        have = {row[1] for row in old.execute("PRAGMA table_info(exchanges)")}
        if have:
            picked = ", ".join(column if column in have else "NULL" for column in _EXCHANGE_COLUMNS)
            gap = "escalation_reason" not in have
            with engine.begin() as conn:
                lock_for_merge(conn)  # another worker merging its log at the same moment waits
                cursor = old.execute(f"SELECT {picked} FROM exchanges")  # noqa: S608 - our own column names
                while batch := cursor.fetchmany(IMPORT_BATCH):
                    ids = [values[0] for values in batch]
                    present = set(conn.execute(sa.select(exchanges.c.reply_id)
                                               .where(exchanges.c.reply_id.in_(ids))).scalars())
                    rows = []
                    for values in batch:
                        row = dict(zip(_EXCHANGE_COLUMNS, values))
                        if row["reply_id"] in present:
                            continue
                        row["officer"] = row.pop("user")
                        if gap and row["decision"] == str(Decision.ESCALATE) and row["confidence"] is not None:
                            row["escalation_reason"] = NO_ANSWER_REASON
                        rows.append(row)
                    if rows:
                        conn.execute(exchanges.insert(), rows)
                    moved += len(rows)
                votes = old.execute("SELECT reply_id, user, at, value FROM feedback")
                while batch := votes.fetchmany(IMPORT_BATCH):
                    present = set(conn.execute(sa.select(feedback.c.reply_id, feedback.c.officer).where(
                        feedback.c.reply_id.in_([vote[0] for vote in batch]))).all())
                    rows = [dict(zip(("reply_id", "officer", "at", "value"), vote)) for vote in batch
                            if (vote[0], vote[1]) not in present]
                    if rows:
                        conn.execute(feedback.insert(), rows)
    delete_sqlite_file(path)
    logger.info("the question log of %s was merged into the database (%d exchanges) and the file deleted", path,
                moved)
