"""Tickets, the mail outbox, processed inbound mail, attachments and pending deliveries, in SQLite or PostgreSQL.

SQLAlchemy Core keeps one code path for both; the schema is versioned by numbered migrations.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from common.database import database_engine
from escalation.attachments import AnswerFile
from escalation.errors import TicketNotFound
from escalation.states import ANSWERED, CLOSED, OPEN, REOPENED, SENT, STATES  # noqa: F401 (also read from here)

metadata = sa.MetaData()

tickets = sa.Table(
    "tickets", metadata,
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("officer", sa.String(64), nullable=False),
    sa.Column("officer_name", sa.String(200)),
    sa.Column("municipality", sa.String(200)),  # never filled; kept so databases of the first version need no migration
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("reply_address", sa.Text, nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("context", sa.Text, nullable=False),
    sa.Column("sources", sa.Text, nullable=False),
    sa.Column("reason", sa.String(300), nullable=False),
    sa.Column("topic", sa.String(32), nullable=False),
    sa.Column("expert_name", sa.String(200)),
    sa.Column("expert_email", sa.String(320)),
    sa.Column("answer", sa.Text),
    sa.Column("answered_at", sa.Float),
    sa.Column("answered_by", sa.String(320)),
    sa.Column("due_at", sa.Float, nullable=False),
    sa.Column("reminded_at", sa.Float),
    sa.Column("published_at", sa.Float),
)

outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket", sa.Integer, sa.ForeignKey("tickets.number"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("recipients", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("message_id", sa.String(300), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("sent_at", sa.Float),
    sa.Column("last_error", sa.Text),
    sa.Column("lease_until", sa.Float),
)

inbox = sa.Table(
    "inbox", metadata,
    sa.Column("message_id", sa.String(300), primary_key=True),
    sa.Column("ticket", sa.Integer),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("sender", sa.String(320), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("archive", sa.Text),
)

deliveries = sa.Table(
    "deliveries", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket", sa.Integer, sa.ForeignKey("tickets.number"), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("reply_address", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("delivered_at", sa.Float),
    sa.Column("last_error", sa.Text),
    sa.Column("lease_until", sa.Float),
    sa.Column("files", sa.Text),
)

attachments = sa.Table(
    "attachments", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket", sa.Integer, sa.ForeignKey("tickets.number"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("content_type", sa.String(120), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)
"""Files an expert attached to an answer (the bytes in ``attachment_contents``; a copy on the disk of each worker
that passed it on, 0600). Ids are never reused (AUTOINCREMENT on SQLite; a sequence on PostgreSQL), and a download
link also names the file's digest."""
attachment_contents = sa.Table(
    "attachment_contents", metadata,
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("ticket", sa.Integer, nullable=False, index=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
"""The bytes of the attachments, once per file of a ticket (named ``<ticket>-<digest>`` like the copies on disk),
so that whichever worker delivers an answer or serves its download link has them, not only the worker that read
the expert's mail. Erased with the ticket."""

rotation = sa.Table(
    "rotation", metadata,
    sa.Column("topic", sa.String(32), primary_key=True),
    sa.Column("counter", sa.Integer, nullable=False),
)

FORGOTTEN = "-"
"""The officer of an erased ticket."""
LEASE_SECONDS = 1800.0
"""How long a claimed mail or delivery is left to its sender; after that (the sender died) another takes it."""


def _unclaimed(table: sa.Table, now: float):
    return sa.or_(table.c.lease_until.is_(None), table.c.lease_until <= now)


schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, primary_key=True))


def _migration_1(conn: Connection) -> None:
    for table in (tickets, outbox, inbox, deliveries, rotation):
        table.create(conn)


def _migration_2(conn: Connection) -> None:
    # A sender claims a mail or a delivery until lease_until before sending it (exactly once across processes).
    for table in (outbox, deliveries):
        if "lease_until" not in {c["name"] for c in sa.inspect(conn).get_columns(table.name)}:
            conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN lease_until FLOAT"))


def _migration_3(conn: Connection) -> None:
    # An expert's attachments, and which of them a delivery carries (a JSON list of attachment ids).
    attachments.create(conn, checkfirst=True)
    if "files" not in {c["name"] for c in sa.inspect(conn).get_columns("deliveries")}:
        conn.execute(sa.text("ALTER TABLE deliveries ADD COLUMN files TEXT"))


