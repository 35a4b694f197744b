"""What every channel's runtime shares: the helpdesk built once and called off the event loop, one event at a
time per conversation, the conversation key in groups, and limits on how fast one officer may send messages and
open tickets.

Each channel keeps a ``SlidingWindowLimiter`` of messages per officer per minute (its ``*_RATE_PER_MINUTE``
setting) and checks it before the core sees a message or a button press; the core holds the stricter ticket limit
(``VRAAGBAAK_TICKETS_PER_HOUR``), so it binds in every channel alike. Limiters and the ids a channel has already
handled are ports: in memory for one process (here), in the database every worker shares for several
(``bot/shared_state.py``, which `vraagbaak serve` uses).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Hashable
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from bot.core import HelpdeskService

T = TypeVar("T")

MAX_TRACKED = 10_000
"""Officers whose recent events are remembered at once; idle ones are forgotten beyond this, so memory stays
bounded whatever the traffic."""


class Limiter(Protocol):
    """How many events one key (an officer) may cause: ``SlidingWindowLimiter`` or ``SharedRateLimiter``."""

    limit: int

    def allow(self, key: Hashable) -> tuple[bool, bool]:
        """(allowed, tell the officer): they hear about the limit once per episode, not at every refusal."""
        ...


class SeenIds(Protocol):
    """Ids a channel has handled, so a platform's retry is not answered twice."""

    def first_time(self, key: str) -> bool:
        """True the first time ``key`` is offered (it is then in progress), False after."""
        ...

    def done(self, key: str) -> None:
        """``key`` has been answered: a retry of it is a duplicate for the whole lifetime of the id."""
        ...

    def answered(self, key: str) -> bool:
        """For a ``key`` seen before: whether its turn is over (False: still in progress, perhaps at a worker that
        died, so the platform should try again later)."""
        ...

    def renew(self, key: str) -> None:
        """The turn of ``key`` is still running here: keep it claimed (a slow turn is not taken over)."""
        ...


class InMemorySeenIds:
    """The last ``capacity`` ids, in this process (a retry that reaches another worker is not recognised)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def first_time(self, key: str) -> bool:
        """True the first time ``key`` is offered, False after (until it is among the oldest forgotten)."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            if len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
            return True

    def done(self, key: str) -> None:
        """Nothing to add: in one process an id in progress is as good as answered (a crash forgets both)."""

    def answered(self, key: str) -> bool:
        """Always: the turn in progress is in this process, and it will answer."""
        return True

    def renew(self, key: str) -> None:
        """Nothing to renew: an id stays seen in this process."""


class SlidingWindowLimiter:
    """At most ``limit`` events per key in any sliding ``window`` seconds, in memory (a restart forgives everyone).

    Thread-safe: the channels call it from their event loops and the core from worker threads.
    """

    def __init__(self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[Hashable, deque[float]] = {}
        self._warned: set[Hashable] = set()
        self._lock = threading.Lock()

    def allow(self, key: Hashable) -> tuple[bool, bool]:
        """(allowed, tell the officer): they hear about the limit once per episode, not at every refusal."""
        if self.limit <= 0:
            return True, False
        with self._lock:
            now = self._clock()
            events = self._events.setdefault(key, deque())
            while events and now - events[0] >= self.window:
                events.popleft()
            if len(events) < self.limit:
                events.append(now)
                self._warned.discard(key)
                if len(self._events) > MAX_TRACKED:
                    self._forget_idle(now)
                return True, False
            tell = key not in self._warned
            self._warned.add(key)
            return False, tell

    def _forget_idle(self, now: float) -> None:
        for idle in [k for k, events in self._events.items() if not events or now - events[-1] >= self.window]:
            del self._events[idle]
            self._warned.discard(idle)


class Core:
    """The helpdesk as a channel holds it: built on first use, once, and called off the event loop.

    Building it loads the model and the index, which delivering an expert answer does not need; two threads that
    ask for it together build it once (a lock, not ``cached_property``, which stops locking in Python 3.12).
    """

    def __init__(self, helpdesk: HelpdeskService | Callable[[], HelpdeskService]) -> None:
        self._helpdesk = helpdesk
        self._lock = threading.Lock()

    @property
    def helpdesk(self) -> HelpdeskService:
        """The helpdesk, built now if it was not yet (only from a worker thread: it may take seconds)."""
        with self._lock:
            if callable(self._helpdesk):
                self._helpdesk = self._helpdesk()
            return self._helpdesk

    async def call(self, work: Callable[[HelpdeskService], T]) -> T:
        """Run a blocking helpdesk call (search, SQLite, the model) in a worker thread."""
        return await asyncio.to_thread(lambda: work(self.helpdesk))


class InOrder:
    """One event at a time per conversation, in arrival order; different conversations at the same time.

    A conversation's lock lives while one of its events is in hand, so memory follows the traffic. Enter it in the
    handler's first step: asyncio.Lock serves its waiters first come, first served, and tasks start in the order
    they were created.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: Counter[str] = Counter()

    @contextlib.asynccontextmanager
    async def __call__(self, conversation: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(conversation, asyncio.Lock())
        self._users[conversation] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[conversation] -= 1
            if not self._users[conversation]:
                del self._users[conversation], self._locks[conversation]

    def __len__(self) -> int:
        """Conversations with an event in hand."""
        return len(self._locks)


def conversation_key(channel: str, chat: object, user: object, *, shared: bool) -> str:
    """The core's conversation: the chat, and in a group chat or channel each officer's own thread in it, so one
    officer's /expert never escalates a colleague's question and follow-ups never take a colleague's as context."""
    return f"{channel}:{chat}:{user}" if shared else f"{channel}:{chat}"


def database_away(error: BaseException | None) -> bool:
    """Whether a failed turn failed because the shared database (or the index in it) could not be reached: the
    officer is then asked to try again in a minute, not told that something broke."""
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from retrieval.errors import IndexUnavailableError

    seen = 0
    while error is not None and seen < 10:  # a cause chain is short; never follow a cycle
        if isinstance(error, (OperationalError, InterfaceError, DisconnectionError, PoolTimeout,
                              IndexUnavailableError)):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False
