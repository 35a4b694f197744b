"""Who may use the Telegram bot: user ids from the environment plus officers who redeemed an invite code.

The invites and the admitted officers live in the deployment's database (SQLite under the data dir by default,
PostgreSQL when ``VRAAGBAAK_DATABASE_URL`` names one), so an officer admitted through one worker is admitted by
every worker, and a revocation reaches them all. An earlier version kept them in ``telegram_access.sqlite`` under
the data dir; the first start that finds that file merges it into the database and deletes it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from common.database import SMALL_POOL, delete_sqlite_file, lock_for_merge, merge_legacy_file, open_database

logger = logging.getLogger(__name__)

LEGACY_FILE = "telegram_access.sqlite"
"""Where versions before the shared database kept the access list (under VRAAGBAAK_HOME); merged in, then deleted."""

MAX_KNOWN = 10_000
"""Admitted officers a worker remembers, to go on serving them while the database is away; beyond it the memory
starts over."""
KNOWN_SECONDS = 900.0
"""How long ago the database must have confirmed an officer for the worker to serve them while it is away (a
revocation made just before an outage holds at the latest this long after it)."""

metadata = sa.MetaData()

invites = sa.Table(
    "telegram_invites", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("uses_left", sa.Integer, sa.CheckConstraint("uses_left >= 0"), nullable=False),
    sa.Column("invalidated_at", sa.Float),
)
redemptions = sa.Table(
    "telegram_redemptions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("invite_id", sa.Integer, sa.ForeignKey("telegram_invites.id"), nullable=False, index=True),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("redeemed_at", sa.Float, nullable=False),
)
members = sa.Table(
    "telegram_members", metadata,
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("joined_at", sa.Float, nullable=False),
)
revocations = sa.Table(
    "telegram_revocations", metadata,
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("revoked_at", sa.Float, nullable=False),
)

CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
"""What a /start deep-link payload may look like (Telegram allows A-Z a-z 0-9 _ - up to 64 characters)."""


@dataclass(frozen=True)
class Invite:
    """A freshly created invite code; only its hash is stored, so it is shown once."""

    code: str
    uses: int
    expires_at: float

    def link(self, bot_username: str | None) -> str:
        """The deep link that redeems the code, or the command to type when the bot's name is not known."""
        if bot_username:
            return f"https://t.me/{bot_username.lstrip('@')}?start={self.code}"
        return f"/start {self.code}"


@dataclass(frozen=True)
class InviteRecord:
    """A stored invite as `vraagbaak telegram invites` lists it: never the code, which only the officer has."""

    id: int
    created_at: float
    expires_at: float
    uses_left: int
    redeemed: int
    """Officers admitted with it (redemptions before invites had ids were not counted)."""
    invalidated_at: float | None

    def state(self, now: float) -> str:
        """invalidated, expired, used up or valid."""
        if self.invalidated_at is not None:
            return "invalidated"
        if self.expires_at <= now:
            return "expired"
        return "used up" if self.uses_left <= 0 else "valid"