def _migration_4(conn: Connection) -> None:
    # The attachments' bytes in the database, for every worker (EscalationService copies in those of the files
    # already on its disk).
    attachment_contents.create(conn, checkfirst=True)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _migration_1, 2: _migration_2, 3: _migration_3,
                                                       4: _migration_4}
"""Numbered schema steps; add 2, 3, ... and never edit a released one."""


def migrate(engine: Engine) -> int:
    """Apply the missing migrations in order; returns the schema version.

    Two processes starting together (``serve`` restarting while cron runs a command) both try: PostgreSQL takes an
    advisory lock for the transaction, and a loser on SQLite (a concurrent insert of the same version) tries again
    and finds the work done.
    """
    for attempt in range(3):
        try:
            return _migrate_once(engine)
        except sa.exc.DBAPIError:
            if attempt == 2:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _migrate_once(engine: Engine) -> int:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7243011)"))
        schema_version.create(conn, checkfirst=True)
        current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
        for version in sorted(v for v in MIGRATIONS if v > current):
            MIGRATIONS[version](conn)
            conn.execute(schema_version.insert().values(version=version))
            current = version
    return current


@dataclass(frozen=True)
class Ticket:
    """A question for the expert pool and where its answer must go."""

    number: int
    state: str
    created_at: float
    updated_at: float
    officer: str
    officer_name: str | None
    channel: str
    reply_address: dict[str, Any]
    question: str
    context: list[str]
    sources: list[dict[str, Any]]
    reason: str
    topic: str
    expert_name: str | None
    expert_email: str | None
    answer: str | None
    answered_at: float | None
    answered_by: str | None
    due_at: float
    reminded_at: float | None
    published_at: float | None

    @property
    def tag(self) -> str:
        """The number as officers and experts see it."""
        return f"VB-{self.number}"


@dataclass(frozen=True)
class OutgoingMail:
    """A mail waiting in (or sent from) the outbox."""

    id: int
    ticket: int
    kind: str
    recipients: list[str]
    subject: str
    body: str
    message_id: str
    attempts: int


@dataclass(frozen=True)
class Delivery:
    """An expert answer waiting to reach the officer's chat."""

    id: int
    ticket: int
    channel: str
    reply_address: dict[str, Any]
    text: str
    attempts: int
    files: tuple[AnswerFile, ...] = ()


@dataclass
class NewTicket:
    """What the helpdesk knows when it escalates."""

    officer: str
    channel: str
    reply_address: dict[str, Any]
    question: str
    reason: str
    topic: str
    officer_name: str | None = None
    context: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)


def _answer_file(row: Any) -> AnswerFile:
    return AnswerFile(id=row.id, ticket=row.ticket, name=row.name, content_type=row.content_type, size=row.size,
                      path=Path(row.path), sha256=row.sha256)


def _ticket(row: Any) -> Ticket:
    data = dict(row._mapping)
    data.pop("municipality", None)
    for key in ("reply_address", "context", "sources"):
        data[key] = json.loads(data[key])
    return Ticket(**data)


