"""The expert round trip against real servers: SMTP on loopback, SQLite and PostgreSQL ticket stores."""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from escalation.errors import EscalationError, MailError, TicketNotFound
from escalation.mail import REPLY_MARKER, MessageIds
from escalation.mailer import SmtpMailer, SmtpSettings
from escalation.pool import Expert, ExpertPool, classify_topic, load_pool
from escalation.delivery import DeliveryError, ExpertAnswer
from escalation.service import EscalationService
from escalation.store import ANSWERED, CLOSED, MIGRATIONS, REOPENED, SENT, NewTicket, TicketStore
from tests.smtp_server import SmtpServer


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _service(store_url: str, pool: ExpertPool | None, tmp_path: Path, smtp: SmtpServer | None,
             clock: Clock | None = None, trusted_authserv: tuple[str, ...] = ()) -> EscalationService:
    clock = clock or Clock()
    mailer = SmtpMailer(SmtpSettings(host=smtp.host, port=smtp.port, security="none", timeout=3)) if smtp else None
    return EscalationService(store=TicketStore(store_url, clock=clock), pool=pool,
                             ids=MessageIds(b"k" * 32, "vraagbaak.example.be"), mailer=mailer,
                             mail_from="vraagbaak@example.be", reply_to="experten@example.be",
                             archive_dir=tmp_path / "archive", clock=clock, trusted_authserv=trusted_authserv)


def _new(question: str = "Mag ik bij een innovatiepartnerschap met één partner verder na fase 1?") -> NewTicket:
    return NewTicket(officer="p1", channel="console", reply_address={"user": "an"}, question=question,
                     reason="op vraag van de gebruiker", topic="", officer_name="An",
                     context=["Wat is een innovatiepartnerschap?"],
                     sources=[{"title": "Innovatiepartnerschap (voorbeeldnota)", "label": "Fasen", "url": "file:///x"}])


def _reply_to(sent: EmailMessage, *, sender: str, body: str, keep_refs: bool = True, subject: str | None = None,
              message_id: str | None = None, auth_results: tuple[str, ...] = ()) -> bytes:
    reply = EmailMessage()
    for value in auth_results:  # topmost first, as the receiving servers stack them
        reply["Authentication-Results"] = value
    reply["From"] = sender
    reply["To"] = sent["Reply-To"]
    reply["Subject"] = subject or "RE: " + sent["Subject"]
    reply["Message-ID"] = message_id or make_msgid(domain="example.be")
    if keep_refs:
        reply["In-Reply-To"] = sent["Message-ID"]
        reply["References"] = sent["Message-ID"]
    quoted = "\n".join("> " + line for line in sent.get_content().splitlines())
    reply.set_content(f"{body}\n\nOp vr 27 nov. 2026 om 10:12 schreef Vraagbaak <vraagbaak@example.be>:\n{quoted}\n")
    return bytes(reply)


