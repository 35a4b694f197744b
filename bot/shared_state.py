"""What a worker would otherwise keep in its own memory, in the database every worker shares.

Several `vraagbaak serve` workers behind one proxy must behave as one: a follow-up that lands on another worker
still knows the question before it, a rate limit counts an officer's messages on every worker, a Teams retry that
reaches the other worker is recognised as a retry, and a `/procedure` walk goes on wherever the next button press
lands. Each piece has the interface of its in-process counterpart (``ConversationMemory``,
``SlidingWindowLimiter``, ``InMemoryWalkStore``) and lives in the ticket database: SQLite under the data dir by
default, PostgreSQL when ``VRAAGBAAK_DATABASE_URL`` names one. Rows carry their time and expire; ``purge`` removes what
has expired (the daily retention pass runs it).

Times are wall-clock (``time.time``): workers on different machines compare them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Hashable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.conversation import TTL_SECONDS, Turn
from bot.messages import Decision
from common.database import open_database

logger = logging.getLogger(__name__)

MAX_KEY_CHARS = 400
"""Conversation ids and limiter keys are built by the channels from platform ids; longer ones are cut (and still
unique enough: the platform part comes first)."""

metadata = sa.MetaData()

turns = sa.Table(
    "state_turns", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation", sa.String(MAX_KEY_CHARS), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("turn", sa.Text, nullable=False),
)
rate_events = sa.Table(
    "state_rate_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("bucket", sa.String(40), nullable=False),
    sa.Column("key", sa.String(MAX_KEY_CHARS), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("state_rate_events_by_key", "bucket", "key", "at"),
)
rate_notices = sa.Table(
    "state_rate_notices", metadata,
    sa.Column("bucket", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(MAX_KEY_CHARS), primary_key=True),
    sa.Column("at", sa.Float, nullable=False),
)
seen = sa.Table(
    "state_seen", metadata,
    sa.Column("key", sa.String(MAX_KEY_CHARS), primary_key=True),
    sa.Column("expires", sa.Float, nullable=False, index=True),
)
leases = sa.Table(
    "state_leases", metadata,
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("until", sa.Float, nullable=False),
)
updates = sa.Table(
    "state_telegram_updates", metadata,
    sa.Column("update_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("chat", sa.String(MAX_KEY_CHARS), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("done_at", sa.Float),
    sa.Index("state_telegram_updates_waiting", "chat", "done_at", "update_id"),
)
walks = sa.Table(
    "state_walks", metadata,
    sa.Column("conversation", sa.String(MAX_KEY_CHARS), primary_key=True),
    sa.Column("answers", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


def _key(value: Hashable) -> str:
    return str(value)[:MAX_KEY_CHARS]


class SharedState:
    """The database the workers share (its tables are created on first use, next to the ticket tables)."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = open_database(url, metadata, pool_pre_ping=True)
        self.clock = clock

    def purge(self, *, turns_older_than: float, walks_older_than_days: float) -> int:
        """Delete what has expired: conversation turns older than ``turns_older_than`` seconds, spent rate
        events and notices and handled Telegram updates (a day old), seen ids past their expiry, walks untouched
        for that many days."""
        now = self.clock()
        with self.engine.begin() as conn:
            return sum(conn.execute(statement).rowcount for statement in (
                turns.delete().where(turns.c.at < now - turns_older_than),
                rate_events.delete().where(rate_events.c.at < now - 86400),
                rate_notices.delete().where(rate_notices.c.at < now - 86400),
                seen.delete().where(seen.c.expires < now),
                updates.delete().where(updates.c.done_at < now - 86400),
                updates.delete().where(updates.c.received_at < now - 7 * 86400),  # never handled: given up
                walks.delete().where(walks.c.updated_at < now - walks_older_than_days * 86400)))

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()