class TicketStore:
    """All escalation state behind one SQLAlchemy engine (sqlite:///... or postgresql+psycopg://...)."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = database_engine(url)
        self.clock = clock
        self.version = migrate(self.engine)

    def ping(self) -> None:
        """Raise unless the database answers (the readiness check of `vraagbaak serve`)."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One database transaction (committed on success)."""
        with self.engine.begin() as conn:
            yield conn

    # -- tickets ------------------------------------------------------------------------------------------

    def create(self, new: NewTicket, *, expert_name: str | None, expert_email: str | None, sla_hours: float,
               mail: Callable[[int], dict[str, Any]] | None = None) -> Ticket:
        """Insert a ticket, and in the same transaction its first outgoing mail (``mail(number)`` builds it)."""
        now = self.clock()
        with self.transaction() as conn:
            number = conn.execute(tickets.insert().values(
                created_at=now, updated_at=now, state=OPEN, officer=new.officer, officer_name=new.officer_name,
                channel=new.channel,
                reply_address=json.dumps(new.reply_address), question=new.question,
                context=json.dumps(new.context, ensure_ascii=False),
                sources=json.dumps(new.sources, ensure_ascii=False), reason=new.reason, topic=new.topic,
                expert_name=expert_name, expert_email=expert_email, due_at=now + sla_hours * 3600,
            ).returning(tickets.c.number)).scalar_one()
            if mail is not None:
                self._enqueue(conn, number, **mail(number))
        return self.get(number)

    def get(self, number: int, *, conn: Connection | None = None) -> Ticket:
        """A ticket by number (inside ``conn``'s transaction when given)."""
        query = sa.select(tickets).where(tickets.c.number == number)
        if conn is not None:
            row = conn.execute(query).first()
        else:
            with self.engine.connect() as own:
                row = own.execute(query).first()
        if row is None:
            raise TicketNotFound(f"no ticket VB-{number}")
        return _ticket(row)

    def list(self, *, state: str | None = None, officer: str | None = None, limit: int = 100) -> list[Ticket]:
        """Tickets, newest first."""
        query = sa.select(tickets).order_by(tickets.c.number.desc()).limit(limit)
        if state:
            query = query.where(tickets.c.state == state)
        if officer:
            query = query.where(tickets.c.officer == officer)
        with self.engine.connect() as conn:
            return [_ticket(r) for r in conn.execute(query)]

    def set_state(self, number: int, state: str, *, conn: Connection | None = None, **values: Any) -> None:
        """Change a ticket's state (and other columns)."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        statement = tickets.update().where(tickets.c.number == number).values(
            state=state, updated_at=self.clock(), **values)
        if conn is not None:
            result = conn.execute(statement)
        else:
            with self.transaction() as own:
                result = own.execute(statement)
        if result.rowcount == 0:
            raise TicketNotFound(f"no ticket VB-{number}")

    def overdue(self) -> list[Ticket]:
        """Tickets past their SLA that got no reminder since they became due."""
        now = self.clock()
        query = sa.select(tickets).where(tickets.c.state.in_((OPEN, SENT, REOPENED)), tickets.c.due_at < now,
                                         tickets.c.reminded_at.is_(None))
        with self.engine.connect() as conn:
            return [_ticket(r) for r in conn.execute(query)]

    def next_in_rotation(self, topic: str, size: int) -> int:
        """Round-robin position within a topic's experts, persisted so restarts keep the turn."""
        with self.transaction() as conn:
            current = conn.execute(sa.select(rotation.c.counter).where(rotation.c.topic == topic)).scalar()
            if current is None:
                conn.execute(rotation.insert().values(topic=topic, counter=1))
                return 0
            conn.execute(rotation.update().where(rotation.c.topic == topic).values(counter=current + 1))
            return current % size

    # -- outbox -------------------------------------------------------------------------------------------

    def _enqueue(self, conn: Connection, ticket: int, *, kind: str, recipients: list[str], subject: str, body: str,
                 message_id: str) -> None:
        now = self.clock()
        conn.execute(outbox.insert().values(ticket=ticket, kind=kind, recipients=json.dumps(recipients),
                                            subject=subject, body=body, message_id=message_id, created_at=now,
                                            attempts=0, next_attempt_at=now))

    def enqueue(self, ticket: int, *, kind: str, recipients: list[str], subject: str, body: str,
                message_id: str, conn: Connection | None = None) -> None:
        """Queue a mail (sent by the outbox worker)."""
        if conn is not None:
            self._enqueue(conn, ticket, kind=kind, recipients=recipients, subject=subject, body=body,
                          message_id=message_id)
            return
        with self.transaction() as own:
            self._enqueue(own, ticket, kind=kind, recipients=recipients, subject=subject, body=body,
                          message_id=message_id)

    def due_mails(self, *, include_future: bool = False) -> list[OutgoingMail]:
        """Unsent, unclaimed mails whose retry time has come (all unsent, unclaimed ones with ``include_future``)."""
        query = (sa.select(outbox).where(outbox.c.sent_at.is_(None), _unclaimed(outbox, self.clock()))
                 .order_by(outbox.c.id))
        if not include_future:
            query = query.where(outbox.c.next_attempt_at <= self.clock())
        with self.engine.connect() as conn:
            return [OutgoingMail(id=r.id, ticket=r.ticket, kind=r.kind, recipients=json.loads(r.recipients),
                                 subject=r.subject, body=r.body, message_id=r.message_id, attempts=r.attempts)
                    for r in conn.execute(query)]

    def claim_mail(self, mail_id: int, *, lease: float = LEASE_SECONDS, due_only: bool = True) -> float | None:
        """Take an unsent mail for ``lease`` seconds: the claim's expiry, which identifies it, or None when another
        sender has it, it was sent, or (with ``due_only``) its next attempt is not due yet."""
        return self._claim(outbox, mail_id, outbox.c.sent_at, lease, due_only)

    def _claim(self, table: sa.Table, row_id: int, done: sa.Column, lease: float, due_only: bool) -> float | None:
        now = self.clock()
        until = now + lease
        condition = [table.c.id == row_id, done.is_(None), _unclaimed(table, now)]
        if due_only:
            condition.append(table.c.next_attempt_at <= now)
        # One conditional UPDATE: the database serialises competing claims on the row (SQLite locks the file,
        # PostgreSQL re-checks the condition after the other transaction commits), so one claimant wins.
        with self.transaction() as conn:
            claimed = conn.execute(table.update().where(*condition).values(lease_until=until)).rowcount == 1
        return until if claimed else None

    def mark_sent(self, mail_id: int) -> None:
        """Record a mail as sent; a ticket whose question went out becomes "sent"."""
        with self.transaction() as conn:
            row = conn.execute(sa.select(outbox.c.ticket, outbox.c.kind, outbox.c.attempts)
                               .where(outbox.c.id == mail_id)).first()
            if row is None:
                return  # erased meanwhile (privacy forget)
            conn.execute(outbox.update().where(outbox.c.id == mail_id).values(
                sent_at=self.clock(), attempts=row.attempts + 1, last_error=None, lease_until=None))
            if row.kind in ("question", "followup"):
                conn.execute(tickets.update().where(tickets.c.number == row.ticket,
                                                    tickets.c.state.in_((OPEN, REOPENED)))
                             .values(state=SENT, updated_at=self.clock()))

    def mark_failed(self, mail_id: int, error: str, *, retry_in: float, lease: float | None = None) -> None:
        """Record a failed attempt and when to try again. With ``lease`` (what the claim returned) only while
        that claim still holds: a sender whose lease expired must not release the next sender's claim."""
        condition = [outbox.c.id == mail_id] + ([outbox.c.lease_until == lease] if lease is not None else [])
        with self.transaction() as conn:
            conn.execute(outbox.update().where(*condition).values(
                attempts=outbox.c.attempts + 1, last_error=error[:500], next_attempt_at=self.clock() + retry_in,
                lease_until=None))

    def sent_message_ids(self, ticket: int) -> list[str]:
        """Message-IDs of the mails sent for a ticket (threading)."""
        with self.engine.connect() as conn:
            return [r.message_id for r in conn.execute(
                sa.select(outbox.c.message_id).where(outbox.c.ticket == ticket).order_by(outbox.c.id))]

    # -- inbound mail ---------------------------------------------------------------------------------------

    def seen_message(self, message_id: str) -> bool:
        """True when a mail with this Message-ID was processed before."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(inbox.c.message_id).where(inbox.c.message_id == message_id)).first() \
                is not None

    def record_inbound(self, *, message_id: str, sender: str, status: str, reason: str | None = None,
                       ticket: int | None = None, archive: str | None = None,
                       conn: Connection | None = None) -> None:
        """Remember a processed mail (accepted or rejected)."""
        statement = inbox.insert().values(message_id=message_id, ticket=ticket, received_at=self.clock(),
                                          sender=sender, status=status, reason=reason, archive=archive)
        if conn is not None:
            conn.execute(statement)
            return
        with self.transaction() as own:
            own.execute(statement)

    def rejected(self, limit: int = 50) -> list[dict[str, Any]]:
        """Recently rejected inbound mails."""
        return self.inbound("rejected", limit=limit)

    def inbound(self, *statuses: str, limit: int = 50) -> list[dict[str, Any]]:
        """Recent inbound mails with one of these statuses, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(inbox).where(inbox.c.status.in_(statuses))
                                .order_by(inbox.c.received_at.desc()).limit(limit))
            return [dict(r._mapping) for r in rows]

    def inbound_for(self, ticket: int) -> list[dict[str, Any]]:
        """The inbound mails matched to a ticket, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(inbox).where(inbox.c.ticket == ticket).order_by(inbox.c.received_at))
            return [dict(r._mapping) for r in rows]

    def forget_inbound(self, message_id: str, conn: Connection | None = None) -> None:
        """Drop the record of a mail, so it is processed again like a new one (a released quarantined mail)."""
        statement = inbox.delete().where(inbox.c.message_id == message_id)
        if conn is not None:
            conn.execute(statement)
            return
        with self.transaction() as own:
            own.execute(statement)

    # -- data protection ---------------------------------------------------------------------------------

    def forget(self, *, before: float | None = None, officer: str | None = None) -> dict[str, Any]:
        """Erase tickets (their people, texts, mails and deliveries) and inbound mail records, by age or by officer.

        ``before``: tickets whose last change is older, in any state, and inbound mails received earlier.
        ``officer``: every ticket of that officer (pseudonym), with the inbound mails answering them. A ticket's row
        stays, closed and emptied, so its number is never given to a new ticket (SQLite would reuse the highest
        number of a deleted row, and a late expert reply to the old ticket would answer the new one). Returns the
        counts, the archive files to delete and the numbers of the erased tickets (whose attachment files are
        named after them).
        """
        with self.transaction() as conn:
            if officer is not None:
                which = tickets.c.officer == officer
                numbers = [r.number for r in conn.execute(sa.select(tickets.c.number).where(which))]
                mail_filter = inbox.c.ticket.in_(numbers)
            else:
                which = sa.and_(tickets.c.updated_at < before, tickets.c.officer != FORGOTTEN)
                numbers = [r.number for r in conn.execute(sa.select(tickets.c.number).where(which))]
                mail_filter = inbox.c.received_at < before
            archives = [r.archive for r in conn.execute(sa.select(inbox.c.archive).where(mail_filter)) if r.archive]
            mails = conn.execute(inbox.delete().where(mail_filter)).rowcount
            conn.execute(attachments.delete().where(attachments.c.ticket.in_(numbers)))
            conn.execute(attachment_contents.delete().where(attachment_contents.c.ticket.in_(numbers)))
            # Bytes whose attachment records are gone whatever the way (an erasure racing a copy-in).
            conn.execute(attachment_contents.delete().where(
                attachment_contents.c.ticket.not_in(sa.select(attachments.c.ticket))))
            conn.execute(deliveries.delete().where(deliveries.c.ticket.in_(numbers)))
            conn.execute(outbox.delete().where(outbox.c.ticket.in_(numbers)))
            removed = conn.execute(tickets.update().where(tickets.c.number.in_(numbers)).values(
                state=CLOSED, officer=FORGOTTEN, officer_name=None, reply_address="{}",
                question="", context="[]", sources="[]", reason="", answer=None, answered_by=None,
                updated_at=self.clock())).rowcount
        return {"tickets": removed, "inbound_mails": mails, "archives": archives, "numbers": numbers}

    # -- deliveries ---------------------------------------------------------------------------------------

    def add_delivery(self, ticket: Ticket, text: str, *, conn: Connection, files: Sequence[int] = ()) -> None:
        """Queue an expert answer (and the ids of the attachments that go with it) for the officer's channel."""
        now = self.clock()
        conn.execute(deliveries.insert().values(
            ticket=ticket.number, channel=ticket.channel, reply_address=json.dumps(ticket.reply_address),
            text=text, created_at=now, attempts=0, next_attempt_at=now, files=json.dumps(list(files))))

    # -- attachments --------------------------------------------------------------------------------------

    def add_attachment(self, ticket: int, *, name: str, content_type: str, size: int, sha256: str, path: str,
                       conn: Connection, data: bytes) -> int:
        """Record a stored file of a ticket's answer, and its bytes unless the ticket has the same file already;
        its id."""
        stored_as = Path(path).name
        if conn.execute(sa.select(attachment_contents.c.name).where(attachment_contents.c.name == stored_as)
                        ).first() is None:
            conn.execute(attachment_contents.insert().values(name=stored_as, ticket=ticket, data=data,
                                                             created_at=self.clock()))
        result = conn.execute(attachments.insert().values(
            ticket=ticket, name=name[:200], content_type=content_type, size=size, sha256=sha256, path=path,
            created_at=self.clock()))
        return int(result.inserted_primary_key[0])

    def attachments_without_content(self) -> list[AnswerFile]:
        """Attachments recorded before their bytes went into the database, and not copied in since."""
        stored = sa.select(attachment_contents.c.name)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(attachments).order_by(attachments.c.id)).all()
            have = set(conn.execute(stored).scalars())
        return [_answer_file(r) for r in rows if Path(r.path).name not in have]

    def add_content(self, stored_as: str, *, ticket: int, data: bytes) -> None:
        """The bytes of an attachment recorded before they were kept in the database."""
        try:
            with self.transaction() as conn:
                # PostgreSQL: an erasure in between waits, or has won. SQLite takes no row locks: bytes inserted
                # just after an erasure are swept by the next one (`forget` drops bytes without a record).
                recorded = conn.execute(sa.select(attachments.c.id).where(attachments.c.ticket == ticket)
                                        .with_for_update()).all()
                if not recorded:
                    return
                conn.execute(attachment_contents.insert().values(name=stored_as, ticket=ticket, data=data,
                                                                 created_at=self.clock()))
        except sa.exc.IntegrityError:  # another worker copied them in a moment ago
            pass

    def attachment_content(self, stored_as: str) -> bytes | None:
        """The bytes of a stored file (by its name ``<ticket>-<digest>``), or None once erased."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(attachment_contents.c.data)
                                .where(attachment_contents.c.name == stored_as)).scalar()

    def attachments_of(self, ticket: int) -> list[AnswerFile]:
        """A ticket's stored attachments, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(attachments).where(attachments.c.ticket == ticket)
                                .order_by(attachments.c.id))
            return [_answer_file(r) for r in rows]

    def attachment(self, attachment_id: int) -> AnswerFile | None:
        """One stored attachment, or None (never stored, or erased with its ticket)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(attachments).where(attachments.c.id == attachment_id)).first()
        return _answer_file(row) if row is not None else None

    def attachment_file_names(self) -> set[str]:
        """The file names (not paths: the data dir may have moved) of every stored attachment."""
        with self.engine.connect() as conn:
            return {Path(r.path).name for r in conn.execute(sa.select(attachments.c.path))}

    def _files(self, conn: Connection, ids_json: str | None) -> tuple[AnswerFile, ...]:
        ids = [i for i in json.loads(ids_json or "[]") if isinstance(i, int)]
        if not ids:
            return ()
        rows = conn.execute(sa.select(attachments).where(attachments.c.id.in_(ids)).order_by(attachments.c.id))
        return tuple(_answer_file(r) for r in rows)

    def pending_deliveries(self, *, channel: str | None = None, include_future: bool = False) -> list[Delivery]:
        """Answers not yet delivered and not claimed by another sender."""
        query = sa.select(deliveries).where(deliveries.c.delivered_at.is_(None),
                                            _unclaimed(deliveries, self.clock())).order_by(deliveries.c.id)
        if channel:
            query = query.where(deliveries.c.channel == channel)
        if not include_future:
            query = query.where(deliveries.c.next_attempt_at <= self.clock())
        with self.engine.connect() as conn:
            return [Delivery(id=r.id, ticket=r.ticket, channel=r.channel, reply_address=json.loads(r.reply_address),
                             text=r.text, attempts=r.attempts, files=self._files(conn, r.files))
                    for r in conn.execute(query).all()]

    def claim_delivery(self, delivery_id: int, *, lease: float = LEASE_SECONDS,
                       due_only: bool = True) -> float | None:
        """Take an undelivered answer for ``lease`` seconds (the claim's expiry, or None: see ``claim_mail``)."""
        return self._claim(deliveries, delivery_id, deliveries.c.delivered_at, lease, due_only)

    def mark_delivered(self, delivery_id: int) -> None:
        """The officer has the answer."""
        with self.transaction() as conn:
            conn.execute(deliveries.update().where(deliveries.c.id == delivery_id).values(
                delivered_at=self.clock(), attempts=deliveries.c.attempts + 1, lease_until=None))

    def mark_delivery_failed(self, delivery_id: int, error: str, *, retry_in: float,
                             lease: float | None = None) -> None:
        """A channel could not deliver; try later (with ``lease``: only while that claim still holds)."""
        condition = [deliveries.c.id == delivery_id] + (
            [deliveries.c.lease_until == lease] if lease is not None else [])
        with self.transaction() as conn:
            conn.execute(deliveries.update().where(*condition).values(
                attempts=deliveries.c.attempts + 1, last_error=error[:500],
                next_attempt_at=self.clock() + retry_in, lease_until=None))
