"""Who may use the Telegram bot: user ids from the environment plus officers who redeemed an invite code (SQLite)."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

ACCESS_FILE = "telegram_access.sqlite"
"""The access database under VRAAGBAAK_HOME."""

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: invite codes (hashed) and the officers who redeemed one.
    ("""CREATE TABLE IF NOT EXISTS invites (
            code_hash TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            uses_left INTEGER NOT NULL CHECK (uses_left >= 0))""",
     """CREATE TABLE IF NOT EXISTS members (
            user_id INTEGER PRIMARY KEY,
            joined_at REAL NOT NULL)"""),
    # 2: invites get a stable id (to list and invalidate them); who redeemed which invite; revoked officers, so a
    # revocation outlives the invite they came in with.
    ("""CREATE TABLE invites_v2 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            code_hash TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            uses_left INTEGER NOT NULL CHECK (uses_left >= 0),
            invalidated_at REAL)""",
     """INSERT INTO invites_v2 (code_hash, created_at, expires_at, uses_left)
            SELECT code_hash, created_at, expires_at, uses_left FROM invites ORDER BY created_at""",
     "DROP TABLE invites",
     "ALTER TABLE invites_v2 RENAME TO invites",
     """CREATE TABLE redemptions (
            invite_id INTEGER NOT NULL REFERENCES invites (id),
            user_id INTEGER NOT NULL,
            redeemed_at REAL NOT NULL)""",
     "CREATE INDEX redemptions_by_invite ON redemptions (invite_id)",
     """CREATE TABLE revocations (
            user_id INTEGER PRIMARY KEY,
            revoked_at REAL NOT NULL)"""),
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
    """The allow-list: ids from ``VRAAGBAAK_TELEGRAM_ALLOWED_USERS`` and members added by redeeming an invite."""

    def __init__(self, path: Path, *, allowed: Iterable[int] = (), clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        _migrate(self._db)
        self._allowed = frozenset(allowed)
        self._clock = clock
        self._lock = threading.Lock()

    def is_allowed(self, user_id: int) -> bool:
        """Whether this Telegram user may ask questions."""
        if user_id in self._allowed:
            return True
        with self._lock:
            row = self._db.execute("SELECT 1 FROM members WHERE user_id = ?", (user_id,)).fetchone()
        return row is not None

    def create_invite(self, *, uses: int = 1, days: float = 7.0) -> Invite:
        """A random code valid for ``uses`` officers during ``days`` days."""
        if uses < 1 or days <= 0:
            raise ValueError("an invite needs at least one use and a positive validity")
        code = secrets.token_urlsafe(18)  # 24 characters from the deep-link alphabet
        now = self._clock()
        expires = now + days * 86400
        with self._lock:
            self._db.execute("INSERT INTO invites (code_hash, created_at, expires_at, uses_left) VALUES (?, ?, ?, ?)",
                             (_hash(code), now, expires, uses))
            self._db.commit()
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
        with self._lock, self._db:
            invite = self._db.execute("SELECT id, created_at FROM invites WHERE code_hash = ? AND uses_left > 0 "
                                      "AND expires_at > ? AND invalidated_at IS NULL", (_hash(code), now)).fetchone()
            if invite is None:
                return False
            invite_id, created_at = invite
            revoked = self._db.execute("SELECT revoked_at FROM revocations WHERE user_id = ?", (user_id,)).fetchone()
            if revoked is not None and revoked[0] >= created_at:
                logger.info("Telegram invite refused: the officer was revoked after the invite was created")
                return False
            cur = self._db.execute("UPDATE invites SET uses_left = uses_left - 1 WHERE id = ? AND uses_left > 0",
                                   (invite_id,))
            if cur.rowcount != 1:  # another process took the last use in between
                return False
            self._db.execute("INSERT INTO redemptions (invite_id, user_id, redeemed_at) VALUES (?, ?, ?)",
                             (invite_id, user_id, now))
            self._db.execute("INSERT OR IGNORE INTO members (user_id, joined_at) VALUES (?, ?)", (user_id, now))
        return True

    def invites(self) -> list[InviteRecord]:
        """Every stored invite, oldest first, with how many officers it admitted."""
        with self._lock:
            rows = list(self._db.execute(
                "SELECT i.id, i.created_at, i.expires_at, i.uses_left, "
                "(SELECT COUNT(*) FROM redemptions r WHERE r.invite_id = i.id), i.invalidated_at "
                "FROM invites i ORDER BY i.id"))
        return [InviteRecord(*row) for row in rows]

    def invalidate(self, invite_id: int) -> bool:
        """Make an invite unusable from now on (who already joined with it stays); False when there is no such
        invite. Invalidating twice keeps the first moment."""
        with self._lock, self._db:
            cur = self._db.execute("UPDATE invites SET invalidated_at = COALESCE(invalidated_at, ?) WHERE id = ?",
                                   (self._clock(), invite_id))
        return cur.rowcount == 1

    def members(self) -> list[tuple[int, float]]:
        """Officers admitted through an invite: (user id, when), oldest first."""
        with self._lock:
            return list(self._db.execute("SELECT user_id, joined_at FROM members ORDER BY joined_at"))

    def revoke(self, user_id: int) -> bool:
        """Remove an officer admitted through an invite, for good: no invite created before now admits them again
        (ids from the environment stay until the variable changes). False when they did not join by invite."""
        with self._lock, self._db:
            cur = self._db.execute("DELETE FROM members WHERE user_id = ?", (user_id,))
            if cur.rowcount != 1:
                return False
            self._db.execute("INSERT OR REPLACE INTO revocations (user_id, revoked_at) VALUES (?, ?)",
                             (user_id, self._clock()))
        return True

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def _migrate(db: sqlite3.Connection) -> None:
    """Bring the database to the latest schema, one numbered step per transaction (PRAGMA user_version)."""
    for number, statements in enumerate(_MIGRATIONS, start=1):
        if db.execute("PRAGMA user_version").fetchone()[0] >= number:
            continue
        db.execute("BEGIN IMMEDIATE")  # one process migrates; another waits, then finds the step done
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] < number:
                for statement in statements:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number:d}")  # a PRAGMA takes no parameters; an int of ours
            db.commit()
        except BaseException:
            db.rollback()
            raise


def _hash(code: str) -> str:
    # Stored hashed: a copy of the database does not hand out working invites.
    return hashlib.sha256(code.encode()).hexdigest()