class SharedConversationMemory:
    """``ConversationMemory`` in the shared database: the last few turns per conversation, forgotten after
    ``ttl_seconds``."""

    def __init__(self, state: SharedState, *, max_turns: int = 3, ttl_seconds: float = TTL_SECONDS) -> None:
        self._state = state
        self._max_turns = max_turns
        self._ttl = ttl_seconds

    def history(self, conversation_id: str) -> list[Turn]:
        """Recent turns, oldest first (expired ones left out)."""
        query = (sa.select(turns.c.turn).where(turns.c.conversation == _key(conversation_id),
                                               turns.c.at >= self._state.clock() - self._ttl)
                 .order_by(turns.c.id.desc()).limit(self._max_turns))
        try:
            with self._state.engine.connect() as conn:
                rows = conn.execute(query).scalars().all()
        except SQLAlchemyError as exc:  # the database is down: answer without the context, not with an error
            logger.warning("conversation memory not read (%s)", type(exc).__name__)
            return []
        return [_turn(row) for row in reversed(rows)]

    def add(self, conversation_id: str, turn: Turn) -> None:
        """Remember a turn; only the newest ``max_turns`` of a conversation are kept."""
        conversation = _key(conversation_id)
        try:
            with self._state.engine.begin() as conn:
                conn.execute(turns.insert().values(conversation=conversation, at=turn.at, turn=_turn_json(turn)))
                keep = (sa.select(turns.c.id).where(turns.c.conversation == conversation)
                        .order_by(turns.c.id.desc()).limit(self._max_turns))
                conn.execute(turns.delete().where(turns.c.conversation == conversation, turns.c.id.not_in(keep)))
        except SQLAlchemyError as exc:  # the reply is on its way; only a later follow-up loses its context
            logger.warning("conversation memory not written (%s)", type(exc).__name__)

    def reset(self, conversation_id: str) -> None:
        """Forget a conversation (the /reset command)."""
        with self._state.engine.begin() as conn:
            conn.execute(turns.delete().where(turns.c.conversation == _key(conversation_id)))


def _turn_json(turn: Turn) -> str:
    return json.dumps({"question": turn.question, "query": turn.query, "reply_id": turn.reply_id,
                       "decision": str(turn.decision), "chunk_ids": list(turn.chunk_ids), "at": turn.at,
                       "ticket": turn.ticket, "full_question": turn.full_question}, ensure_ascii=False)


def _turn(text: str) -> Turn:
    data = json.loads(text)
    return Turn(question=data["question"], query=data["query"], reply_id=data["reply_id"],
                decision=Decision(data["decision"]), chunk_ids=tuple(data["chunk_ids"]), at=data["at"],
                ticket=data.get("ticket"), full_question=data.get("full_question") or "")


class SharedRateLimiter:
    """``SlidingWindowLimiter`` in the shared database: at most ``limit`` events per key in any ``window`` seconds,
    counted over every worker; the officer hears about the limit once per episode."""

    def __init__(self, state: SharedState, bucket: str, limit: int, window: float) -> None:
        self._state = state
        self._bucket = bucket
        self.limit = limit
        self.window = window

    def allow(self, key: Hashable) -> tuple[bool, bool]:
        """(allowed, tell the officer)."""
        if self.limit <= 0:
            return True, False
        try:
            return self._allow(_key(key), self._state.clock())
        except SQLAlchemyError as exc:  # the database is down: let the officer through rather than fail the chat
            logger.warning("rate limit %s not checked (%s); allowed", self._bucket, type(exc).__name__)
            return True, False

    def _allow(self, key: str, now: float) -> tuple[bool, bool]:
        mine = (rate_events.c.bucket == self._bucket, rate_events.c.key == key)
        notice = (rate_notices.c.bucket == self._bucket, rate_notices.c.key == key)
        with self._state.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # One officer's count at a time across workers: without it, messages that arrive together are
                # all counted before any is recorded (SQLite's write lock, taken by the DELETE, does this there).
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{self._bucket}|{key}"})
            conn.execute(rate_events.delete().where(*mine, rate_events.c.at <= now - self.window))
            count = conn.execute(sa.select(sa.func.count()).select_from(rate_events).where(*mine)).scalar_one()
            if count < self.limit:
                conn.execute(rate_events.insert().values(bucket=self._bucket, key=key, at=now))
                conn.execute(rate_notices.delete().where(*notice))
                return True, False
            if conn.execute(sa.select(rate_notices.c.at).where(*notice)).first() is not None:
                return False, False
        try:
            with self._state.engine.begin() as conn:
                conn.execute(rate_notices.insert().values(bucket=self._bucket, key=key, at=now))
        except IntegrityError:  # another worker told them a moment ago
            return False, False
        return False, True