class TelegramAccess:
    """The allow-list: ids from ``VRAAGBAAK_TELEGRAM_ALLOWED_USERS`` and members added by redeeming an invite.

    ``legacy``: an access file of an earlier version, merged into the database and then deleted.
    """

    def __init__(self, url: str, *, allowed: Iterable[int] = (), clock: Callable[[], float] = time.time,
                 legacy: Path | None = None, known_seconds: float = KNOWN_SECONDS) -> None:
        self.engine = open_database(url, metadata, pool_pre_ping=True, **SMALL_POOL,
                                    then=merge_legacy_file("Telegram access list", legacy, _import_legacy))
        self._allowed = frozenset(allowed)
        self._clock = clock
        self._known_seconds = known_seconds
        self._known: dict[int, float] = {}  # officer the database said was admitted -> when (monotonic)
        self._lock = threading.Lock()

    def is_allowed(self, user_id: int) -> bool:
        """Whether this Telegram user may ask questions (the database is asked each time: a revocation made
        through another worker or the command line holds from the next message on).

        Raises SQLAlchemyError when the database cannot say and this worker did not see the officer admitted in
        the last ``KNOWN_SECONDS``: nobody is let in on a guess, and nobody just seen admitted is turned away while
        the database is briefly away.
        """
        if user_id in self._allowed:
            return True
        try:
            with self.engine.connect() as conn:
                admitted = conn.execute(sa.select(members.c.user_id).where(members.c.user_id == user_id)).first()
        except SQLAlchemyError as exc:
            with self._lock:
                confirmed = self._known.get(user_id)
            if confirmed is None or time.monotonic() - confirmed > self._known_seconds:
                raise
            logger.warning("the Telegram access list cannot be read (%s); an officer seen admitted before is "
                           "served", type(getattr(exc, "orig", None) or exc).__name__)
            return True
        with self._lock:
            if admitted is None:
                self._known.pop(user_id, None)
            else:
                if len(self._known) >= MAX_KNOWN:
                    self._known.clear()
                self._known[user_id] = time.monotonic()
        return admitted is not None

    def create_invite(self, *, uses: int = 1, days: float = 7.0) -> Invite:
        """A random code valid for ``uses`` officers during ``days`` days."""
        if uses < 1 or days <= 0:
            raise ValueError("an invite needs at least one use and a positive validity")
        code = secrets.token_urlsafe(18)  # 24 characters from the deep-link alphabet
        now = self._clock()
        expires = now + days * 86400
        with self.engine.begin() as conn:
            conn.execute(invites.insert().values(code_hash=_hash(code), created_at=now, expires_at=expires,
                                                 uses_left=uses))
        return Invite(code=code, uses=uses, expires_at=expires)

    def redeem(self, code: str, user_id: int) -> bool:
        """Use one redemption of ``code`` for ``user_id``; False when the code is unknown, used up, expired or
        invalidated, or when ``user_id`` was revoked after the invite was created.

        An officer who is already allowed keeps the code's remaining uses for someone else, and so does a revoked
        officer who is refused.
        """
        if self.is_allowed(user_id):
            return True
        if not CODE_PATTERN.match(code or ""):
            return False
        now = self._clock()
        try:
            with self.engine.begin() as conn:
                invite = conn.execute(sa.select(invites.c.id, invites.c.created_at).where(
                    invites.c.code_hash == _hash(code), invites.c.uses_left > 0, invites.c.expires_at > now,
                    invites.c.invalidated_at.is_(None))).first()
                if invite is None:
                    return False
                revoked = conn.execute(sa.select(revocations.c.revoked_at).where(
                    revocations.c.user_id == user_id)).scalar()
                if revoked is not None and revoked >= invite.created_at:
                    logger.info("Telegram invite refused: the officer was revoked after the invite was created")
                    return False
                # The conditions again: an invalidation committed since the select must win.
                taken = conn.execute(invites.update().where(
                    invites.c.id == invite.id, invites.c.uses_left > 0, invites.c.expires_at > now,
                    invites.c.invalidated_at.is_(None)).values(uses_left=invites.c.uses_left - 1))
                if taken.rowcount != 1:  # another worker took the last use in between
                    return False
                conn.execute(redemptions.insert().values(invite_id=invite.id, user_id=user_id, redeemed_at=now))
                conn.execute(members.insert().values(user_id=user_id, joined_at=now))
        except IntegrityError:  # admitted through another worker a moment ago: that redemption stands, not this one
            return self.is_allowed(user_id)
        return True

    def invites(self) -> list[InviteRecord]:
        """Every stored invite, oldest first, with how many officers it admitted."""
        admitted = (sa.select(sa.func.count()).select_from(redemptions)
                    .where(redemptions.c.invite_id == invites.c.id).scalar_subquery())
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(invites.c.id, invites.c.created_at, invites.c.expires_at,
                                          invites.c.uses_left, admitted, invites.c.invalidated_at)
                                .order_by(invites.c.id)).all()
        return [InviteRecord(*row) for row in rows]

    def invalidate(self, invite_id: int) -> bool:
        """Make an invite unusable from now on (who already joined with it stays); False when there is no such
        invite. Invalidating twice keeps the first moment."""
        with self.engine.begin() as conn:
            done = conn.execute(invites.update().where(invites.c.id == invite_id).values(
                invalidated_at=sa.func.coalesce(invites.c.invalidated_at, self._clock())))
        return done.rowcount == 1

    def members(self) -> list[tuple[int, float]]:
        """Officers admitted through an invite: (user id, when), oldest first."""
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(
                sa.select(members.c.user_id, members.c.joined_at).order_by(members.c.joined_at, members.c.user_id))]

    def revoke(self, user_id: int) -> bool:
        """Remove an officer admitted through an invite, for good: no invite created before now admits them again
        (ids from the environment stay until the variable changes). False when they did not join by invite."""
        now = self._clock()
        with self.engine.begin() as conn:
            if conn.execute(members.delete().where(members.c.user_id == user_id)).rowcount != 1:
                return False
            conn.execute(revocations.delete().where(revocations.c.user_id == user_id))
            conn.execute(revocations.insert().values(user_id=user_id, revoked_at=now))
        with self._lock:
            self._known.pop(user_id, None)
        return True

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()


