"""The expert-pool round trip: open tickets, send mail, read replies, deliver answers, remind, publish."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from escalation import authres
from escalation.attachments import MAX_ATTACHMENTS, AnswerFile, write_private
from escalation.delivery import Deliverer, DeliveryError, ExpertAnswer
from escalation.errors import EscalationError, MailError, TicketNotFound
from escalation.mail import MessageIds, build_message, question_body, reminder_body, subject_for
from escalation.mailer import Mailer
from escalation.pool import Expert, ExpertPool, classify_topic
from escalation.reply_parsing import ReplyParseError, parse_reply
from escalation.store import ANSWERED, CLOSED, REOPENED, Delivery, NewTicket, Ticket, TicketStore, tickets

if TYPE_CHECKING:
    from escalation.mailbox import Mailbox

logger = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 3600.0
DELIVERY_WAIT_SECONDS = 300.0
"""How long a delivery pass waits for one send (3 x msrest's 100 s HTTP timeout, well past Telegram's worst
case): a slower one goes on without holding back mail, reminders and the other answers."""
LEGACY_ATTACHMENT_ONLY = "Het antwoord van de expert staat in de bijlage."
"""What versions before 2026-12-01 stored as the answer of a reply that was only an attachment (now: empty)."""
MAX_MAIL_BYTES = 25 * 1024 * 1024
"""Inbound mails above this are quarantined unread (the size limit of most mail services)."""
MAX_ANSWER_CHARS = 8_000
"""An expert answer is shown to the officer up to this length (Teams refuses messages of about 28 KB, Telegram
splits at 4,096 characters); the full text stays with the ticket."""


@dataclass(frozen=True)
class PendingAnswer:
    """An expert answer handed to a pull channel (the console), with its files."""

    answer: ExpertAnswer
    files: tuple[AnswerFile, ...] = ()


@dataclass(frozen=True)
class IngestResult:
    """What became of one inbound mail."""

    status: str
    """accepted | duplicate | rejected | quarantined"""
    ticket: int | None = None
    reason: str | None = None


def backoff(attempts: int) -> float:
    """Seconds before the next try: 30 s, 1 min, 2 min ... capped at one hour."""
    return min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts))


def expert_answer(ticket: Ticket, *, refused: Sequence[str] = ()) -> ExpertAnswer:
    """What goes back to the officer of an answered ticket; ``refused`` names attachments that are not passed on."""
    expert = ticket.expert_name if ticket.answered_by == ticket.expert_email and ticket.expert_name else None
    answer, truncated = _capped(ticket.answer or "")
    return ExpertAnswer(ticket=ticket.number, question=ticket.question, answer=answer, expert=expert,
                        truncated=truncated, refused=tuple(refused[:MAX_ATTACHMENTS]))


def _capped(answer: str) -> tuple[str, bool]:
    """The answer, cut at a paragraph or sentence end before MAX_ANSWER_CHARS when it is longer."""
    if len(answer) <= MAX_ANSWER_CHARS:
        return answer, False
    head = answer[:MAX_ANSWER_CHARS]
    cut = max(head.rfind("\n\n"), head.rfind(". "))
    head = head[: cut + 1] if cut > MAX_ANSWER_CHARS // 2 else head.rsplit(" ", 1)[0]
    return head.rstrip(), True


class EscalationService:
    """Owns the ticket lifecycle; channels reach it through the helpdesk's escalation port."""

    def __init__(self, *, store: TicketStore, pool: ExpertPool | None, ids: MessageIds, mailer: Mailer | None,
                 mail_from: str, reply_to: str, archive_dir: Path, clock: Callable[[], float] = time.time,
                 trusted_authserv: Collection[str] = (), attachments_dir: Path | None = None) -> None:
        self.store = store
        self.attachments_dir = attachments_dir or archive_dir.parent / "attachments"
        """Where an expert's attachments are kept (0700; each file 0600), erased with their ticket."""
        self.trusted_authserv = frozenset(a.lower() for a in trusted_authserv)
        """Receiving servers whose Authentication-Results are believed (for replies without a signed reference)."""
        self.pool = pool
        self.ids = ids
        self.mailer = mailer
        self.mail_from = mail_from
        self.reply_to = reply_to
        self.archive_dir = archive_dir
        self.clock = clock
        self._sends: set[asyncio.Future] = set()
        """Sends that outlasted their pass, and the recording of their outcome (referenced until they end)."""

    @property
    def sla_hours(self) -> float:
        """Hours an expert has to answer."""
        return self.pool.sla_hours if self.pool else 48.0

    # -- tickets --------------------------------------------------------------------------------------------

    def route(self, topic: str) -> tuple[Expert | None, list[str]]:
        """The assigned expert (round robin within the topic) and the mail recipients."""
        if self.pool is None:
            return None, []
        candidates = self.pool.candidates(topic)
        if not candidates:
            return None, [self.pool.fallback]
        expert = candidates[self.store.next_in_rotation(topic, len(candidates))]
        return expert, [expert.email]

    def open_ticket(self, new: NewTicket) -> Ticket:
        """Commit the ticket and its mail together, then try to send right away (it stays queued on failure)."""
        new.topic = new.topic or classify_topic(new.question)
        expert, recipients = self.route(new.topic)

        def first_mail(number: int) -> dict[str, Any]:
            draft = _draft(number, new)
            return {"kind": "question", "recipients": recipients, "subject": subject_for(draft),
                    "body": question_body(draft, sla_hours=self.sla_hours),
                    "message_id": self.ids.new(number, "question")}

        ticket = self.store.create(new, expert_name=expert.name if expert else None,
                                   expert_email=expert.email if expert else None, sla_hours=self.sla_hours,
                                   mail=first_mail if recipients else None)
        logger.info("ticket %s opened (topic %s, expert %s)", ticket.tag, new.topic, expert.name if expert else "-")
        self.send_outbox()
        return ticket

    def tickets_for(self, officer: str) -> list[Ticket]:
        """An officer's tickets, newest first."""
        return self.store.list(officer=officer, limit=20)

    def _own(self, number: int, officer: str) -> Ticket:
        ticket = self.store.get(number)
        if ticket.officer != officer:
            # Another officer's ticket is none of this officer's business; say it does not exist.
            raise TicketNotFound(f"no ticket VB-{number}")
        return ticket

    def mark_solved(self, number: int, officer: str) -> Ticket:
        """The officer is satisfied: close the ticket."""
        self._own(number, officer)
        self.store.set_state(number, CLOSED)
        return self.store.get(number)

    def follow_up(self, number: int, officer: str, text: str) -> Ticket:
        """A follow-up question to the same expert: the ticket is reopened and mailed in the same thread."""
        ticket = self._own(number, officer)
        recipients = [ticket.expert_email] if ticket.expert_email else ([self.pool.fallback] if self.pool else [])
        with self.store.transaction() as conn:
            self.store.set_state(number, REOPENED, conn=conn, due_at=self.clock() + self.sla_hours * 3600,
                                 reminded_at=None)
            if recipients:
                self.store.enqueue(number, kind="followup", recipients=recipients,
                                   subject=subject_for(ticket, prefix="Vervolgvraag "),
                                   body=question_body(ticket, sla_hours=self.sla_hours, follow_up=text),
                                   message_id=self.ids.new(number, "followup"), conn=conn)
        self.send_outbox()
        return self.store.get(number)

    def close(self, number: int) -> Ticket:
        """Close a ticket (maintainer)."""
        self.store.set_state(number, CLOSED)
        return self.store.get(number)

    def reopen(self, number: int) -> Ticket:
        """Reopen a ticket (maintainer); it waits for an expert again."""
        self.store.set_state(number, REOPENED, due_at=self.clock() + self.sla_hours * 3600, reminded_at=None)
        return self.store.get(number)

    # -- mail out -------------------------------------------------------------------------------------------

    def send_outbox(self, *, include_future: bool = False) -> tuple[int, int]:
        """Send queued mails that are due; (sent, failed). Without a mailer everything stays queued."""
        if self.mailer is None:
            return 0, 0
        sent = failed = 0
        for mail in self.store.due_mails(include_future=include_future):
            lease = self.store.claim_mail(mail.id, due_only=not include_future)
            if lease is None:
                continue  # another thread or process is sending it
            thread = [m for m in self.store.sent_message_ids(mail.ticket) if m != mail.message_id]
            message = build_message(sender=self.mail_from, reply_to=self.reply_to, recipients=mail.recipients,
                                    subject=mail.subject, body=mail.body, message_id=mail.message_id,
                                    ticket=mail.ticket, in_reply_to=thread or None)
            try:
                self.mailer.send(message)
            except Exception as exc:  # noqa: BLE001 - MailError or a bug: either way this mail waits, the rest go
                failed += 1
                self.store.mark_failed(mail.id, str(exc) or type(exc).__name__, retry_in=backoff(mail.attempts),
                                       lease=lease)
                log = logger.warning if isinstance(exc, MailError) else logger.exception
                log("mail for VB-%s not sent (attempt %d): %s", mail.ticket, mail.attempts + 1, exc)
                continue
            self.store.mark_sent(mail.id)
            sent += 1
        return sent, failed

    def remind_overdue(self) -> int:
        """Mail a reminder to the expert and the fallback for each ticket past its SLA (once)."""
        count = 0
        for ticket in self.store.overdue():
            recipients = sorted({a for a in (ticket.expert_email, self.pool.fallback if self.pool else None) if a})
            with self.store.transaction() as conn:
                # Conditional: of two passes that found the ticket overdue at once, one reminds.
                if conn.execute(tickets.update().where(tickets.c.number == ticket.number,
                                                       tickets.c.reminded_at.is_(None))
                                .values(reminded_at=self.clock())).rowcount == 0:
                    continue
                if recipients:
                    self.store.enqueue(ticket.number, kind="reminder", recipients=recipients,
                                       subject=subject_for(ticket, prefix="Herinnering "), body=reminder_body(ticket),
                                       message_id=self.ids.new(ticket.number, "reminder"), conn=conn)
            count += 1
        if count:
            self.send_outbox()
        return count

    # -- mail in --------------------------------------------------------------------------------------------

    def ingest(self, raw: bytes, *, vouched: bool = False) -> IngestResult:
        """Match an expert's reply to its ticket and queue the answer for the officer; idempotent per Message-ID.

        Every mail ends accepted, duplicate, rejected (not an answer: out of office, unknown sender, closed ticket)
        or quarantined (possibly an answer that cannot be trusted or read: a maintainer may release it). With
        ``vouched`` (a maintainer released it) a reply without a signed reference needs no authentication.
        """
        digest_id = f"sha256:{hashlib.sha256(raw).hexdigest()}"
        if len(raw) > MAX_MAIL_BYTES:
            if self.store.seen_message(digest_id):
                return IngestResult("duplicate")
            reason = f"larger than {MAX_MAIL_BYTES // (1024 * 1024)} MB"
            self._record(digest_id, "?", "quarantined", reason, raw)
            return IngestResult("quarantined", reason=reason)
        try:
            reply = parse_reply(raw)
        except ReplyParseError as exc:
            if self.store.seen_message(digest_id):
                return IngestResult("duplicate")
            self._record(digest_id, "?", "rejected", f"unreadable message: {exc}", raw)
            return IngestResult("rejected", reason=f"unreadable message: {exc}")
        message_id = reply.message_id or digest_id
        if self.store.seen_message(message_id):
            return IngestResult("duplicate")
        number, signed = self._match(reply)
        reason = status = None
        if reply.auto_submitted:
            reason = "automatic reply (out of office)"
        elif number is None:
            reason = "no valid ticket reference from a pool member"
        elif self.pool is None or not self.pool.is_member(reply.sender):
            reason = f"sender {reply.sender} is not in the expert pool"
        elif not vouched and (self.trusted_authserv or not signed):
            verdict = authres.check(reply.authentication_results, reply.sender, self.trusted_authserv)
            # A signed reference proves which ticket, not who wrote: anyone who saw our mail can copy it, so a
            # trusted DMARC failure of the From domain quarantines even a referenced reply.
            if verdict.failed or not (signed or verdict.authenticated):
                status = "quarantined"
                reason = ("not authenticated: " if signed else
                          "subject tag without a signed reference, not authenticated: ") + verdict.reason
        if reason is None and not reply.answer.strip() and not reply.files:
            reason = "the reply contains no new text (only the quoted question)"
        if reason is None:
            try:
                ticket = self.store.get(number)
            except TicketNotFound:
                reason = f"ticket VB-{number} does not exist"
            else:
                if ticket.state == CLOSED:
                    reason = f"ticket VB-{number} is closed"
        if reason is not None:
            status = status or "rejected"
            self._record(message_id, reply.sender, status, reason, raw, ticket=number)
            logger.warning("inbound mail %s: %s", status, reason)
            return IngestResult(status, ticket=number, reason=reason)
        archive = self._archive(message_id, raw)
        refused = [f"{r.name} ({r.reason})" for r in reply.refused_files]
        answer = reply.answer.strip()  # empty when the answer is only in the attachments: the channel says so
        stored: list[tuple[Any, Path, str]] = []
        try:
            for file in reply.files:
                stored.append((file, *write_private(self.attachments_dir, number, file.data)))
            with self.store.transaction() as conn:
                self.store.record_inbound(message_id=message_id, sender=reply.sender, status="accepted",
                                          ticket=number, archive=str(archive), conn=conn,
                                          reason="attachments not passed on: " + "; ".join(refused)[:2000]
                                          if refused else None)
                self.store.set_state(number, ANSWERED, conn=conn, answer=answer, answered_at=self.clock(),
                                     answered_by=reply.sender)
                file_ids = [self.store.add_attachment(number, name=file.name, content_type=file.content_type,
                                                      size=len(file.data), sha256=digest, path=str(path), conn=conn,
                                                      data=file.data)
                            for file, path, digest in stored]
                answered = self.store.get(number, conn=conn)
                self.store.add_delivery(answered, expert_answer(answered, refused=[r.name for r in
                                                                                   reply.refused_files]).stored(),
                                        conn=conn, files=file_ids)
        except Exception:
            # Nothing was recorded: files no other answer refers to go (the same file may be an earlier one's).
            try:
                in_use = self.store.attachment_file_names()
            except Exception:  # noqa: BLE001 - the database is what failed; the age-based purge removes them
                logger.warning("VB-%s: attachment files of a failed answer left for the purge", number)
                raise
            for _, path, _ in stored:
                if path.name not in in_use:
                    path.unlink(missing_ok=True)
            raise
        if refused:
            logger.warning("VB-%s: attachments not passed on: %s", number, "; ".join(refused))
        logger.info("answer for VB-%s accepted from a pool member", number)
        return IngestResult("accepted", ticket=number)

    def _match(self, reply: Any) -> tuple[int | None, bool]:
        """(ticket number, whether it came from a reference we signed)."""
        for ref in [reply.in_reply_to, *reply.references]:
            if ref:
                number = self.ids.verify(ref)
                if number is not None:
                    return number, True
        # No signed reference (some clients drop them): the subject tag counts, from an authenticated pool member.
        if reply.ticket_tag is not None and self.pool is not None and self.pool.is_member(reply.sender):
            return reply.ticket_tag, False
        return None, False

    def _archive(self, message_id: str, raw: bytes) -> Path:
        self.archive_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.archive_dir / (hashlib.sha256(message_id.encode()).hexdigest()[:32] + ".eml")
        with open(path, "wb", opener=lambda p, flags: os.open(p, flags, 0o600)) as fh:
            fh.write(raw)
        return path

    def _record(self, message_id: str, sender: str, status: str, reason: str, raw: bytes, *,
                ticket: int | None = None) -> None:
        archive = self._archive(message_id, raw)
        self.store.record_inbound(message_id=message_id, sender=sender, status=status, reason=reason,
                                  ticket=ticket, archive=str(archive))

    def quarantined(self, limit: int = 50) -> list[dict[str, Any]]:
        """Quarantined and rejected mails a maintainer may release, newest first, each with a short ``key``."""
        rows = self.store.inbound("quarantined", "rejected", limit=limit)
        for row in rows:
            row["key"] = _short_key(row["message_id"])
        return rows

    def release(self, key: str) -> IngestResult:
        """Process a quarantined or rejected mail again, as vouched for by the maintainer (``key`` from
        ``quarantined``, or the full Message-ID)."""
        matches = [row for row in self.store.inbound("quarantined", "rejected", limit=10_000)
                   if key in (row["message_id"], _short_key(row["message_id"]))]
        if len(matches) != 1:
            raise EscalationError(f"no quarantined or rejected mail {key!r}" if not matches
                                  else f"{key!r} is ambiguous")
        row = matches[0]
        archive = self.archive_dir / Path(row["archive"] or "-").name  # the archive dir of now
        if not archive.is_file():
            raise EscalationError(f"the stored copy of {key!r} is gone ({archive})")
        self.store.forget_inbound(row["message_id"])
        try:
            result = self.ingest(archive.read_bytes(), vouched=True)
        except Exception as exc:
            # Put the record back: the mail stays listed (and its archived copy referenced) for another try.
            self.store.record_inbound(message_id=row["message_id"], sender=row["sender"], status=row["status"],
                                      reason=row["reason"], ticket=row["ticket"], archive=row["archive"])
            raise EscalationError(f"{key!r} could not be processed: {type(exc).__name__}: {exc}") from exc
        logger.info("released inbound mail %s: %s", key, result.status)
        return result

    def poll(self, mailbox: "Mailbox") -> list[IngestResult]:
        """Read new mail; each message is moved only after its result is committed. One mail that cannot be
        handled is quarantined and the pass goes on."""
        results = []
        for message in mailbox.fetch_new():
            try:
                result = self.ingest(message.raw)
            except Exception as exc:  # noqa: BLE001 - a bug or a database hiccup on one mail must not stop intake
                logger.exception("inbound mail %s could not be processed; quarantined", message.uid)
                result = IngestResult("quarantined", reason=f"processing failed: {type(exc).__name__}")
                try:
                    digest_id = f"sha256:{hashlib.sha256(message.raw).hexdigest()}"
                    if not self.store.seen_message(digest_id):
                        self._record(digest_id, "?", "quarantined", result.reason or "", message.raw)
                except Exception:  # noqa: BLE001 - the mail stays in the mailbox's quarantine folder
                    logger.exception("quarantined mail %s not recorded", message.uid)
            move = {"rejected": mailbox.mark_rejected, "quarantined": mailbox.mark_quarantined}.get(
                result.status, mailbox.mark_processed)
            move(message.uid)
            results.append(result)
        return results

    # -- back to the officer --------------------------------------------------------------------------------

    async def deliver(self, deliverers: Mapping[str, Deliverer], *, stop: asyncio.Event | None = None,
                      wait_seconds: float = DELIVERY_WAIT_SECONDS) -> int:
        """Push due answers through their channel; failures are retried with backoff, never dropped.

        Runs on the event loop the channels serve on (a channel sends with its own connections there); the
        database is read and written in a worker thread, so the loop keeps answering chats meanwhile. A send that
        takes longer than ``wait_seconds`` is not cancelled (it may still reach the chat): it goes on, its answer
        stays claimed, and its outcome is recorded when it ends, while the pass moves on. Once ``stop`` is set no
        further answer is started, and the pass returns without waiting for a send in flight (the channel's own
        stop gives it a grace period).
        """
        delivered = 0
        for item in await asyncio.to_thread(self.store.pending_deliveries):
            if stop is not None and stop.is_set():
                break
            deliverer = deliverers.get(item.channel)
            if deliverer is None:
                continue  # e.g. the console: shown when the officer next opens the chat
            lease = await asyncio.to_thread(self.store.claim_delivery, item.id)
            if lease is None:
                continue  # another thread or process is delivering it
            try:  # the files may first be copied from the database: off the event loop
                files = await asyncio.to_thread(self._here, item.files)
            except Exception as exc:  # noqa: BLE001 - the database went away after the claim: due again later
                failed = asyncio.get_running_loop().create_future()
                failed.set_exception(DeliveryError(f"attachments not readable: {type(exc).__name__}"))
                delivered += await self._settle(item, lease, failed)
                continue
            send = asyncio.ensure_future(deliverer.deliver(
                item.reply_address, ExpertAnswer.from_stored(item.ticket, item.text), files))
            stopping = asyncio.ensure_future(stop.wait()) if stop is not None else None
            try:
                done, _ = await asyncio.wait({send} | ({stopping} if stopping else set()), timeout=wait_seconds,
                                             return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:  # the pass is cancelled, not the send: its outcome is still recorded
                send.add_done_callback(functools.partial(self._settle_later, item, lease))
                self._sends.add(send)
                raise
            finally:
                if stopping is not None:
                    stopping.cancel()
            if send not in done:
                logger.warning("answer for VB-%s still being sent via %s (%s); its outcome is recorded when the "
                               "send ends", item.ticket, item.channel,
                               "stopping" if stop is not None and stop.is_set() else f"after {wait_seconds:g} s")
                send.add_done_callback(functools.partial(self._settle_later, item, lease))
                self._sends.add(send)
                continue
            delivered += await self._settle(item, lease, send)
        return delivered

    async def drain(self, timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, until every send that outlasted its pass has its outcome recorded
        (at shutdown, after the channels have stopped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._sends and loop.time() < deadline:
            await asyncio.wait(set(self._sends), timeout=deadline - loop.time())

    async def _settle(self, item: Delivery, lease: float, send: asyncio.Future) -> bool:
        """Record how a send ended: delivered, or failed and due again later."""
        exc = DeliveryError("the send was cancelled (server stopping)") if send.cancelled() else send.exception()
        if exc is None:
            await asyncio.to_thread(self.store.mark_delivered, item.id)
            return True
        permanent = isinstance(exc, DeliveryError) and exc.permanent
        retry = RETRY_MAX_SECONDS * 24 if permanent else backoff(item.attempts)
        await asyncio.to_thread(self.store.mark_delivery_failed, item.id, str(exc) or type(exc).__name__,
                                retry_in=retry, lease=lease)
        if isinstance(exc, DeliveryError):
            logger.warning("answer for VB-%s not delivered via %s: %s", item.ticket, item.channel, exc)
        else:  # a channel's bug: logged with its traceback, and it does not hold back the other answers
            logger.error("answer for VB-%s not delivered via %s", item.ticket, item.channel, exc_info=exc)
        return False

    def _settle_later(self, item: Delivery, lease: float, send: asyncio.Future) -> None:
        self._sends.discard(send)
        settling = asyncio.ensure_future(self._settle(item, lease, send))
        self._sends.add(settling)  # kept referenced until it has run
        settling.add_done_callback(self._sends.discard)

    def take_pending(self, channel: str, match: Callable[[dict[str, Any]], bool]) -> list[PendingAnswer]:
        """Answers waiting for a pull channel (the console), marked delivered as they are handed over."""
        answers = []
        for item in self.store.pending_deliveries(channel=channel, include_future=True):
            if match(item.reply_address) and self.store.claim_delivery(item.id, due_only=False) is not None:
                answers.append(PendingAnswer(ExpertAnswer.from_stored(item.ticket, item.text), self._here(item.files)))
                self.store.mark_delivered(item.id)
        return answers

    def files_for(self, number: int, officer: str) -> tuple[AnswerFile, ...]:
        """The attachments of an officer's own ticket that are still stored (TicketNotFound otherwise)."""
        self._own(number, officer)
        return tuple(f for f in self._here(self.store.attachments_of(number)) if f.path.is_file())

    def attachment(self, attachment_id: int) -> AnswerFile | None:
        """A stored attachment (for the download route), or None."""
        found = self.store.attachment(attachment_id)
        if found is None:
            return None
        [here] = self._here((found,))
        return here if here.path.is_file() else None

    def _here(self, files: Sequence[AnswerFile]) -> tuple[AnswerFile, ...]:
        """The files at their place under this worker's attachments dir (the data dir may have moved since),
        copied there from the database first when this worker has no copy (another worker read the mail)."""
        here = []
        for file in files:
            path = self.attachments_dir / file.path.name
            if not path.is_file():
                self._copy_from_database(file, path)
            here.append(dataclasses.replace(file, path=path))
        return tuple(here)

    def _copy_from_database(self, file: AnswerFile, path: Path) -> None:
        data = self.store.attachment_content(path.name)
        if data is None:
            return  # erased with its ticket (or stored before the bytes went into the database, and lost since)
        if hashlib.sha256(data).hexdigest() != file.sha256:
            logger.error("VB-%s: the stored bytes of attachment %s do not match its digest; not passed on",
                         file.ticket, file.id)
            return
        write_private(self.attachments_dir, file.ticket, data)  # named <ticket>-<digest> as the record names it

    def tidy_copies(self, *, older_than_seconds: float = 3600.0) -> int:
        """Keep this worker's attachments dir in step with the database; returns how many copies were dropped.

        Files recorded before the bytes were kept in the database, found here, are copied in (so other workers
        can pass them on too). Copies of attachments the database no longer holds (erased by the retention pass or
        a `privacy forget` that ran on another worker) are deleted; younger files are left: an answer being
        recorded writes its files before it commits.
        """
        if not self.attachments_dir.is_dir():
            return 0
        for file in self.store.attachments_without_content():
            path = self.attachments_dir / file.path.name
            try:
                data = path.read_bytes() if path.is_file() else None
            except OSError as exc:  # one unreadable file does not stop the others
                logger.warning("VB-%s: attachment %s not copied into the database: %s", file.ticket, file.id, exc)
                continue
            if data is not None and hashlib.sha256(data).hexdigest() == file.sha256:
                self.store.add_content(path.name, ticket=file.ticket, data=data)
        cutoff = time.time() - older_than_seconds
        old = [p for p in self.attachments_dir.iterdir() if p.is_file() and not p.name.startswith(".")
               and p.stat().st_mtime < cutoff]
        if not old:
            return 0
        in_use = self.store.attachment_file_names()
        stale = [p for p in old if p.name not in in_use]
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    # -- data protection ----------------------------------------------------------------------------------

    def purge(self, *, older_than_days: float) -> dict[str, int]:
        """Erase what the retention period no longer covers: tickets untouched for that long (officer name, reply
        address, question, answer, their mails and deliveries) and inbound mails with their archived copies."""
        return self._forget(before=self.clock() - older_than_days * 86400)

    def forget_officer(self, officer: str) -> dict[str, int]:
        """Erase every ticket of one officer (their pseudonym) and delete the mails about them."""
        return self._forget(officer=officer)

    def _forget(self, **which: Any) -> dict[str, int]:
        result = self.store.forget(**which)
        files = 0
        for archive in result.pop("archives"):
            path = self.archive_dir / Path(archive).name  # the archive dir of now, wherever the home was then
            if path.exists():
                path.unlink()
                files += 1
        # Archived mails whose record went in an earlier crash or release are removed by age as well.
        if "before" in which and self.archive_dir.is_dir():
            for path in self.archive_dir.glob("*.eml"):
                if path.stat().st_mtime < which["before"]:
                    path.unlink()
                    files += 1
        result["archived_files"] = files
        removed = 0
        numbers = result.pop("numbers")
        if self.attachments_dir.is_dir():
            # A ticket's files are named "<ticket>-<digest>", recorded or not (a recording that failed).
            for number in numbers:
                for path in self.attachments_dir.glob(f"{number}-*"):
                    path.unlink()
                    removed += 1
        if "before" in which and self.attachments_dir.is_dir():
            # Files of an answer whose recording failed (a crash between writing and committing).
            old = [p for p in self.attachments_dir.iterdir() if p.is_file() and p.stat().st_mtime < which["before"]]
            in_use = self.store.attachment_file_names() if old else set()
            for path in old:
                if path.name not in in_use:
                    path.unlink()
                    removed += 1
        result["attachment_files"] = removed
        return result

    # -- knowledge capture ----------------------------------------------------------------------------------

    def publish(self, number: int, faq_file: Path) -> dict[str, Any]:
        """Append the question and the expert's answer as a record of the expert-answers FAQ source."""
        ticket = self._answered(number)
        date = time.strftime("%Y-%m-%d", time.localtime(ticket.answered_at or self.clock()))
        record = {
            "id": ticket.tag,
            "title": f"Antwoord expertenpool, ticket {ticket.tag}, {date}",
            "question": ticket.question,
            "text": f"Vraag: {ticket.question}\n\nAntwoord van de expertenpool: {ticket.answer}",
            "date": date,
        }
        _upsert_record(faq_file, record)
        self.store.set_state(number, ticket.state, published_at=self.clock())
        return record

    def publish_case(self, number: int, cases_file: Path, *, bestuur: str, procedure: str, lessons: str,
                     type_bestuur: str = "gemeente", year: int | None = None,
                     estimate_eur: int | None = None) -> dict[str, Any]:
        """Append an answered ticket as a practice case (the officer's question as subject, the expert's answer as
        outcome, the lessons the maintainer writes) to the shared cases source."""
        ticket = self._answered(number)
        record: dict[str, Any] = {
            "id": f"VB-{number}", "bestuur": bestuur, "type_bestuur": type_bestuur,
            "year": year or int(time.strftime("%Y", time.localtime(ticket.answered_at or self.clock()))),
            "procedure": procedure, "subject": " ".join(ticket.question.split())[:300],
            "outcome": f"Antwoord van de expertenpool: {ticket.answer}", "lessons": lessons,
        }
        if estimate_eur is not None:
            record["estimate_eur"] = estimate_eur
        _upsert_record(cases_file, record)
        self.store.set_state(number, ticket.state, published_at=self.clock())
        return record

    def _answered(self, number: int) -> Ticket:
        ticket = self.store.get(number)
        if ticket.answered_at is None:
            raise EscalationError(f"{ticket.tag} has no expert answer to publish")
        if not (ticket.answer or "").strip() or ticket.answer == LEGACY_ATTACHMENT_ONLY:
            raise EscalationError(f"{ticket.tag}'s answer is only an attachment: nothing to publish as text")
        return ticket


def _upsert_record(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` into a JSON Lines file, replacing the record with the same id; atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = []
    if path.exists():
        existing = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = [r for r in existing if r.get("id") != record["id"]] + [record]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    tmp.replace(path)


def _short_key(message_id: str) -> str:
    """A short, stable handle of an inbound mail for the maintainer's commands."""
    return hashlib.sha256(message_id.encode()).hexdigest()[:12]


def _draft(number: int, new: NewTicket) -> Ticket:
    """A Ticket view of a ticket being created, to render its first mail inside the same transaction."""
    return Ticket(number=number, state="open", created_at=0, updated_at=0, officer=new.officer,
                  officer_name=new.officer_name, channel=new.channel,
                  reply_address=new.reply_address, question=new.question, context=new.context, sources=new.sources,
                  reason=new.reason, topic=new.topic, expert_name=None, expert_email=None, answer=None,
                  answered_at=None, answered_by=None, due_at=0, reminded_at=None, published_at=None)