class SharedSeenIds:
    """Ids already handled by some worker (Teams activity ids), remembered for ``ttl_seconds`` once answered.

    An id is first taken *in progress* for ``in_progress_seconds`` only: a worker that dies in the middle of a turn
    leaves no HTTP answer, the platform retries, and the retry (on any worker, or on this one restarted) takes the
    id over once that short claim has run out, instead of being dropped as a duplicate of an answer never sent.
    """

    def __init__(self, state: SharedState, *, ttl_seconds: float = 86400, in_progress_seconds: float = 12.0) -> None:
        self._state = state
        self._ttl = ttl_seconds
        self._in_progress = in_progress_seconds
        self._done_beyond = (ttl_seconds + in_progress_seconds) / 2
        """An expiry further ahead than this is a done id (a day), nearer a claim (seconds): compared half-way, clocks
        of two machines that differ by a little cannot make a claim look done."""

    def first_time(self, key: str) -> bool:
        """True for the first worker that sees ``key`` (within its lifetime), False for every later one; True
        when the database cannot be asked (a retry may then be answered twice, rather than nothing at all)."""
        try:
            return self._first_time(_key(key), self._state.clock())
        except SQLAlchemyError as exc:
            logger.warning("handled ids not checked (%s); treated as new", type(exc).__name__)
            return True

    def _first_time(self, key: str, now: float) -> bool:
        try:
            with self._state.engine.begin() as conn:
                conn.execute(seen.insert().values(key=key, expires=now + self._in_progress))
            return True
        except IntegrityError:
            pass
        with self._state.engine.begin() as conn:  # seen before: only an expired entry may be taken over
            taken = conn.execute(seen.update().where(seen.c.key == key, seen.c.expires < now)
                                 .values(expires=now + self._in_progress)).rowcount
        return taken == 1

    def answered(self, key: str) -> bool:
        """Whether the turn of a ``key`` seen before is over; False while a worker holds it in progress (it may
        have died: the retry is then answered once the claim has run out). True when the database cannot say."""
        now = self._state.clock()
        try:
            with self._state.engine.connect() as conn:
                expires = conn.execute(sa.select(seen.c.expires).where(seen.c.key == _key(key))).scalar()
        except SQLAlchemyError as exc:
            logger.warning("handled id not checked (%s); treated as answered", type(exc).__name__)
            return True
        return expires is None or expires - now > self._done_beyond

    def renew(self, key: str) -> None:
        """Extend the claim of an id whose turn still runs (only while it is a claim, never a done id)."""
        now = self._state.clock()
        try:
            with self._state.engine.begin() as conn:
                conn.execute(seen.update().where(seen.c.key == _key(key),
                                                 seen.c.expires < now + self._done_beyond)
                             .values(expires=now + self._in_progress))
        except SQLAlchemyError as exc:
            logger.warning("handled id not renewed (%s)", type(exc).__name__)

    def done(self, key: str) -> None:
        """The id's turn is over (answered, or apologised for): a retry of it is a duplicate from now on."""
        try:
            with self._state.engine.begin() as conn:
                conn.execute(seen.update().where(seen.c.key == _key(key))
                             .values(expires=self._state.clock() + self._ttl))
        except SQLAlchemyError as exc:  # the claim runs out and a retry would be answered again: logged
            logger.warning("handled id not recorded as done (%s)", type(exc).__name__)


class SharedLease:
    """One holder at a time for work that must run once however many workers there are (the mailbox poll):
    held for ``seconds`` and renewed by its holder; a holder that dies is replaced once its lease has run out."""

    def __init__(self, state: SharedState, name: str, holder: str, *, seconds: float) -> None:
        self._state = state
        self._name = name
        self.holder = holder[:200]
        self._seconds = seconds
        self._refused_by: str | None = None

    def hold(self) -> bool:
        """Take or renew the lease; True while this holder has it (a refusal names the holder in the log once)."""
        now = self._state.clock()
        until = now + self._seconds
        with self._state.engine.begin() as conn:
            taken = conn.execute(leases.update().where(
                leases.c.name == self._name, sa.or_(leases.c.holder == self.holder, leases.c.until < now))
                .values(holder=self.holder, until=until)).rowcount
        if taken:
            return True
        try:
            with self._state.engine.begin() as conn:
                conn.execute(leases.insert().values(name=self._name, holder=self.holder, until=until))
            return True
        except IntegrityError:  # another worker holds it (or took it a moment ago)
            pass
        with self._state.engine.connect() as conn:
            row = conn.execute(sa.select(leases.c.holder, leases.c.until).where(leases.c.name == self._name)).first()
        if row is not None and row.holder != self._refused_by:
            self._refused_by = row.holder
            # After a crash a lone worker waits here for its own previous lease to run out: say so.
            logger.info("%s is held by %s until %s; this worker leaves that work to it", self._name, row.holder,
                        time.strftime("%H:%M:%S", time.localtime(row.until)))
        return False

    def release(self) -> None:
        """Give the lease up (at a clean stop), so another worker takes over at its next pass."""
        with self._state.engine.begin() as conn:
            conn.execute(leases.delete().where(leases.c.name == self._name, leases.c.holder == self.holder))


