"""Background work of a running Vraagbaak: send queued mail, read expert replies, deliver answers, remind."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from escalation.delivery import Deliverer
from escalation.errors import EscalationError
from escalation.service import EscalationService

logger = logging.getLogger(__name__)


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
    clock: Callable[[], float] = time.monotonic
    passes: int = field(default=0, init=False)
    _purged_at: float | None = field(default=None, init=False)

    def run_once(self) -> dict[str, int]:
        """Send due mail, poll the mailbox, deliver answers, remind about overdue tickets; never raises.

        Each step fails on its own: a mailbox that cannot be read does not hold back deliveries or reminders.
        """
        counts = {"sent": 0, "failed": 0, "accepted": 0, "rejected": 0, "quarantined": 0, "delivered": 0,
                  "reminded": 0, "purged": 0, "errors": 0}

        def step(name: str, action: Callable[[], None]) -> None:
            try:
                action()
            except EscalationError as exc:
                counts["errors"] += 1
                logger.warning("escalation step %r skipped this time: %s", name, exc)
            except Exception:  # noqa: BLE001 - a bug in one step must not stop the others
                counts["errors"] += 1
                logger.exception("escalation step %r failed", name)

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

        def deliver() -> None:
            counts["delivered"] = self.service.deliver(self.deliverers())

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

        for name, action in (("send", send), ("intake", intake), ("deliver", deliver), ("remind", remind),
                             ("purge", purge)):
            step(name, action)
        self.passes += 1
        return counts

    async def run(self, stop: asyncio.Event) -> None:
        """Repeat ``run_once`` (in a worker thread: SMTP, IMAP and the database block) until ``stop`` is set."""
        while not stop.is_set():
            try:
                counts = await asyncio.to_thread(self.run_once)
                if any(counts.values()):
                    logger.info("escalation pass: %s", counts)
            except Exception:  # one bad pass must not end the service; the next one retries
                logger.exception("escalation pass failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval_seconds)
            except asyncio.TimeoutError:
                pass
