"""The helpdesk's escalation port implemented by the expert-pool service (plain data across the boundary)."""

from __future__ import annotations

from collections.abc import Callable

from bot.messages import Escalation, FileOffer, Incoming
from bot.texts import STATE_NL, expert_answer_text
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
            note = (f"Je vraag is geregistreerd als {ticket.tag}, maar er is nog geen expertenpool ingesteld: de "
                    "beheerder van de helpdesk ziet ze in de lijst met tickets. Met /status volg je ze op.")
        elif self.service.mailer is None:
            note = (f"Je vraag heeft nummer {ticket.tag}. De mail naar de expertenpool staat klaar en vertrekt zodra "
                    f"de mailserver is ingesteld. Het antwoord krijg je {where}; met /status volg je ze op.")
        else:
            who = f" ({ticket.expert_name})" if ticket.expert_name else ""
            note = (f"Je vraag heeft nummer {ticket.tag} en gaat naar een expert{who}, die normaal binnen "
                    f"{self.service.sla_hours:g} uur antwoordt. Het antwoord krijg je {where}. Met /status volg je "
                    "ze op.")
        return Escalation(ticket.number, note)

    def status(self, incoming: Incoming) -> str:
        """The officer's tickets."""
        mine = self.service.tickets_for(self._officer(incoming))
        if not mine:
            return "Je hebt geen vragen bij de expertenpool."
        lines = ["Je vragen bij de expertenpool:"]
        for t in mine[:10]:
            start = t.question if len(t.question) <= 60 else t.question[:60].rsplit(" ", 1)[0] + " …"
            lines.append(f"- {t.tag}: {STATE_NL.get(t.state, t.state)} — {start}")
        return "\n".join(lines)

    def solved(self, incoming: Incoming, number: int) -> str:
        """/opgelost N"""
        try:
            ticket = self.service.mark_solved(number, self._officer(incoming))
        except TicketNotFound:
            return f"Ik vind geen vraag VB-{number} van jou."
        return f"Fijn! {ticket.tag} is afgesloten."

    def follow_up(self, incoming: Incoming, number: int, text: str) -> str:
        """/vervolg N vraag"""
        try:
            ticket = self.service.follow_up(number, self._officer(incoming), text)
        except TicketNotFound:
            return f"Ik vind geen vraag VB-{number} van jou."
        where = _answer_arrives(incoming)
        return f"Je vervolgvraag bij {ticket.tag} gaat naar dezelfde expert. Het antwoord krijg je {where}."

    def attachments(self, incoming: Incoming, number: int) -> tuple[str, tuple[FileOffer, ...]]:
        """/bijlagen N: the expert's attachments of one of the officer's tickets, offered again."""
        try:
            files = self.service.files_for(number, self._officer(incoming))
        except TicketNotFound:
            return f"Ik vind geen vraag VB-{number} van jou.", ()
        if not files:
            return f"Bij VB-{number} heeft de expert geen bijlagen gestuurd (of ze zijn al verwijderd).", ()
        what = "de bijlage" if len(files) == 1 else f"de {len(files)} bijlagen"
        return (f"Hier is {what} van de expert bij VB-{number}.",
                tuple(FileOffer.of(f, note=f"Bijlage van de expert bij VB-{number}") for f in files))

    def pending_answers(self, incoming: Incoming) -> list[tuple[str, tuple[FileOffer, ...]]]:
        """Expert answers waiting for this officer in a pull channel (the console), each with its files."""
        user = incoming.user_id
        answers = self.service.take_pending(incoming.channel, lambda address: address.get("user") == user)
        return [(expert_answer_text(a.answer), tuple(FileOffer.of(f, note="bijlage van de expert") for f in a.files))
                for a in answers]


def _answer_arrives(incoming: Incoming) -> str:
    """Where the expert's answer will reach the officer, as the channel said (default: this conversation)."""
    return incoming.answer_arrives or "hier in dit gesprek"