class SharedWalkStore:
    """``WalkStore`` in the shared database: where each conversation is in the `/procedure` tree."""

    def __init__(self, state: SharedState) -> None:
        self._state = state

    def get(self, conversation: str) -> list[tuple[str, int]] | None:
        """The answers given so far, or None when no walk is going on (or the database cannot say: every message
        asks, and a question is better answered than refused; storing a step while it is away fails loudly)."""
        try:
            with self._state.engine.connect() as conn:
                row = conn.execute(sa.select(walks.c.answers)
                                   .where(walks.c.conversation == _key(conversation))).first()
        except SQLAlchemyError as exc:
            logger.warning("procedure walk not read (%s)", type(exc).__name__)
            return None
        return [(str(q), int(i)) for q, i in json.loads(row[0])] if row else None

    def put(self, conversation: str, answers: list[tuple[str, int]]) -> None:
        """Remember the answers given so far."""
        key, text, now = _key(conversation), json.dumps(answers), self._state.clock()
        with self._state.engine.begin() as conn:
            if conn.execute(walks.update().where(walks.c.conversation == key)
                            .values(answers=text, updated_at=now)).rowcount == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(walks.insert().values(conversation=key, answers=text, updated_at=now))
                except IntegrityError:  # another worker started it a moment ago: the later answer wins
                    conn.execute(walks.update().where(walks.c.conversation == key)
                                 .values(answers=text, updated_at=now))

    def clear(self, conversation: str) -> None:
        """The walk ended or was stopped."""
        with self._state.engine.begin() as conn:
            conn.execute(walks.delete().where(walks.c.conversation == _key(conversation)))


class SharedUpdateInbox:
    """Telegram webhook updates with several workers: stored before they are acknowledged, then handled one chat at
    a time, in update order, by whichever worker holds the chat's claim.

    Any worker takes any update (a proxy spreads them), so two messages of one officer may reach two workers. Each
    worker stores the update (Telegram's redelivery of the same id is recognised), acknowledges it, and drains the
    chat if it can claim it: the holder handles the chat's waiting updates lowest id first, so a question and the
    "/expert" about it are handled in that order wherever they landed. A worker that dies with a claim leaves its
    updates waiting; the claim runs out and another worker's sweep handles them (nothing acknowledged is lost).
    """

    def __init__(self, state: SharedState, holder: str, *, claim_seconds: float = 30.0) -> None:
        self._state = state
        self.holder = holder
        self._claim_seconds = claim_seconds
        self._claims: dict[str, SharedLease] = {}

    def add(self, update_id: int, chat: str, body: str) -> bool:
        """Store an update; False when it is there already (Telegram delivered it again)."""
        try:
            with self._state.engine.begin() as conn:
                conn.execute(updates.insert().values(update_id=update_id, chat=_key(chat), body=body,
                                                     received_at=self._state.clock()))
            return True
        except IntegrityError:
            return False

    def claim(self, chat: str) -> bool:
        """Take or renew the chat's claim; False while another worker holds it."""
        lease = self._claims.get(chat)
        if lease is None:
            lease = self._claims[chat] = SharedLease(self._state, f"telegram-chat:{_key(chat)}"[:80], self.holder,
                                                     seconds=self._claim_seconds)
        if lease.hold():
            return True
        del self._claims[chat]  # another worker's chat: nothing of it is kept here
        return False

    def release(self, chat: str) -> None:
        """Give the chat's claim up."""
        lease = self._claims.pop(chat, None)
        if lease is not None:
            lease.release()

    def next(self, chat: str) -> tuple[int, str] | None:
        """The chat's oldest waiting update (id, JSON body), or None."""
        with self._state.engine.connect() as conn:
            row = conn.execute(sa.select(updates.c.update_id, updates.c.body)
                               .where(updates.c.chat == _key(chat), updates.c.done_at.is_(None))
                               .order_by(updates.c.update_id).limit(1)).first()
        return (int(row.update_id), row.body) if row else None

    def done(self, update_id: int) -> None:
        """The update was handled (answered, or apologised for)."""
        with self._state.engine.begin() as conn:
            # The officer's message and name are not kept once handled: the id alone recognises a redelivery.
            conn.execute(updates.update().where(updates.c.update_id == update_id)
                         .values(done_at=self._state.clock(), body=""))

    def waiting_chats(self, *, older_than: float, limit: int = 100) -> list[str]:
        """Chats with updates waiting longer than ``older_than`` seconds (their worker may have died)."""
        with self._state.engine.connect() as conn:
            return list(conn.execute(sa.select(updates.c.chat).where(
                updates.c.done_at.is_(None), updates.c.received_at < self._state.clock() - older_than)
                .group_by(updates.c.chat).limit(limit)).scalars())
