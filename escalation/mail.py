"""Outgoing ticket mails: subject tag, signed Message-ID, reply marker, and the body an expert reads."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from email.message import EmailMessage
from email.utils import formatdate

from escalation.store import Ticket

REPLY_MARKER = "##- Antwoord boven deze lijn / Répondez au-dessus de cette ligne -##"
_MESSAGE_ID = re.compile(r"^<?vb-(\d{1,9})\.([a-z]+)\.([0-9a-f]{8})\.([0-9a-f]{20})@([^>\s]+)>?$", re.IGNORECASE)


class MessageIds:
    """Message-IDs that carry the ticket number and an HMAC, so a reply's In-Reply-To proves which ticket it answers."""

    def __init__(self, secret: bytes, domain: str) -> None:
        self._secret = secret
        self.domain = domain

    def _sign(self, number: int, kind: str, nonce: str) -> str:
        return hmac.new(self._secret, f"{number}.{kind}.{nonce}".encode(), hashlib.sha256).hexdigest()[:20]

    def new(self, number: int, kind: str) -> str:
        """A fresh signed Message-ID (with angle brackets)."""
        nonce = secrets.token_hex(4)
        return f"<vb-{number}.{kind}.{nonce}.{self._sign(number, kind, nonce)}@{self.domain}>"

    def verify(self, message_id: str) -> int | None:
        """The ticket number of a Message-ID we signed, or None (foreign or forged)."""
        match = _MESSAGE_ID.match(message_id.strip())
        if not match:
            return None
        number, kind, nonce, mac, _ = match.groups()
        if not hmac.compare_digest(mac.lower(), self._sign(int(number), kind.lower(), nonce.lower())):
            return None
        return int(number)


def subject_for(ticket: Ticket, *, prefix: str = "") -> str:
    """``[VB-123] <start of the question>``."""
    start = " ".join(ticket.question.split())
    if len(start) > 70:
        start = start[:70].rsplit(" ", 1)[0] + " …"
    return f"{prefix}[{ticket.tag}] {start}"


def question_body(ticket: Ticket, *, sla_hours: float, follow_up: str | None = None) -> str:
    """The text an expert receives: marker, question, why it was escalated, conversation, sources."""
    asker = ticket.officer_name or "een aankoper"
    lines = [REPLY_MARKER, ""]
    if follow_up:
        lines += [f"Vervolgvraag bij {ticket.tag} van {asker}:", "", follow_up, "",
                  "Oorspronkelijke vraag:", "", ticket.question, ""]
        if ticket.answer:
            lines += ["Uw eerdere antwoord:", "", ticket.answer, ""]
    else:
        lines += [f"Vraag {ticket.tag} van {asker}, gesteld via {ticket.channel}:", "", ticket.question, ""]
    lines += [f"Waarom doorverwezen: {ticket.reason}.", ""]
    if ticket.context:
        lines += ["Eerder in het gesprek:"] + [f"- {c}" for c in ticket.context] + [""]
    if ticket.sources:
        lines.append("Bronnen die Vraagbaak vond (ter informatie, niet gecontroleerd):")
        for n, source in enumerate(ticket.sources, 1):
            parts = [source.get("title"), source.get("label"), source.get("url")]
            lines.append(f"[{n}] " + " — ".join(p for p in parts if p))
        lines.append("")
    lines += [
        "Antwoord gewoon op deze mail, boven de lijn bovenaan. Uw antwoord gaat rechtstreeks naar de vraagsteller,",
        f"in het gesprek waarin de vraag gesteld werd. Graag binnen {sla_hours:g} uur.",
        "",
        "Vraagbaak, helpdesk innovatieve overheidsopdrachten (automatisch bericht)",
    ]
    return "\n".join(lines)


def reminder_body(ticket: Ticket) -> str:
    """A reminder for an overdue ticket."""
    return "\n".join([
        REPLY_MARKER, "",
        f"Herinnering: vraag {ticket.tag} wacht langer dan afgesproken op een antwoord.", "",
        ticket.question, "",
        f"Toegewezen aan: {ticket.expert_name or 'niemand'} <{ticket.expert_email or '-'}>.",
        "Antwoord op deze mail, boven de lijn, om de vraagsteller te helpen.",
    ])


def build_message(*, sender: str, reply_to: str, recipients: list[str], subject: str, body: str, message_id: str,
                  ticket: int, in_reply_to: list[str] | None = None) -> EmailMessage:
    """The RFC 5322 message as sent."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = formatdate(localtime=True)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Vraagbaak-Ticket"] = f"VB-{ticket}"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to[-1]
        msg["References"] = " ".join(in_reply_to)
    msg.set_content(body)
    return msg