def _import_legacy(engine: sa.engine.Engine, path: Path) -> None:
    """Merge the access list of an earlier version's ``telegram_access.sqlite`` into the database, then delete
    the file (it would keep officers' ids out of reach of `telegram revoke`).

    Its two schemas are read as they are (1: invites without ids, members; 2: with ids, redemptions, revocations).
    Several workers each had a file of their own (or copies of one data dir): every file is merged. An invite in
    both keeps the stricter state; the later of two revocations counts; an officer is a member when their latest
    admission is after their latest revocation, whichever file either is in. New invites get the database's ids
    (`telegram invites` shows them).
    """
    if not path.is_file():
        return
    with closing(sqlite3.connect(path)) as old:
        tables = {name for (name,) in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        with_ids = "redemptions" in tables
        old_invites = old.execute(
            "SELECT id, code_hash, created_at, expires_at, uses_left, invalidated_at FROM invites ORDER BY id"
            if with_ids else "SELECT NULL, code_hash, created_at, expires_at, uses_left, NULL FROM invites "
            "ORDER BY created_at").fetchall() if "invites" in tables else []
        old_members = old.execute("SELECT user_id, joined_at FROM members").fetchall() if "members" in tables else []
        old_redemptions = old.execute("SELECT invite_id, user_id, redeemed_at FROM redemptions").fetchall() \
            if with_ids else []
        old_revocations = old.execute("SELECT user_id, revoked_at FROM revocations").fetchall() \
            if "revocations" in tables else []
    with engine.begin() as conn:
        lock_for_merge(conn)  # another worker merging its file at the same moment waits: each sees the other's
        new_invites = _merge_invites(conn, old_invites, old_redemptions)
        revoked = dict(conn.execute(sa.select(revocations.c.user_id, revocations.c.revoked_at)).all())
        for user_id, at in old_revocations:
            if at > revoked.get(user_id, float("-inf")):
                revoked[user_id] = at
                conn.execute(revocations.delete().where(revocations.c.user_id == user_id))
                conn.execute(revocations.insert().values(user_id=user_id, revoked_at=at))
        # An officer is a member when their latest admission, in the database or the file, is after their latest
        # revocation; the database keeps that latest admission.
        joined = dict(conn.execute(sa.select(members.c.user_id, members.c.joined_at)).all())
        in_database = set(joined)
        for user_id, at in old_members:
            joined[user_id] = max(at, joined.get(user_id, float("-inf")))
        changed = 0
        for user_id, at in joined.items():
            member = at > revoked.get(user_id, float("-inf"))
            if user_id in in_database:
                conn.execute(members.delete().where(members.c.user_id == user_id))
            if member:
                conn.execute(members.insert().values(user_id=user_id, joined_at=at))
            changed += member != (user_id in in_database)
    delete_sqlite_file(path)
    logger.info("the Telegram access list of %s was merged into the database and the file deleted (%d new "
                "invites, %d officers admitted or removed)", path, new_invites, changed)


def _merge_invites(conn: sa.engine.Connection, old_invites: list, old_redemptions: list) -> int:
    """Merge a file's invites and redemptions; returns how many invites were new. An invite in both keeps the
    stricter of the two (fewest uses left, earliest expiry and invalidation); its redemptions are kept once."""
    known = {row.code_hash: row for row in conn.execute(sa.select(invites))}
    ids, new = {}, 0
    for old_id, code_hash, created_at, expires_at, uses_left, invalidated_at in old_invites:
        there = known.get(code_hash)
        if there is None:
            ids[old_id] = conn.execute(invites.insert().values(
                code_hash=code_hash, created_at=created_at, expires_at=expires_at, uses_left=uses_left,
                invalidated_at=invalidated_at)).inserted_primary_key[0]
            new += 1
            continue
        ids[old_id] = there.id
        stamps = [t for t in (there.invalidated_at, invalidated_at) if t is not None]
        conn.execute(invites.update().where(invites.c.id == there.id).values(
            uses_left=min(there.uses_left, uses_left), expires_at=min(there.expires_at, expires_at),
            invalidated_at=min(stamps) if stamps else None))
    have = set(conn.execute(sa.select(redemptions.c.invite_id, redemptions.c.user_id, redemptions.c.redeemed_at)))
    rows = [{"invite_id": ids[invite_id], "user_id": user_id, "redeemed_at": at}
            for invite_id, user_id, at in old_redemptions
            if invite_id in ids and (ids[invite_id], user_id, at) not in have]
    if rows:
        conn.execute(redemptions.insert(), rows)
    return new


def _hash(code: str) -> str:
    # Stored hashed: a copy of the database does not hand out working invites.
    return hashlib.sha256(code.encode()).hexdigest()
