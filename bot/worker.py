"""Background work of a running Vraagbaak: send queued mail, read expert replies, deliver answers, remind."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from escalation.delivery import Deliverer
from escalation.errors import EscalationError
from escalation.service import EscalationService

logger = logging.getLogger(__name__)


ONCE_PER_DEPLOYMENT = frozenset({"intake", "remind", "purge"})
"""Steps only the lease holder runs: two pollers of one mailbox would race, two reminder passes remind twice."""


@dataclass
class EscalationWorker:
    """One pass does everything that is due; ``run`` repeats it until stopped."""

    service: EscalationService
    mailbox_factory: Callable[[], object | None]
    deliverers: Callable[[], dict[str, Deliverer]] = dict
    interval_seconds: float = 60.0
    purge: Callable[[], object] | None = None
    """Deletes what the retention period no longer covers; run once a day (the first pass included)."""
    purge_every_seconds: float = 86400.0
    leader: Callable[[], bool] | None = None
    """With several workers: whether this one polls the mailbox, reminds and purges this pass (a lease in the
    shared database). Sending mail and delivering answers claim each item, so every worker helps with those."""
    tidy_every_seconds: float = 3600.0
    """How often each worker brings its copies of attachments in step with the database (every worker: the copies
    are its own; ``EscalationService.tidy_copies``)."""
    clock: Callable[[], float] = time.monotonic
    passes: int = field(default=0, init=False)
    _purged_at: float | None = field(default=None, init=False)
    _tidied_at: float | None = field(default=None, init=False)

    def run_once(self) -> dict[str, int]:
        """One pass on an event loop of its own, for a one-off command (`vraagbaak serve --once`); never raises."""
        return asyncio.run(self.run_pass())

    async def run_pass(self, stop: asyncio.Event | None = None) -> dict[str, int]:
        """Send due mail, poll the mailbox, deliver answers, remind about overdue tickets; never raises.

        Deliveries run on this event loop, where the channels send (the server's, under `vraagbaak serve`); SMTP,
        IMAP and the database block, so those steps run in a worker thread. Each step fails on its own: a mailbox
        that cannot be read does not hold back deliveries or reminders. Once ``stop`` is set (the server is
        stopping), no further step, and no further answer, is started.
        """
        counts = {"sent": 0, "failed": 0, "accepted": 0, "rejected": 0, "quarantined": 0, "delivered": 0,
                  "reminded": 0, "purged": 0, "copies_dropped": 0, "errors": 0}

        def send() -> None:
            counts["sent"], counts["failed"] = self.service.send_outbox()

        def intake() -> None:
            mailbox = self.mailbox_factory()
            if mailbox is None:
                return
            try:
                for result in self.service.poll(mailbox):
                    if result.status in counts:
                        counts[result.status] += 1
            finally:
                mailbox.close()

        async def deliver() -> None:
            counts["delivered"] = await self.service.deliver(self.deliverers(), stop=stop)

        def remind() -> None:
            counts["reminded"] = self.service.remind_overdue()

        def purge() -> None:
            now = self.clock()
            if self.purge is None or (self._purged_at is not None
                                      and now - self._purged_at < self.purge_every_seconds):
                return
            self._purged_at = now
            self.purge()
            counts["purged"] = 1

        def tidy() -> None:
            now = self.clock()
            if self._tidied_at is not None and now - self._tidied_at < self.tidy_every_seconds:
                return
            counts["copies_dropped"] = self.service.tidy_copies()
            self._tidied_at = now  # only once it worked: a database away now is tried again next pass

        steps: tuple[tuple[str, Callable[[], Awaitable[None]]], ...] = (
            ("send", lambda: asyncio.to_thread(send)), ("intake", lambda: asyncio.to_thread(intake)),
            ("deliver", deliver), ("remind", lambda: asyncio.to_thread(remind)),
            ("purge", lambda: asyncio.to_thread(purge)), ("tidy", lambda: asyncio.to_thread(tidy)))
        for name, action in steps:
            if stop is not None and stop.is_set():
                break
            # Asked again before each such step: a long delivery step must not outlast the lease unnoticed.
            if name in ONCE_PER_DEPLOYMENT and not await self._leading():
                continue
            try:
                await action()
            except EscalationError as exc:
                counts["errors"] += 1
                logger.warning("escalation step %r skipped this time: %s", name, exc)
            except Exception:  # noqa: BLE001 - a bug in one step must not stop the others
                counts["errors"] += 1
                logger.exception("escalation step %r failed", name)
        self.passes += 1
        return counts

    async def _leading(self) -> bool:
        if self.leader is None:
            return True
        try:
            return await asyncio.to_thread(self.leader)
        except Exception:  # noqa: BLE001 - the database is down: this pass leaves the mailbox alone
            logger.exception("escalation lease not checked; the mailbox, reminders and purge wait")
            return False

    async def run(self, stop: asyncio.Event) -> None:
        """Repeat ``run_pass`` on this (the server's) event loop until ``stop`` is set."""
        while not stop.is_set():
            try:
                counts = await self.run_pass(stop)
                if any(counts.values()):
                    logger.info("escalation pass: %s", counts)
            except Exception:  # one bad pass must not end the service; the next one retries
                logger.exception("escalation pass failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval_seconds)
            except asyncio.TimeoutError:
                pass
