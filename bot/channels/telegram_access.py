"""Who may use the Telegram bot: user ids from the environment plus officers who redeemed an invite code (SQLite)."""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

ACCESS_FILE = "telegram_access.sqlite"
"""The access database under VRAAGBAAK_HOME."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS invites (
    code_hash TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    uses_left INTEGER NOT NULL CHECK (uses_left >= 0)
);
CREATE TABLE IF NOT EXISTS members (
    user_id INTEGER PRIMARY KEY,
    joined_at REAL NOT NULL
);
"""

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


class TelegramAccess:
    """The allow-list: ids from ``VRAAGBAAK_TELEGRAM_ALLOWED_USERS`` and members added by redeeming an invite."""

    def __init__(self, path: Path, *, allowed: Iterable[int] = (), clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.executescript(_SCHEMA)
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
        """Use one redemption of ``code`` for ``user_id``; False when the code is unknown, used up or expired.

        An officer who is already allowed keeps the code's remaining uses for someone else.
        """
        if self.is_allowed(user_id):
            return True
        if not CODE_PATTERN.match(code or ""):
            return False
        now = self._clock()
        with self._lock, self._db:
            cur = self._db.execute("UPDATE invites SET uses_left = uses_left - 1 "
                                   "WHERE code_hash = ? AND uses_left > 0 AND expires_at > ?", (_hash(code), now))
            if cur.rowcount != 1:
                return False
            self._db.execute("INSERT OR IGNORE INTO members (user_id, joined_at) VALUES (?, ?)", (user_id, now))
        return True

    def members(self) -> list[tuple[int, float]]:
        """Officers admitted through an invite: (user id, when), oldest first."""
        with self._lock:
            return list(self._db.execute("SELECT user_id, joined_at FROM members ORDER BY joined_at"))

    def revoke(self, user_id: int) -> bool:
        """Remove an officer admitted through an invite (ids from the environment stay until the variable changes)."""
        with self._lock, self._db:
            cur = self._db.execute("DELETE FROM members WHERE user_id = ?", (user_id,))
        return cur.rowcount == 1

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def _hash(code: str) -> str:
    # Stored hashed: a copy of the database does not hand out working invites.
    return hashlib.sha256(code.encode()).hexdigest()
