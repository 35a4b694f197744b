"""The channel-agnostic helpdesk: a question comes in, a cited reply (or a next step) goes out."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.resources
import logging
import re
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

import numpy as np

from bot import procedure, resources
from bot.answers import ExtractiveComposer
from bot.audit import AuditLog
from bot.conversation import ConversationMemory, Turn, contextual_query, is_follow_up
from bot.intent import Intent, IntentPrediction
from bot.messages import Action, ActionKind, Citation, Decision, Escalation, FileOffer, Incoming, Press, Reply
from bot.policy import RuleMatch, Rules, load_rules
from bot.procedure import InMemoryWalkStore, ProcedureTree, WalkStore, load_tree
from bot.routing import Evidence, Router, Verdict, load_routing
from bot.runtime import Limiter
from bot.texts import (ASKING_EXPERTS, ASK_ANOTHER, BUTTON_GONE, CLARIFY, COLLEAGUES_BUTTON, CONVERSATION_RESET,
                       FEEDBACK_LOST, FEEDBACK_THANKS, FEEDBACK_THANKS_DOWN, FOLLOW_UPS_LIMITED,
                       FOLLOW_UP_TEXT_MISSING, HELP_TEXT, LAW_OF_2016, NEXT_STEP_ANSWER, NEXT_STEP_EXPERT_OFFER,
                       NO_ANSWER_NO_SOURCE, NO_ANSWER_OFF_TOPIC, NO_CASE, NO_POOL, NO_POOL_ESCALATION, NO_TEMPLATE,
                       NO_TICKETS, OWN_CASE_LABEL, PROCEDURE_OLD_BUTTON, PROCEDURE_RESTARTED, PROCEDURE_STOPPED,
                       PROCEDURE_UNKNOWN_ANSWER, REASON_ASKED, SOURCES_MEANWHILE, STATUS_IN_PRIVATE, TICKETS_LIMITED,
                       UNKNOWN_COMMAND, WHICH_QUESTION, already_asked, case_line, cases_found, legal_intro,
                       number_missing, pick_a_number, recommendation, template_line, template_with_answer,
                       templates_found, ticket_not_found, validity_warning)
from retrieval.evidence import TermStats, topic_tokens
from retrieval.lexical import analyse
from retrieval.types import QUOTED_KINDS, SearchHit

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
"""Longer messages are cut: nobody types more in a chat, and it bounds the work per message."""
SEARCH_K = 5
ANSWER_KINDS = QUOTED_KINDS
"""What answers quote: rules and explanations; templates and cases are handed out when asked for."""
MAX_CASES = 4
_PROCEDURE_QUESTION = re.compile(
    r"^\W*(?:(?:help\s+(?:me\s+)?)?welke\s+(?:aankoop|plaatsings|gunnings)?procedure\s+(?:moet|kan|zal|mag|past)"
    r"(?:\s+(?:ik|we|wij))?(?:\s+(?:best|het\s+best|dan))?(?:\s+(?:kiezen|gebruiken|volgen|nemen))?"
    r"|(?:hoe\s+)?(?:kies|kiezen)\s+(?:ik|we)\s+(?:een|de)\s+(?:juiste\s+)?procedure"
    r"|(?:hulp\s+bij\s+)?(?:de\s+)?keuze\s+van\s+(?:de\s+)?procedure)"
    r"(?:\s+(?:voor|bij)?\s*(?:mijn|onze|een|deze)\s+(?:opdracht|aankoop|project|dossier))?\W*$", re.IGNORECASE)
"""A general request to choose a procedure (the guided walk answers it); a question that says more ("welke
procedure gebruik ik tussen 143.000 euro en de Europese drempel?") is answered from the sources."""

_NO_ANSWER = {
    Verdict.OFF_TOPIC: (NO_ANSWER_OFF_TOPIC, Decision.OUT_OF_SCOPE),
    Verdict.NO_SOURCE: (NO_ANSWER_NO_SOURCE, Decision.NOT_FOUND),
}
"""What the officer reads when no source answers (off-topic, or a procurement question the corpus does not
cover), and the decision it is."""


class Retriever(Protocol):
    """What the helpdesk needs from retrieval."""

    def search(self, query: str, *, k: int = 10, mode: str = "hybrid",
               kinds: Collection[str] | None = None) -> list[SearchHit]:
        """Ranked hits (with ``kinds``: only from sources of those kinds)."""
        ...

    def term_stats(self) -> TermStats:
        """Document frequencies of the served corpus (the evidence judge weighs terms by them)."""
        ...


class Routing(Protocol):
    """The learned half of routing (bot/routing.py implements it): intent, and whether a source answers."""

    def intent(self, question: str) -> IntentPrediction:
        """What the officer wants."""
        ...

    def evidence(self, question: str, hits: Sequence[SearchHit], stats: TermStats, *,
                 intent: IntentPrediction | None = None) -> Evidence:
        """Whether one of the hits answers the question (``intent``: what the intent model made of it)."""
        ...


class Escalator(Protocol):
    """Turns a question into a ticket for the expert pool (bot/escalator.py implements it)."""

    def escalate(self, incoming: Incoming, *, question: str, hits: list[SearchHit], reason: str,
                 history: list[str]) -> Escalation:
        """Create a ticket."""
        ...

    def status(self, incoming: Incoming) -> str:
        """A Dutch summary of the officer's tickets."""
        ...

    def solved(self, incoming: Incoming, number: int) -> str:
        """The officer marks a ticket solved."""
        ...

    def follow_up(self, incoming: Incoming, number: int, text: str) -> str:
        """A follow-up question to the same expert."""
        ...

    def attachments(self, incoming: Incoming, number: int) -> tuple[str, tuple[FileOffer, ...]]:
        """The expert's files of one of the officer's tickets, and a Dutch sentence about them."""
        ...


class NoEscalation:
    """For tests and tools that run without a ticket store: nothing is created, and the officer is told so."""

    def escalate(self, incoming: Incoming, *, question: str, hits: list[SearchHit], reason: str,
                 history: list[str]) -> Escalation:
        """No ticket system."""
        return Escalation(None, NO_POOL_ESCALATION)

    def status(self, incoming: Incoming) -> str:
        """No tickets can exist."""
        return NO_TICKETS

    def solved(self, incoming: Incoming, number: int) -> str:
        """Nothing to close."""
        return ticket_not_found(number)

    def follow_up(self, incoming: Incoming, number: int, text: str) -> str:
        """Nothing to follow up."""
        return NO_POOL

    def attachments(self, incoming: Incoming, number: int) -> tuple[str, tuple[FileOffer, ...]]:
        """No tickets, no files."""
        return ticket_not_found(number), ()


class Composer(Protocol):
    """Writes the answer text for a question from its hits; markers [n] refer to the hits' order."""

    def compose(self, question: str, hits: list[SearchHit]) -> tuple[str, list[SearchHit]] | None:
        """(text with [n] markers, the hits cited in order), or None to fall back to the extractive answer."""
        ...


@dataclass
class HelpdeskService:
    """Decides and answers; every channel calls ``handle`` and renders the Reply."""

    retriever: Retriever
    audit: AuditLog
    escalator: Escalator
    memory: ConversationMemory
    rules: Rules
    router: Routing
    composer: Composer | None = None
    """The generative composer, when configured; the extractive one answers whenever it gives nothing."""
    extractive: ExtractiveComposer = field(default_factory=ExtractiveComposer)
    clock: Callable[[], float] = time.time
    walks: WalkStore = field(default_factory=InMemoryWalkStore)
    """Where each conversation is in `/procedure` (SQLite under the data dir in the app: survives a restart)."""
    tree: ProcedureTree = field(default_factory=load_tree)
    ticket_limit: Limiter | None = None
    """How many tickets and follow-ups one officer may send per window (the app sets it; None: no limit, as in
    evaluations)."""

    @classmethod
    def create(cls, *, retriever: Retriever, audit: AuditLog, model: str,
               embed: Callable[[str], np.ndarray] | None = None, escalator: Escalator | None = None,
               composer: Composer | None = None, walks: WalkStore | None = None,
               ticket_limit: Limiter | None = None, memory: ConversationMemory | None = None
               ) -> "HelpdeskService":
        """A service with the bundled rules and procedure tree, the routing model trained for ``model`` and, unless
        given, conversation memory in this process."""
        return cls(retriever=retriever, audit=audit, escalator=escalator or NoEscalation(),
                   memory=memory or ConversationMemory(), rules=load_rules(),
                   router=Router(load_routing(model), embed=embed), composer=composer,
                   walks=walks or InMemoryWalkStore(), ticket_limit=ticket_limit)

    # -- entry points -------------------------------------------------------------------------------------

    def handle(self, incoming: Incoming) -> Reply:
        """Answer one message: a command, or a question."""
        text = _clean(incoming.text)
        command = text.split(maxsplit=1)[0].lower() if text.startswith("/") else None
        if command in ("/start", "/help", "/hulp"):
            return self._reply(HELP_TEXT, Decision.CLARIFY)
        if command == "/reset":
            self.memory.reset(incoming.conversation_id)
            return self._reply(CONVERSATION_RESET, Decision.CLARIFY)
        if command == "/status":
            if incoming.shared:
                return self._reply(STATUS_IN_PRIVATE, Decision.CLARIFY)
            return self._reply(f"{self.escalator.status(incoming)}\n\n{ASK_ANOTHER}", Decision.CLARIFY)
        if command == procedure.COMMAND:
            return self._procedure(incoming, text[len(procedure.COMMAND):].strip())
        if command is None:
            walk = self.walks.get(incoming.conversation_id)
            typed = procedure.typed_answer(self.tree, walk, text) if walk is not None else None
            if typed is not None:
                return self._procedure(incoming, typed)
            if walk is not None:
                # Another question ends the walk: a later "ja" or "1" is an answer to that, not to the tree.
                self.walks.clear(incoming.conversation_id)
        if command in ("/opgelost", "/vervolg", "/bijlagen"):
            return self._ticket_command(incoming, command, text)
        if command == "/expert":
            rest = text[len("/expert"):].strip()
            return self.ask_expert(incoming, question=rest or None)
        if command is not None:
            return self._reply(UNKNOWN_COMMAND, Decision.CLARIFY)
        return self._question(incoming, text)

    def _ticket_command(self, incoming: Incoming, command: str, text: str) -> Reply:
        # Nine digits at most, as in a mail's ticket tag: a longer number is no ticket (and no database integer).
        match = re.match(r"^/\w+\s+(?:vb-?)?(\d{1,9})(?!\d)\s*(.*)$", text, re.IGNORECASE | re.DOTALL)
        if not match:
            return self._reply(number_missing(command), Decision.CLARIFY)
        number, rest = int(match.group(1)), match.group(2).strip()
        if command == "/opgelost":
            return self._reply(self.escalator.solved(incoming, number), Decision.CLARIFY)
        if command == "/bijlagen":
            text, files = self.escalator.attachments(incoming, number)
            return self._reply(text, Decision.CLARIFY, files=files)
        if not rest:
            return self._reply(FOLLOW_UP_TEXT_MISSING, Decision.CLARIFY)
        if self._over_ticket_limit(incoming):  # a follow-up mails the expert as a ticket does
            return self._reply(FOLLOW_UPS_LIMITED.format(limit=self.ticket_limit.limit), Decision.CLARIFY)
        return self._reply(self.escalator.follow_up(incoming, number, rest), Decision.ESCALATE)

    def press(self, incoming: Incoming, press: Press) -> Reply:
        """A button under an earlier reply: a vote, "Vraag een expert" on its question, or a walk's choice."""
        if press.kind in (ActionKind.FEEDBACK_UP, ActionKind.FEEDBACK_DOWN) and press.reply_id:
            up = press.kind is ActionKind.FEEDBACK_UP
            return self._reply(self._feedback(incoming, press.reply_id, up=up), Decision.CLARIFY)
        if press.kind is ActionKind.ASK_EXPERT:
            return self.ask_expert(dataclasses.replace(incoming, text="/expert"), reply_id=press.reply_id)
        if press.kind is ActionKind.CHOICE and press.command:
            return self.handle(dataclasses.replace(incoming, text=press.command))
        return self._reply(BUTTON_GONE, Decision.CLARIFY)

    def _feedback(self, incoming: Incoming, reply_id: str, *, up: bool) -> str:
        """Store 👍 / 👎 for a reply; the Dutch acknowledgement."""
        if not self.audit.feedback(reply_id=reply_id, channel=incoming.channel, user_id=incoming.user_id,
                                   value=1 if up else -1):
            return FEEDBACK_LOST
        return FEEDBACK_THANKS if up else FEEDBACK_THANKS_DOWN

    def ask_expert(self, incoming: Incoming, *, question: str | None = None, reply_id: str | None = None) -> Reply:
        """Escalate on request: the given question, the question of ``reply_id``, or the last question asked."""
        history = self.memory.history(incoming.conversation_id)
        if question is None and reply_id is not None:
            logged = self.audit.exchange(reply_id)
            if logged and logged["user"] != self.audit.pseudonym(incoming.channel, incoming.user_id):
                # In a group everyone sees the button; a ticket is opened in the name of who asked, or not at all.
                return self._reply(COLLEAGUES_BUTTON, Decision.CLARIFY)
            question = logged["full_question"] if logged else None
        if question is None and history:
            # A follow-up ("en voor werken?") reaches the expert as the whole question it stands for.
            question = history[-1].full_question
        if not question:
            return self._reply(WHICH_QUESTION, Decision.CLARIFY)
        already = next((t.ticket for t in reversed(history) if t.ticket and t.full_question == question), None)
        if already is not None:
            return self._reply(already_asked(already), Decision.ESCALATE)
        hits = self._search(question)
        return self._escalate(incoming, question, question, hits, reason=REASON_ASKED,
                              intro=ASKING_EXPERTS)

    # -- the question path --------------------------------------------------------------------------------

    def _question(self, incoming: Incoming, question: str) -> Reply:
        history = self.memory.history(incoming.conversation_id)
        # Precise rules first: an explicit request for a person, or a pattern that only an own case matches.
        if self.rules.asks_for_expert(question):
            return self._person(incoming, question, history)
        legal = self.rules.legal_match(question)
        if legal is not None:
            return self._legal(incoming, question, legal)
        if self.rules.is_vague(question) and not history:
            return self._clarify(incoming, question)
        if _PROCEDURE_QUESTION.search(" ".join(question.split())):
            return self._procedure(incoming, "")
        if resources.wants_template(question):
            return self._templates(incoming, question)
        if resources.wants_cases(question):
            return self._cases(incoming, question)
        prediction = self.router.intent(question)
        intent = prediction.intent
        if intent is Intent.PERSON:
            return self._person(incoming, question, history)
        if intent is Intent.OWN_CASE:
            return self._legal(incoming, question, RuleMatch("own_case", OWN_CASE_LABEL))
        follow_up = bool(history) and is_follow_up(question)
        if intent is Intent.VAGUE and not follow_up:
            return self._clarify(incoming, question)
        query, full_question = contextual_query(question, history)
        hits = self._search(query)
        evidence = self.router.evidence(query, hits, self.retriever.term_stats(),
                                        intent=None if follow_up else prediction)
        if evidence.verdict is not Verdict.ANSWERS:
            text, decision = _NO_ANSWER[evidence.verdict]
            return self._reply(f"{text} {NEXT_STEP_EXPERT_OFFER}", decision, incoming=incoming, question=question,
                               query=query, confidence=evidence.best, actions=(ActionKind.ASK_EXPERT,),
                               full_question=full_question)
        return self._answer(incoming, question, query, hits, evidence, full_question)

    def _answer(self, incoming: Incoming, question: str, query: str, hits: list[SearchHit], evidence: Evidence,
                full_question: str) -> Reply:
        composed = self.composer.compose(question, hits) if self.composer else None
        body, cited = composed or self.extractive.compose(question, hits, probabilities=evidence.probabilities,
                                                          context=query if query != question else "")
        # A template made for the procedure the question is about is offered with the answer, as a file.
        template = self._fitting_template(question)
        offer = resources.template_offer(template.chunk) if template is not None else None
        if offer is not None:
            cited = [*cited, template]
            body += template_with_answer(len(cited), template.chunk.title, template.chunk.get("version"))
        citations = _citations(cited)
        text = f"{body}{self._validity(cited)}\n\n{NEXT_STEP_ANSWER}"
        files = (offer,) if offer is not None else ()
        return self._reply(text, Decision.ANSWER, incoming=incoming, question=question, query=query,
                           citations=citations, confidence=evidence.best, full_question=full_question,
                           actions=(ActionKind.FEEDBACK_UP, ActionKind.FEEDBACK_DOWN, ActionKind.ASK_EXPERT),
                           files=files)

    def _fitting_template(self, question: str) -> SearchHit | None:
        """The best matching template made for a procedure the question names."""
        procedures = resources.procedures_named(question)
        if not procedures:
            return None
        for hit in self.retriever.search(question, k=3, kinds=("template",)):
            if procedures & set((hit.chunk.get("procedures") or "").split(",")):
                return hit
        return None

    def _validity(self, cited: Sequence[SearchHit]) -> str:
        """Dutch warnings for cited sources outside their validity window, numbered like the citations."""
        today = dt.date.fromtimestamp(self.clock())
        notes = [f"[{n}] {note}" for n, hit in enumerate(cited, 1)
                 if (note := resources.validity_note(hit.chunk, today))]
        return validity_warning(notes)

    def _procedure(self, incoming: Incoming, arg: str) -> Reply:
        """One step of the guided procedure choice: start, answer, back, stop; the end is a cited recommendation."""
        conversation = incoming.conversation_id
        what, question_id, number = procedure.parse_command(arg)
        answers = self.walks.get(conversation)
        if what == "stop":
            self.walks.clear(conversation)
            return self._reply(PROCEDURE_STOPPED, Decision.CLARIFY)
        note = ""
        try:
            node = self.tree.walk(answers) if answers is not None else None
        except ValueError:  # the tree changed since this walk was stored
            answers, node = None, None
        if what == "start":
            answers = []
        elif answers is None:
            answers = []
            note = PROCEDURE_RESTARTED
        elif what == "back":
            answers = answers[:-1]
        elif what == "answer":
            if not isinstance(node, procedure.Question) or node.id != question_id:
                note = PROCEDURE_OLD_BUTTON
            elif number is None or not 1 <= number <= len(node.choices):
                note = pick_a_number(len(node.choices))
            else:
                answers = [*answers, (node.id, number - 1)]
        else:
            note = PROCEDURE_UNKNOWN_ANSWER
        step = procedure.step_for(self.tree, answers)
        if step.result is None:
            self.walks.put(conversation, answers)
            return self._reply(note + step.text, Decision.CLARIFY, choices=step.choices)
        self.walks.clear(conversation)
        return self._recommend(incoming, step)

    def _recommend(self, incoming: Incoming, step: procedure.Step) -> Reply:
        result = step.result
        assert result is not None
        found = [_article_citation(a) for a in result.articles]
        cited_articles = [dataclasses.replace(c, n=n) for n, c in enumerate((c for c in found if c), 1)]
        chunks = getattr(self.retriever, "chunks", ())
        notes = [c for stem in result.guidance
                 if (c := next((ch for ch in chunks if ch.doc_id == stem and ch.kind == "guidance"), None))]
        template = next((ch for ch in chunks if ch.kind == "template" and result.template
                         and ch.get("file_name") == result.template), None)
        offer = resources.template_offer(template) if template is not None else None
        citations = [*cited_articles]
        for chunk in notes + ([template] if template is not None else []):
            citations.append(Citation(n=len(citations) + 1, title=chunk.title, label=None, url=chunk.url,
                                      kind=chunk.kind, effective_date=chunk.effective_date, chunk_id=chunk.id))
        recap = "\n".join(f"- {q} {a}" for q, a in step.recap)
        if not cited_articles:
            refs = ""
        elif {a.source for a in result.articles} == {"wet-2016-06-17"}:
            refs = ", ".join(f"[{c.n}] {c.label}" for c in cited_articles) + LAW_OF_2016
        else:
            refs = ", ".join(f"[{c.n}] {c.label} ({c.title})" for c in cited_articles)
        more = ", ".join(f"[{c.n}] {c.title}" for c in citations[len(cited_articles):len(cited_articles) + len(notes)])
        handed_out = f"[{len(citations)}] {template.title}" if offer is not None else ""
        text = recommendation(result.procedure, result.why, recap, refs=refs, more=more, template=handed_out)
        question = procedure.summary(result, step.recap)
        return self._reply(text, Decision.ANSWER, incoming=incoming, question=question,
                           citations=tuple(citations), files=(offer,) if offer else (),
                           actions=(ActionKind.ASK_EXPERT,), reason="procedure")

    def _templates(self, incoming: Incoming, question: str) -> Reply:
        """A request for a template: the best matching one as a file, with its description and version."""
        words = resources.topic_words(question)
        procedures = resources.procedures_named(question)
        hits = [h for h in self.retriever.search(question, k=10, kinds=("template",))
                if resources.relevant(h, words)
                and (not procedures or procedures & set((h.chunk.get("procedures") or "").split(",")))]
        # One template per file, the best one only unless the officer asks for several ("sjablonen").
        many = re.search(r"\b(?:sjablonen|templates|modellen|voorbeelden)\b", question, re.IGNORECASE)
        best: dict[tuple[str, str], SearchHit] = {}
        for hit in hits:  # best first: a template's first (best) section stands for it
            best.setdefault((hit.chunk.source_id, hit.chunk.doc_id), hit)
        hits = list(best.values())[:3 if many else 1]
        offers = [(h, offer) for h in hits if (offer := resources.template_offer(h.chunk))]
        if not offers:
            return self._reply(NO_TEMPLATE, Decision.NOT_FOUND, incoming=incoming, question=question,
                               actions=(ActionKind.ASK_EXPERT,))
        cited = [h for h, _ in offers]
        lines = [template_line(n, h.chunk.title, h.chunk.get("version"), h.chunk.get("description"))
                 for n, h in enumerate(cited, 1)]
        text = templates_found(lines, self._validity(cited))
        return self._reply(text, Decision.ANSWER, incoming=incoming, question=question, citations=_citations(cited),
                           files=tuple(offer for _, offer in offers),
                           actions=(ActionKind.FEEDBACK_UP, ActionKind.FEEDBACK_DOWN, ActionKind.ASK_EXPERT))

    def _cases(self, incoming: Incoming, question: str) -> Reply:
        """A request for practice examples: the matching cases, filtered on the procedure and kind of government."""
        procedures = resources.procedures_named(question)
        besturen = resources.bestuur_types_named(question)
        words = resources.topic_words(question) - {w for p in procedures for w in analyse(p.replace("-", " "))}
        candidates = self.retriever.search(question, k=30, kinds=("case",))
        found = [h for h in candidates if resources.matches_case_filters(h.chunk, procedures, besturen)]
        elsewhere = [h for h in candidates if besturen and resources.matches_case_filters(h.chunk, procedures, set())
                     and h not in found] if procedures else []
        # Topic words narrow the list when some case shares them ("verlichting"); otherwise every match counts.
        on_topic = [h for h in found if resources.relevant(h, words)]
        cited = (on_topic or (found if not words or procedures else []))[:MAX_CASES]
        if not cited:
            return self._reply(NO_CASE, Decision.NOT_FOUND, incoming=incoming, question=question,
                               actions=(ActionKind.ASK_EXPERT,))
        lines = []
        for n, hit in enumerate(cited, 1):
            chunk = hit.chunk
            used = (chunk.get("procedure") or "").replace("-", " ")
            lessons = _first_sentence(chunk.text.split("Lessen:", 1)[-1]) if "Lessen:" in chunk.text else ""
            lines.append(case_line(n, chunk.title, used, chunk.get("subject"), lessons))
        text = cases_found(lines, elsewhere=len(elsewhere), validity=self._validity(cited))
        return self._reply(text, Decision.ANSWER, incoming=incoming, question=question, citations=_citations(cited),
                           actions=(ActionKind.FEEDBACK_UP, ActionKind.FEEDBACK_DOWN, ActionKind.ASK_EXPERT))

    def _clarify(self, incoming: Incoming, question: str) -> Reply:
        return self._reply(CLARIFY, Decision.CLARIFY, incoming=incoming, question=question)

    def _person(self, incoming: Incoming, question: str, history: list[Turn]) -> Reply:
        # "Kan ik een jurist spreken?" right after a question is about that question; "Mag een jurist onze
        # PCP-overeenkomst nakijken?" brings its own, whatever came before.
        about_previous = bool(history) and not set(topic_tokens(question)) - _person_words()
        return self.ask_expert(incoming, question=None if about_previous else question)

    def _legal(self, incoming: Incoming, question: str, match: RuleMatch) -> Reply:
        hits = self._search(question)
        return self._escalate(incoming, question, question, hits, reason=match.label, intro=legal_intro(match.label))

    def _escalate(self, incoming: Incoming, question: str, query: str, hits: list[SearchHit], *, reason: str,
                  intro: str) -> Reply:
        if self._over_ticket_limit(incoming):
            # Logged with the question like any reply, so the maintainer sees what was held back.
            return self._reply(TICKETS_LIMITED.format(limit=self.ticket_limit.limit), Decision.CLARIFY,
                               incoming=incoming, question=question, query=query)
        history = [t.full_question for t in self.memory.history(incoming.conversation_id)]
        escalation = self.escalator.escalate(incoming, question=question, hits=hits[:3], reason=reason,
                                             history=history)
        # Sources are offered only when one of them answers the question as asked, never a near miss.
        answering = self.router.evidence(question, hits, self.retriever.term_stats()) if hits else None
        cited = hits[:2] if answering is not None and answering.verdict is Verdict.ANSWERS else []
        text = intro + (SOURCES_MEANWHILE if cited else "") + "\n\n" + escalation.next_step
        return self._reply(text, Decision.ESCALATE, incoming=incoming, question=question, query=query,
                           citations=_citations(cited), ticket=escalation.ticket, reason=reason)

    # -- helpers ------------------------------------------------------------------------------------------

    def _over_ticket_limit(self, incoming: Incoming) -> bool:
        """Whether this officer has already sent as many tickets and follow-ups as the window allows (counting
        this one when it is allowed)."""
        return self.ticket_limit is not None and not self.ticket_limit.allow((incoming.channel, incoming.user_id))[0]

    def _search(self, query: str) -> list[SearchHit]:
        refresh = getattr(self.retriever, "refresh_if_switched", None)
        if refresh is not None:
            refresh()
        return self.retriever.search(query, k=SEARCH_K, kinds=ANSWER_KINDS)

    def _reply(self, text: str, decision: Decision, *, incoming: Incoming | None = None, question: str | None = None,
               query: str | None = None, citations: tuple[Citation, ...] = (), ticket: int | None = None,
               confidence: float | None = None, actions: tuple[ActionKind, ...] = (),
               full_question: str | None = None, reason: str | None = None,
               files: tuple[FileOffer, ...] = (), choices: tuple[tuple[str, str], ...] = ()) -> Reply:
        reply_id = uuid.uuid4().hex[:12]
        buttons = tuple(Action(kind, reply_id) for kind in actions) + tuple(
            Action(ActionKind.CHOICE, reply_id, text=label, command=command) for label, command in choices)
        reply = Reply(text=text, decision=decision, reply_id=reply_id, citations=citations,
                      actions=buttons, ticket=ticket, files=files)
        if incoming is not None and question is not None:
            self.audit.record(channel=incoming.channel, conversation_id=incoming.conversation_id,
                              user_id=incoming.user_id, question=question, query=query or question, reply=reply,
                              confidence=confidence, reason=reason, full_question=full_question)
            self.memory.add(incoming.conversation_id, Turn(
                question=question, query=query or question, reply_id=reply_id, decision=decision,
                chunk_ids=tuple(c.chunk_id for c in citations), at=self.clock(), ticket=ticket,
                full_question=full_question or question))
        return reply


@lru_cache(maxsize=1)
def _manifest_sources() -> dict[str, tuple[str, str | None]]:
    from corpus.manifest import load_manifest

    return {s.id: (s.title, s.link) for s in load_manifest().sources}


def _article_citation(article: procedure.ArticleRef) -> Citation | None:
    """An article of an official source of the manifest, linked to its anchor on the official page."""
    source = _manifest_sources().get(article.source)
    if source is None:
        logger.warning("procedure tree cites %s, which is not in the manifest", article.source)
        return None
    title, link = source
    url = f"{link}#{article.anchor}" if link and article.anchor else link
    return Citation(n=0, title=title, label=article.label, url=url, kind="legislation", effective_date=None,
                    chunk_id=f"{article.source}:{article.anchor or article.label}")


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    # Not after an abbreviation ("art. 32", "bv.", "nr. 3") or a lone letter or digit ("1°", "a.").
    match = re.match(r"(.+?(?<!\bart)(?<!\bbv)(?<!\bnr)(?<!\bo\.a)(?<!\b\w)[.!?])(?:\s+(?=[A-Z])|$)", text)
    return match.group(1) if match else text


def _clean(text: str) -> str:
    # Control characters can hide text in a terminal or a log; nothing legitimate needs them in a question.
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", text or "")
    return text.strip()[:MAX_QUESTION_CHARS]


def _citations(hits: list[SearchHit]) -> tuple[Citation, ...]:
    out = []
    for n, hit in enumerate(hits, 1):
        chunk = hit.chunk
        label = hit.passage.label if hit.passage.label and hit.passage is not chunk else chunk.label
        out.append(Citation(n=n, title=chunk.title, label=label, url=hit.passage.url or chunk.url, kind=chunk.kind,
                            effective_date=chunk.effective_date, chunk_id=hit.passage.id))
    return tuple(out)


@lru_cache(maxsize=1)
def _person_words() -> frozenset[str]:
    """Words of a request for a person that say nothing about what the question is (``bot/data/person_words.txt``)."""
    text = importlib.resources.files("bot").joinpath("data/person_words.txt").read_text(encoding="utf-8")
    return frozenset(t for line in text.splitlines() if not line.startswith("#") for t in analyse(line))