def test_ticket_and_mail_commit_together_and_the_mail_is_well_formed(store_url: str, pool: ExpertPool,
                                                                      tmp_path: Path, smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    ticket = service.open_ticket(_new())
    assert service.store.version == max(MIGRATIONS)
    assert ticket.topic == "innovatiepartnerschap" and ticket.expert_email == "an.peeters@example.be"
    assert service.store.get(ticket.number).state == SENT
    [mail] = smtp_server.received
    assert mail["Subject"].startswith(f"[VB-{ticket.number}] Mag ik bij een innovatiepartnerschap")
    assert mail["Reply-To"] == "experten@example.be"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert service.ids.verify(mail["Message-ID"]) == ticket.number
    body = mail.get_content()
    assert body.startswith(REPLY_MARKER)
    assert "An" in body and "Wat is een innovatiepartnerschap?" in body and "[1] Innovatiepartnerschap" in body


def test_round_robin_within_a_topic_survives_a_restart(store_url: str, pool: ExpertPool, tmp_path: Path) -> None:
    first = _service(store_url, pool, tmp_path, None)
    assignments = [first.open_ticket(_new()).expert_name for _ in range(2)]
    again = _service(store_url, pool, tmp_path, None)  # a restart
    assignments.append(again.open_ticket(_new()).expert_name)
    assert assignments == ["An Peeters", "Bram Claes", "An Peeters"]
    general = again.open_ticket(_new("Hoe lang moet ik mijn dossiers bewaren?"))
    assert general.topic == "general" and general.expert_name == "Chloé Dubois"


def test_without_smtp_the_ticket_exists_and_the_mail_waits(store_url: str, pool: ExpertPool, tmp_path: Path) -> None:
    service = _service(store_url, pool, tmp_path, None)
    ticket = service.open_ticket(_new())
    assert service.store.get(ticket.number).state == "open"
    assert [m.ticket for m in service.store.due_mails()] == [ticket.number]


def test_mail_server_down_then_up_delivers_exactly_once(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                         smtp_server: SmtpServer) -> None:
    smtp_server.stop()
    clock = Clock()
    service = _service(store_url, pool, tmp_path, smtp_server, clock)
    ticket = service.open_ticket(_new())
    [queued] = service.store.due_mails(include_future=True)
    assert queued.attempts == 1 and service.store.due_mails() == []  # backing off
    clock.now += 10
    assert service.send_outbox() == (0, 0)  # not due yet
    smtp_server.start()
    clock.now += 31
    assert service.send_outbox() == (1, 0)
    assert service.send_outbox(include_future=True) == (0, 0)
    restarted = _service(store_url, pool, tmp_path, smtp_server, clock)
    assert restarted.send_outbox(include_future=True) == (0, 0)
    assert len(smtp_server.received) == 1
    assert restarted.store.get(ticket.number).state == SENT


def test_a_crash_between_commit_and_send_loses_nothing(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                      smtp_server: SmtpServer) -> None:
    class Dying:
        def send(self, message: EmailMessage) -> None:
            raise KeyboardInterrupt("process killed")

    from escalation.store import LEASE_SECONDS

    clock = Clock()
    service = _service(store_url, pool, tmp_path, None, clock)
    service.mailer = Dying()
    with pytest.raises(KeyboardInterrupt):
        service.open_ticket(_new())
    after_restart = _service(store_url, pool, tmp_path, smtp_server, clock)
    assert after_restart.send_outbox() == (0, 0)  # the dead sender's claim still holds
    clock.now += LEASE_SECONDS + 1
    assert after_restart.send_outbox() == (1, 0)
    assert after_restart.send_outbox(include_future=True) == (0, 0)
    assert len(smtp_server.received) == 1


def test_reply_round_trip_duplicate_and_follow_up(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                  smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    ticket = service.open_ticket(_new())
    raw = _reply_to(smtp_server.received[0], sender="An Peeters <An.Peeters@example.be>",
                    body="Ja, dat kan als de opdrachtdocumenten dat vooraf voorzien.\n\nMet vriendelijke groeten,\nAn")
    result = service.ingest(raw)
    assert (result.status, result.ticket) == ("accepted", ticket.number)
    answered = service.store.get(ticket.number)
    assert answered.state == ANSWERED
    assert answered.answer == "Ja, dat kan als de opdrachtdocumenten dat vooraf voorzien."
    assert service.ingest(raw).status == "duplicate"
    [delivery] = service.store.pending_deliveries()
    queued = ExpertAnswer.from_stored(delivery.ticket, delivery.text)
    assert (queued.ticket, queued.answer, queued.question) == (ticket.number, answered.answer, ticket.question)
    assert queued.expert == answered.expert_name and queued.wording is None  # the expert it went to answered
    assert delivery.reply_address == {"user": "an"}
    assert [a.answer for a in service.take_pending("console", lambda a: a.get("user") == "an")] == [queued]
    assert service.store.pending_deliveries(include_future=True) == []

    service.follow_up(ticket.number, "p1", "En als de partner failliet gaat?")
    assert service.store.get(ticket.number).state == SENT  # reopened, then mailed
    follow = smtp_server.received[-1]
    assert follow["To"] == "an.peeters@example.be"
    assert follow["In-Reply-To"].strip() == smtp_server.received[0]["Message-ID"].strip()
    assert "En als de partner failliet gaat?" in follow.get_content()
    with pytest.raises(TicketNotFound):
        service.follow_up(ticket.number, "someone-else", "mag ik meelezen?")
    service.mark_solved(ticket.number, "p1")
    assert service.store.get(ticket.number).state == CLOSED


def test_forged_and_empty_replies_are_rejected(store_url: str, pool: ExpertPool, tmp_path: Path,
                                               smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    ticket = service.open_ticket(_new())
    sent = smtp_server.received[0]
    forged_id = sent["Message-ID"].replace("@", "x@", 1)
    outsider = _reply_to(sent, sender="hacker@evil.example", body="Klik hier voor het antwoord.")
    assert service.ingest(outsider).status == "rejected"
    bad_hmac = EmailMessage()
    bad_hmac["From"] = "onbekend@example.org"
    bad_hmac["Subject"] = "RE: iets"
    bad_hmac["Message-ID"] = make_msgid()
    bad_hmac["In-Reply-To"] = forged_id
    bad_hmac.set_content("Ik beantwoord dit wel.")
    assert service.ingest(bytes(bad_hmac)).status == "rejected"
    only_quote = _reply_to(sent, sender="an.peeters@example.be", body="")
    result = service.ingest(only_quote)
    assert result.status == "rejected" and "no new text" in result.reason
    # A subject tag alone, with a pool member's From that anyone can write: quarantined, not accepted.
    tag_only = _reply_to(sent, sender="bram.claes@example.be", body="Zie artikel 40, dat kan.", keep_refs=False)
    result = service.ingest(tag_only)
    assert result.status == "quarantined" and "not authenticated" in result.reason
    assert service.store.get(ticket.number).answer is None
    assert len(service.store.rejected()) == 3
    assert all(Path(r["archive"]).exists() for r in service.store.rejected())
    assert service.store.pending_deliveries() == []


TRUSTED = "mx.vraagbaak.example.be"


@pytest.mark.parametrize(("headers", "accepted"), [
    ((f"{TRUSTED}; dmarc=pass header.from=example.be; dkim=pass header.d=example.be",), True),
    ((f"{TRUSTED}; spf=pass smtp.mailfrom=bram.claes@example.be",), True),
    ((f"{TRUSTED}; dkim=pass header.d=mail.example.be",), False),  # signed by a subdomain: not aligned
    ((f"{TRUSTED}; dmarc=fail header.from=example.be",), False),
    (("mx.evil.example; dmarc=pass header.from=example.be",), False),  # a server we do not trust
    # A forged verdict under the trusted server's own one: only the topmost header counts.
    ((f"{TRUSTED}; dmarc=fail header.from=example.be", f"{TRUSTED}; dmarc=pass header.from=example.be"), False),
    ((f"{TRUSTED}; dkim=pass header.d=evil.example; dmarc=pass header.from=evil.example",), False),
    # Forgeries a review found: a quoted local part or a nested comment hiding a verdict, a duplicate property,
    # a top-level domain as "parent", a pass next to an explicit DMARC fail.
    ((f'{TRUSTED}; spf=pass smtp.mailfrom="x smtp.mailfrom=bram@example.be"@evil.example; dmarc=fail '
      'header.from=example.be',), False),
    ((f'{TRUSTED}; spf=pass smtp.mailfrom="a;dmarc=pass header.from=example.be"@evil.example',), False),
    ((f"{TRUSTED}; spf=pass (a (b) ;dmarc=pass header.from=example.be) smtp.mailfrom=x@evil.example",), False),
    ((f"{TRUSTED}; spf=pass smtp.mailfrom=x@evil.example smtp.mailfrom=x@example.be",), False),
    ((f"{TRUSTED}; dkim=pass header.d=be",), False),
    ((f"{TRUSTED}; dkim=pass header.d=example.be; dmarc=fail header.from=example.be",), False),
    ((f"{TRUSTED} 1; spf=pass (sender SPF authorized) smtp.mailfrom=bram.claes@example.be",), True),
    # Exchange Online's format, without an authserv-id: trusted only under the name microsoft365.
    (("spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.be; dmarc=pass action=none header.from=example.be",),
     False),
])
def test_a_reply_without_references_needs_a_trusted_authentication_verdict(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer, headers: tuple[str, ...],
        accepted: bool) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server, trusted_authserv=(TRUSTED,))
    ticket = service.open_ticket(_new())
    reply = _reply_to(smtp_server.received[0], sender="bram.claes@example.be", body="Zie artikel 40, dat kan.",
                      keep_refs=False, auth_results=headers)
    result = service.ingest(reply)
    assert result.status == ("accepted" if accepted else "quarantined")
    assert (service.store.get(ticket.number).answered_by == "bram.claes@example.be") is accepted


def test_exchange_online_verdicts_are_trusted_under_their_own_name(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                                   smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server, trusted_authserv=("microsoft365",))
    ticket = service.open_ticket(_new())
    header = ("spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.be; dkim=pass (signature was verified) "
              "header.d=example.be;dmarc=pass action=none header.from=example.be;compauth=pass reason=100")
    reply = _reply_to(smtp_server.received[0], sender="bram.claes@example.be", body="Zie artikel 40, dat kan.",
                      keep_refs=False, auth_results=(header,))
    assert service.ingest(reply).status == "accepted"
    assert service.store.get(ticket.number).answered_by == "bram.claes@example.be"


def test_a_maintainer_releases_a_quarantined_or_rejected_reply(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                              smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    ticket = service.open_ticket(_new())
    sent = smtp_server.received[0]
    tag_only = _reply_to(sent, sender="bram.claes@example.be", body="Zie artikel 40, dat kan.", keep_refs=False)
    assert service.ingest(tag_only).status == "quarantined"
    assert service.ingest(tag_only).status == "duplicate"
    [row] = service.quarantined()
    assert row["status"] == "quarantined" and len(row["key"]) == 12
    assert service.release(row["key"]).status == "accepted"
    assert service.store.get(ticket.number).answer.startswith("Zie artikel 40")
    assert service.quarantined() == []
    with pytest.raises(EscalationError):
        service.release(row["key"])

    # Rejected because the expert wrote from an alias; once the alias is in the pool, a release processes it.
    alias = _reply_to(sent, sender="a.peeters@example.be", body="Aanvulling: ook artikel 41.")
    assert service.ingest(alias).status == "rejected"
    service.pool = ExpertPool(experts=(*pool.experts, Expert(name="An Peeters (alias)", email="a.peeters@example.be",
                                                               topics=("innovatiepartnerschap",))),
                              fallback=pool.fallback, sla_hours=pool.sla_hours)
    [row] = service.quarantined()
    assert service.release(row["key"]).status == "accepted"
    assert service.store.get(ticket.number).answered_by == "a.peeters@example.be"


def test_overdue_tickets_remind_the_expert_and_the_fallback_once(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                                 smtp_server: SmtpServer) -> None:
    clock = Clock()
    service = _service(store_url, pool, tmp_path, smtp_server, clock)
    ticket = service.open_ticket(_new())
    assert service.remind_overdue() == 0
    clock.now += 25 * 3600
    assert service.remind_overdue() == 1
    reminder = smtp_server.received[-1]
    assert reminder["Subject"].startswith(f"Herinnering [VB-{ticket.number}]")
    assert set(reminder["To"].split(", ")) == {"an.peeters@example.be", "juridische-dienst@example.be"}
    assert service.remind_overdue() == 0

    # Two passes that both found a ticket overdue (a lease that ran out mid-pass): one reminder, not two.
    other = service.open_ticket(_new(question="Nog een vraag over een PCP?"))
    clock.now += 25 * 3600
    stale = service.store.overdue()
    second = _service(store_url, pool, tmp_path, smtp_server, clock)
    assert service.remind_overdue() == 1
    second.store.overdue = lambda: stale  # type: ignore[method-assign]  # read before the first pass wrote
    sent = len(smtp_server.received)
    assert second.remind_overdue() == 0 and len(smtp_server.received) == sent
    assert [t.number for t in stale] == [other.number]


def test_publish_writes_a_faq_record(store_url: str, pool: ExpertPool, tmp_path: Path,
                                     smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    ticket = service.open_ticket(_new())
    faq = tmp_path / "faq" / "expert-answers.jsonl"
    with pytest.raises(Exception, match="no expert answer"):
        service.publish(ticket.number, faq)
    service.ingest(_reply_to(smtp_server.received[0], sender="an.peeters@example.be", body="Ja, na fase 1 kan dat."))
    record = service.publish(ticket.number, faq)
    assert record["title"].startswith(f"Antwoord expertenpool, ticket VB-{ticket.number}, ")
    service.publish(ticket.number, faq)  # publishing again replaces, never duplicates
    assert faq.read_text(encoding="utf-8").count(f'"VB-{ticket.number}"') == 1


def test_pool_file_errors_name_the_problem(tmp_path: Path) -> None:
    from escalation.errors import PoolConfigError

    bad = tmp_path / "p.yaml"
    bad.write_text("fallback: nope\nexperts: []\n")
    with pytest.raises(PoolConfigError, match="fallback"):
        load_pool(bad)
    bad.write_text("fallback: a@b.be\nexperts:\n  - {name: X, email: x@b.be, topics: [astrologie]}\n")
    with pytest.raises(PoolConfigError, match="unknown topics"):
        load_pool(bad)
    with pytest.raises(PoolConfigError, match="not found"):
        load_pool(tmp_path / "missing.yaml")


def test_topics() -> None:
    assert classify_topic("Valt PCP onder de wet?") == "pcp"
    assert classify_topic("Hoe werkt de concurrentiegerichte dialoog?") == "dialoog"
    assert classify_topic("Wat is de drempel voor Europese bekendmaking?") == "drempels"
    assert classify_topic("Hoe archiveer ik?") == "general"


def test_smtp_failure_is_a_mail_error_without_secrets() -> None:
    from tests.smtp_server import free_port

    mailer = SmtpMailer(SmtpSettings(host="127.0.0.1", port=free_port(), security="none", user="u",
                                     password="geheim-wachtwoord", timeout=2))
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@b.be", "c@d.be", "x"
    message.set_content("x")
    with pytest.raises(MailError) as info:
        mailer.send(message)
    assert "geheim-wachtwoord" not in str(info.value)
    assert REOPENED == "reopened"


def _raw(sender: str, subject: str, *, message_id: str | None = None, body: str = "Dat mag, zie artikel 40.",
         subtype: str = "plain") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain="example.be")
    msg.set_content(body, subtype=subtype)
    return bytes(msg)


def test_hostile_header_fields_end_as_a_status_on_every_database(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                                 smtp_server: SmtpServer) -> None:
    # Each of these raised out of ingest on main (ValueError, OverflowError, StringDataRightTruncation).
    service = _service(store_url, pool, tmp_path, smtp_server)
    service.open_ticket(_new())
    member = "bram.claes@example.be"
    hostile = [
        _raw(member, "RE: =?utf-8?q?=5BVB-" + "1" * 5000 + "=5D?= vraag"),
        _raw(member, "RE: [VB-99999999999999999999] vraag"),
        _raw(member, "RE: [VB-1] vraag", message_id=f"<{'x' * 400}@example.be>"),
        _raw(f"{'a' * 330}@example.be", "RE: [VB-1] vraag"),
        _raw(member, "RE: [VB-1] vraag", body="<p>Dat mag.</p>" + "<a " * 16_000, subtype="html"),
    ]
    statuses = [service.ingest(raw).status for raw in hostile]
    assert statuses == ["rejected", "rejected", "quarantined", "rejected", "quarantined"]
    assert {len(r["message_id"]) <= 300 and len(r["sender"]) <= 320 for r in service.quarantined()} == {True}


class ListMailbox:
    """The mailbox port over a list, remembering where each message was moved."""

    def __init__(self, raws: list[bytes]) -> None:
        from escalation.mailbox import MailboxMessage

        self.messages = [MailboxMessage(uid=str(i), raw=raw) for i, raw in enumerate(raws, 1)]
        self.moved: dict[str, str] = {}

    def fetch_new(self, *, limit: int = 50):
        return [m for m in self.messages if m.uid not in self.moved][:limit]

    def mark_processed(self, uid: str) -> None:
        self.moved[uid] = "processed"

    def mark_rejected(self, uid: str) -> None:
        self.moved[uid] = "rejected"

    def mark_quarantined(self, uid: str) -> None:
        self.moved[uid] = "quarantined"

    def close(self) -> None:
        pass


def test_a_mail_that_breaks_processing_is_quarantined_and_the_pass_goes_on(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    ticket = service.open_ticket(_new())
    sent = smtp_server.received[0]
    good = _reply_to(sent, sender="an.peeters@example.be", body="Ja, dat kan.")
    spam = _raw("spam@example.org", "Goedkope pillen")
    boom = _raw("an.peeters@example.be", "RE: BOOM")
    original = service.ingest

    def ingest(raw: bytes, **kwargs):
        if b"BOOM" in raw:
            raise RuntimeError("a bug on one mail")
        return original(raw, **kwargs)

    monkeypatch.setattr(service, "ingest", ingest)
    mailbox = ListMailbox([boom, spam, good])
    assert [r.status for r in service.poll(mailbox)] == ["quarantined", "rejected", "accepted"]
    assert mailbox.moved == {"1": "quarantined", "2": "rejected", "3": "processed"}
    assert [r["reason"] for r in service.quarantined() if r["status"] == "quarantined"] == [
        "processing failed: RuntimeError"]
    assert service.store.get(ticket.number).answer == "Ja, dat kan."


def test_a_long_answer_is_cut_for_the_chat_and_kept_whole_with_the_ticket(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer) -> None:
    from escalation.service import MAX_ANSWER_CHARS

    service = _service(store_url, pool, tmp_path, smtp_server)
    ticket = service.open_ticket(_new())
    long_answer = "\n\n".join(f"Punt {i}: de aanbestedende overheid motiveert haar keuze." for i in range(600))
    reply = _reply_to(smtp_server.received[0], sender="an.peeters@example.be", body=long_answer)
    assert service.ingest(reply).status == "accepted"
    assert len(service.store.get(ticket.number).answer) > MAX_ANSWER_CHARS
    [delivery] = service.store.pending_deliveries()
    queued = ExpertAnswer.from_stored(ticket.number, delivery.text)
    assert queued.truncated and len(queued.answer) <= MAX_ANSWER_CHARS
    assert queued.answer.endswith("motiveert haar keuze.")  # cut where a paragraph ends


# -- exactly once across threads and processes ------------------------------------------------------------------


def _queued(store_url: str, pool: ExpertPool, tmp_path: Path, count: int) -> None:
    """Tickets whose first mails wait in the outbox (opened while no mail server was configured)."""
    quiet = _service(store_url, pool, tmp_path, None)
    for i in range(count):
        quiet.open_ticket(_new(question=f"Vraag {i} over een innovatiepartnerschap?"))


def _send_in_child(store_url: str, pool: ExpertPool, tmp_path: Path, host: str, port: int, conn) -> None:
    smtp = SmtpServer(host, port)
    service = _service(store_url, pool, tmp_path, smtp)
    conn.send(service.send_outbox())
    conn.close()


def test_three_senders_in_threads_send_every_mail_once(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                        smtp_server: SmtpServer) -> None:
    _queued(store_url, pool, tmp_path, 3)
    smtp_server.delay = 0.3
    senders = [_service(store_url, pool, tmp_path, smtp_server) for _ in range(3)]
    with ThreadPoolExecutor(3) as executor:
        results = list(executor.map(lambda s: s.send_outbox(), senders))
    assert sum(sent for sent, _ in results) == 3 and all(failed == 0 for _, failed in results)
    assert len(smtp_server.received) == 3
    assert len({m["Message-ID"] for m in smtp_server.received}) == 3


def test_two_sender_processes_send_every_mail_once(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                    smtp_server: SmtpServer) -> None:
    _queued(store_url, pool, tmp_path, 4)
    smtp_server.delay = 0.2
    context = multiprocessing.get_context("fork")
    pipes, children = [], []
    for _ in range(2):
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_send_in_child,
                                args=(store_url, pool, tmp_path, smtp_server.host, smtp_server.port, send))
        child.start()
        pipes.append(receive)
        children.append(child)
    results = [pipe.recv() if pipe.poll(30) else None for pipe in pipes]
    for child in children:
        child.join(10)
    assert None not in results and sum(sent for sent, _ in results) == 4
    assert len(smtp_server.received) == 4


def test_a_mail_claimed_by_a_sender_that_died_is_sent_after_the_lease(store_url: str, pool: ExpertPool,
                                                                      tmp_path: Path, smtp_server: SmtpServer) -> None:
    from escalation.store import LEASE_SECONDS

    clock = Clock()
    _queued(store_url, pool, tmp_path, 1)
    service = _service(store_url, pool, tmp_path, smtp_server, clock)
    [mail] = service.store.due_mails()
    assert service.store.claim_mail(mail.id)  # a sender took it, then its process was killed mid-send
    assert not service.store.claim_mail(mail.id)
    assert service.send_outbox() == (0, 0) and smtp_server.received == []
    clock.now += LEASE_SECONDS + 1
    assert service.send_outbox() == (1, 0) and len(smtp_server.received) == 1
    assert service.send_outbox() == (0, 0) and len(smtp_server.received) == 1


def test_concurrent_delivery_passes_deliver_each_answer_once(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                            smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    for i in range(2):
        ticket = service.open_ticket(_new(question=f"Vraag {i} over een innovatiepartnerschap?"))
        sent = [m for m in smtp_server.received if f"[{ticket.tag}]" in m["Subject"]][0]
        assert service.ingest(_reply_to(sent, sender="an.peeters@example.be", body=f"Antwoord {i}.")).status \
            == "accepted"
    delivered: list[str] = []

    class SlowChannel:
        async def deliver(self, reply_address, answer: ExpertAnswer, files=()) -> None:
            await asyncio.sleep(0.2)
            delivered.append(answer.answer)

    workers = [_service(store_url, pool, tmp_path, smtp_server) for _ in range(3)]
    with ThreadPoolExecutor(3) as executor:  # three processes' worth of passes, each on its own loop
        counts = list(executor.map(lambda s: asyncio.run(s.deliver({"console": SlowChannel()})), workers))
    assert sum(counts) == 2 and sorted(delivered) == ["Antwoord 0.", "Antwoord 1."]


def _answered(service, smtp_server: SmtpServer, count: int) -> None:
    for i in range(count):
        ticket = service.open_ticket(_new(question=f"Vraag {i} over een innovatiepartnerschap?"))
        sent = [m for m in smtp_server.received if f"[{ticket.tag}]" in m["Subject"]][0]
        service.ingest(_reply_to(sent, sender="an.peeters@example.be", body=f"Antwoord {i}."))


def test_a_send_that_outlasts_the_pass_goes_on_and_its_outcome_is_recorded_when_it_ends(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    _answered(service, smtp_server, 3)
    release = {"Antwoord 0.": asyncio.Event(), "Antwoord 1.": asyncio.Event()}
    delivered: list[str] = []

    class HangingChannel:
        async def deliver(self, reply_address, answer: ExpertAnswer, files=()) -> None:
            if answer.answer in release:
                await release[answer.answer].wait()  # Teams has not confirmed yet
            if answer.answer == "Antwoord 1.":
                raise DeliveryError("Teams delivery failed (HTTP 502)")
            delivered.append(answer.answer)

    async def scenario() -> None:
        channels = {"console": HangingChannel()}
        # The two hanging sends do not hold back the third answer, nor are they cancelled.
        assert await service.deliver(channels, wait_seconds=0.1) == 1
        assert delivered == ["Antwoord 2."]
        assert await service.deliver(channels, wait_seconds=0.1) == 0  # still claimed: not sent a second time
        for event in release.values():
            event.set()
        for _ in range(200):
            if not service._sends:
                break
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert delivered == ["Antwoord 2.", "Antwoord 0."]  # the slow send went through once, and counts as delivered
    [failed] = service.store.pending_deliveries(include_future=True)
    assert "Antwoord 1." in failed.text and failed.attempts == 1  # failed once: retried later, not lost


def test_no_answer_is_started_once_the_server_is_stopping(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                          smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    _answered(service, smtp_server, 2)
    stop = asyncio.Event()
    delivered: list[str] = []

    class StoppingChannel:
        async def deliver(self, reply_address, answer: ExpertAnswer, files=()) -> None:
            delivered.append(answer.answer)
            stop.set()  # SIGTERM arrives during the first send

    assert asyncio.run(service.deliver({"console": StoppingChannel()}, stop=stop)) == 1
    assert len(delivered) == 1 and len(service.store.pending_deliveries(include_future=True)) == 1

    # A send still in flight when the server stops is not waited for (the channel's stop gives it its grace
    # period), and its outcome is still recorded.
    release = asyncio.Event()

    class HangingChannel:
        async def deliver(self, reply_address, answer: ExpertAnswer, files=()) -> None:
            await release.wait()
            delivered.append(answer.answer)

    async def scenario() -> int:
        stop.clear()
        asyncio.get_running_loop().call_later(0.05, stop.set)
        count = await service.deliver({"console": HangingChannel()}, stop=stop)  # the default wait is 300 s
        release.set()
        for _ in range(200):
            if not service._sends:
                break
            await asyncio.sleep(0.01)
        return count

    assert asyncio.run(scenario()) == 0
    assert len(delivered) == 2 and service.store.pending_deliveries(include_future=True) == []


def test_delivery_passes_interleaved_on_one_loop_deliver_each_answer_once(store_url: str, pool: ExpertPool,
                                                                         tmp_path: Path,
                                                                         smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    _answered(service, smtp_server, 3)
    delivered: list[str] = []

    class SlowChannel:
        async def deliver(self, reply_address, answer: ExpertAnswer, files=()) -> None:
            await asyncio.sleep(0.1)  # the other passes run meanwhile
            delivered.append(answer.answer)

    async def passes() -> list[int]:
        return await asyncio.gather(*(service.deliver({"console": SlowChannel()}) for _ in range(3)))

    assert sum(asyncio.run(passes())) == 3
    assert sorted(delivered) == ["Antwoord 0.", "Antwoord 1.", "Antwoord 2."]


def test_a_version_1_database_gets_the_lease_columns_and_the_attachments(store_url: str) -> None:
    import sqlalchemy as sa

    store = TicketStore(store_url)
    with store.transaction() as conn:  # back to what a database of the first release looks like
        for table in ("outbox", "deliveries"):
            conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN lease_until"))
        conn.execute(sa.text("ALTER TABLE deliveries DROP COLUMN files"))
        conn.execute(sa.text("DROP TABLE attachments"))
        conn.execute(sa.text("DROP TABLE attachment_contents"))
        conn.execute(sa.text("DELETE FROM schema_version WHERE version > 1"))
    store.engine.dispose()
    upgraded = TicketStore(store_url)
    assert upgraded.version == 4
    assert upgraded.attachment_content("1-0123") is None  # the table of the attachments' bytes is there
    columns = {c["name"] for c in sa.inspect(upgraded.engine).get_columns("outbox")}
    assert "lease_until" in columns and upgraded.due_mails() == []
    assert "files" in {c["name"] for c in sa.inspect(upgraded.engine).get_columns("deliveries")}
    assert upgraded.attachments_of(1) == [] and upgraded.pending_deliveries() == []


def test_a_referenced_reply_that_fails_dmarc_at_a_trusted_server_is_quarantined(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer) -> None:
    # The signed Message-ID proves the ticket, not the author: anyone who saw the question mail can copy it.
    service = _service(store_url, pool, tmp_path, smtp_server, trusted_authserv=(TRUSTED,))
    ticket = service.open_ticket(_new())
    sent = smtp_server.received[0]
    forged = _reply_to(sent, sender="bram.claes@example.be", body="Teken maar, geen probleem.",
                       auth_results=(f"{TRUSTED}; spf=fail smtp.mailfrom=x@evil.example; dmarc=fail "
                                     "header.from=example.be",))
    assert service.ingest(forged).status == "quarantined"
    genuine = _reply_to(sent, sender="an.peeters@example.be", body="Ja, dat kan.",
                        auth_results=(f"{TRUSTED}; dmarc=none header.from=example.be",))
    assert service.ingest(genuine).status == "accepted"
    assert service.store.get(ticket.number).answer == "Ja, dat kan."


def test_a_release_that_fails_keeps_the_mail_listed(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    service.open_ticket(_new())
    tag_only = _reply_to(smtp_server.received[0], sender="bram.claes@example.be", body="Zie artikel 40.",
                         keep_refs=False)
    assert service.ingest(tag_only).status == "quarantined"
    [row] = service.quarantined()

    def broken(raw: bytes, **kwargs):
        raise LookupError("unknown encoding: rot13")

    monkeypatch.setattr(service, "ingest", broken)
    with pytest.raises(EscalationError, match="could not be processed"):
        service.release(row["key"])
    assert [r["key"] for r in service.quarantined()] == [row["key"]]


def test_a_channel_that_crashes_on_one_answer_does_not_hold_back_the_others(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    _answered(service, smtp_server, 2)
    delivered: list[str] = []

    class Flaky:
        async def deliver(self, reply_address, answer: ExpertAnswer, files=()) -> None:
            if answer.answer == "Antwoord 0.":
                raise RuntimeError("a bug in the channel")
            delivered.append(answer.answer)

    assert asyncio.run(service.deliver({"console": Flaky()})) == 1
    assert delivered == ["Antwoord 1."]
    [waiting] = service.store.pending_deliveries(include_future=True)
    assert "Antwoord 0." in waiting.text  # retried later, not lost and not left claimed for the lease


def test_a_sender_whose_lease_expired_does_not_release_the_next_senders_claim(
        store_url: str, pool: ExpertPool, tmp_path: Path) -> None:
    from escalation.store import LEASE_SECONDS

    clock = Clock()
    _queued(store_url, pool, tmp_path, 1)
    store = TicketStore(store_url, clock=clock)
    [mail] = store.due_mails()
    slow = store.claim_mail(mail.id)
    clock.now += LEASE_SECONDS + 1  # the first sender is still stuck in its send
    second = store.claim_mail(mail.id)
    assert slow is not None and second is not None and second != slow
    store.mark_failed(mail.id, "timeout", retry_in=0, lease=slow)  # the first sender gives up at last
    assert store.claim_mail(mail.id) is None  # the second sender still holds the mail
    store.mark_failed(mail.id, "refused", retry_in=0, lease=second)
    assert store.claim_mail(mail.id) is not None


def test_two_processes_opening_a_new_database_at_once_both_migrate_it(store_url: str) -> None:
    # `serve` restarting while cron runs a command: both find an empty database and run the migrations.
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def open_store(conn) -> None:
        conn.send(TicketStore(store_url).version)
        conn.close()

    children = [context.Process(target=open_store, args=(send,)) for _ in range(3)]
    for child in children:
        child.start()
    versions = [receive.recv() if receive.poll(30) else None for _ in children]
    for child in children:
        child.join(10)
    assert versions == [max(MIGRATIONS)] * 3 and all(child.exitcode == 0 for child in children)


def test_a_pulled_answer_is_handed_to_one_console_only(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                        smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    service.open_ticket(_new())
    service.ingest(_reply_to(smtp_server.received[0], sender="an.peeters@example.be", body="Ja, dat kan."))
    consoles = [_service(store_url, pool, tmp_path, smtp_server) for _ in range(3)]
    with ThreadPoolExecutor(3) as executor:
        handed = list(executor.map(lambda s: s.take_pending("console", lambda address: True), consoles))
    assert sorted(len(texts) for texts in handed) == [0, 0, 1]
