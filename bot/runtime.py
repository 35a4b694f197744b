"""What every channel's runtime shares: limits on how fast one officer may send messages and open tickets.

Each channel keeps a ``SlidingWindowLimiter`` of messages per officer per minute (its ``*_RATE_PER_MINUTE``
setting) and checks it before the core sees a message or a button press; the core holds the stricter ticket limit
(``VRAAGBAAK_TICKETS_PER_HOUR``), so it binds in every channel alike.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

RATE_LIMITED = ("Je stuurt veel berichten kort na elkaar. Wacht even en probeer het over een minuut opnieuw; "
                "je vorige vragen zijn wel verwerkt.")
"""What an officer hears, once, when they go over a channel's message limit."""
MAX_TRACKED = 10_000
"""Officers whose recent events are remembered at once; idle ones are forgotten beyond this, so memory stays
bounded whatever the traffic."""


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
