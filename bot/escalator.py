"""The helpdesk's escalation port implemented by the expert-pool service (plain data across the boundary)."""

from __future__ import annotations

from collections.abc import Callable

from bot.messages import Escalation, FileOffer, Incoming
from bot.texts import (ANSWER_HERE, EXPERT_ATTACHMENT_INLINE, NO_TICKETS, STATUS_HEADING, attachment_note,
                       attachments_again, expert_answer_text, follow_up_sent, no_attachments, status_line,
                       ticket_not_found, ticket_sent, ticket_solved, ticket_without_mail, ticket_without_pool)
from escalation.errors import TicketNotFound
from escalation.service import EscalationService
from escalation.store import NewTicket
from retrieval.types import SearchHit


class PoolEscalator:
    """Creates tickets for the expert pool and answers the officer's ticket commands in Dutch."""

    def __init__(self, service: EscalationService, *, pseudonym: Callable[[str, str], str]) -> None:
        self.service = service
        self._pseudonym = pseudonym

    def _officer(self, incoming: Incoming) -> str:
        return self._pseudonym(incoming.channel, incoming.user_id)

    def escalate(self, incoming: Incoming, *, question: str, hits: list[SearchHit], reason: str,
                 history: list[str]) -> Escalation:
        """Open a ticket; its number and a Dutch sentence on what happens next."""
        sources = [{"title": h.chunk.title, "label": h.passage.label or h.chunk.label, "url": h.passage.url}
                   for h in hits]
        ticket = self.service.open_ticket(NewTicket(
            officer=self._officer(incoming), channel=incoming.channel,
            reply_address=incoming.reply_address or {}, question=question, reason=reason, topic="",
            officer_name=incoming.user_name, context=[q for q in history if q != question][-3:], sources=sources))
        where = _answer_arrives(incoming)
        if self.service.pool is None:
            note = ticket_without_pool(ticket.tag)
        elif self.service.mailer is None:
            note = ticket_without_mail(ticket.tag, where)
        else:
            note = ticket_sent(ticket.tag, ticket.expert_name, self.service.sla_hours, where)
        return Escalation(ticket.number, note)

    def status(self, incoming: Incoming) -> str:
        """The officer's tickets."""
        mine = self.service.tickets_for(self._officer(incoming))
        if not mine:
            return NO_TICKETS
        lines = [STATUS_HEADING]
        for t in mine[:10]:
            start = t.question if len(t.question) <= 60 else t.question[:60].rsplit(" ", 1)[0] + " …"
            lines.append(status_line(t.tag, t.state, start))
        return "\n".join(lines)

    def solved(self, incoming: Incoming, number: int) -> str:
        """/opgelost N"""
        try:
            ticket = self.service.mark_solved(number, self._officer(incoming))
        except TicketNotFound:
            return ticket_not_found(number)
        return ticket_solved(ticket.tag)

    def follow_up(self, incoming: Incoming, number: int, text: str) -> str:
        """/vervolg N vraag"""
        try:
            ticket = self.service.follow_up(number, self._officer(incoming), text)
        except TicketNotFound:
            return ticket_not_found(number)
        return follow_up_sent(ticket.tag, _answer_arrives(incoming))

    def attachments(self, incoming: Incoming, number: int) -> tuple[str, tuple[FileOffer, ...]]:
        """/bijlagen N: the expert's attachments of one of the officer's tickets, offered again."""
        try:
            files = self.service.files_for(number, self._officer(incoming))
        except TicketNotFound:
            return ticket_not_found(number), ()
        if not files:
            return no_attachments(number), ()
        return (attachments_again(number, len(files)),
                tuple(FileOffer.of(f, note=attachment_note(number)) for f in files))

    def pending_answers(self, incoming: Incoming) -> list[tuple[str, tuple[FileOffer, ...]]]:
        """Expert answers waiting for this officer in a pull channel (the console), each with its files."""
        user = incoming.user_id
        answers = self.service.take_pending(incoming.channel, lambda address: address.get("user") == user)
        return [(expert_answer_text(a.answer), tuple(FileOffer.of(f, note=EXPERT_ATTACHMENT_INLINE) for f in a.files))
                for a in answers]


def _answer_arrives(incoming: Incoming) -> str:
    """Where the expert's answer will reach the officer, as the channel said (default: this conversation)."""
    return incoming.answer_arrives or ANSWER_HERE
