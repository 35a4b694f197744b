"""Short per-conversation memory, so a follow-up such as "en bij een innovatiepartnerschap?" is understood."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from bot.messages import Decision

_FOLLOW_UP = re.compile(r"^\s*(en|maar|ook|idem|wat met|wat als|hoe zit het met|geldt dat ook|is dat ook|"
                        r"et|mais|aussi|pareil|qu['’]en est-il( de| des| du)?|est-ce aussi)\b", re.IGNORECASE)
FOLLOW_UP_MAX_WORDS = 7
TTL_SECONDS = 3600.0
"""A conversation's turns are forgotten an hour after they were asked."""


@dataclass(frozen=True)
class Turn:
    """One question and what the helpdesk did with it."""

    question: str
    query: str
    """The question as retrieved on (follow-ups are expanded with the earlier turn)."""
    reply_id: str
    decision: Decision
    chunk_ids: tuple[str, ...]
    at: float
    ticket: int | None = None
    full_question: str = ""
    """The question as a whole sentence: a follow-up spelled out. What an expert reads; defaults to ``question``."""

    def __post_init__(self) -> None:
        if not self.full_question:
            object.__setattr__(self, "full_question", self.question)


class ConversationMemory:
    """The last few turns per conversation, in memory, forgotten after ``ttl_seconds``."""

    def __init__(self, *, max_turns: int = 3, ttl_seconds: float = TTL_SECONDS,
                 max_conversations: int = 10_000) -> None:
        self._turns: OrderedDict[str, list[Turn]] = OrderedDict()
        self._max_turns = max_turns
        self._ttl = ttl_seconds
        self._max_conversations = max_conversations
        self._lock = threading.Lock()

    def history(self, conversation_id: str) -> list[Turn]:
        """Recent turns, oldest first (expired ones dropped)."""
        with self._lock:
            turns = self._turns.get(conversation_id, [])
            fresh = [t for t in turns if time.time() - t.at <= self._ttl]
            if fresh != turns:
                self._turns[conversation_id] = fresh
            return list(fresh)

    def add(self, conversation_id: str, turn: Turn) -> None:
        """Remember a turn."""
        with self._lock:
            turns = self._turns.pop(conversation_id, [])
            self._turns[conversation_id] = (turns + [turn])[-self._max_turns :]
            while len(self._turns) > self._max_conversations:
                self._turns.popitem(last=False)

    def reset(self, conversation_id: str) -> None:
        """Forget a conversation (the /reset command)."""
        with self._lock:
            self._turns.pop(conversation_id, None)


@dataclass(frozen=True)
class Topic:
    """A procurement topic a follow-up can switch to; topics of one kind replace each other."""

    kind: str
    phrases: tuple[str, ...]


@lru_cache(maxsize=1)
def topics() -> tuple[Topic, ...]:
    """The follow-up topics of ``bot/data/topics.yaml``."""
    text = resources.files("bot").joinpath("data/topics.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)["topics"]
    return tuple(Topic(kind, tuple(t.lower() for t in group)) for kind, groups in data.items() for group in groups)


def _topic_phrases(text: str) -> list[tuple[Topic, str]]:
    """(topic, phrase) for every topic named in the text, each topic's longest phrase."""
    lower = text.lower()
    found = []
    for topic in topics():
        for phrase in sorted(topic.phrases, key=len, reverse=True):
            if re.search(rf"\b{re.escape(phrase)}\b", lower):
                found.append((topic, phrase))
                break
    return found


def is_follow_up(question: str) -> bool:
    """True for short, elliptic questions that lean on the previous one."""
    words = re.findall(r"\w+", question)
    return bool(_FOLLOW_UP.match(question)) and len(words) <= FOLLOW_UP_MAX_WORDS


_VERVOLG = re.compile(r"^(.*?)(\s*\(Vervolgvraag: .*\))?$", re.DOTALL)
_PREPOSITION = re.compile(r"^(voor|bij|in|met|na|onder|boven|zonder|tijdens|binnen|als|indien|pour|dans|avec|sans|"
                          r"en|au|aux|pendant|si)\b", re.IGNORECASE)


def _remainder(question: str) -> str:
    """The follow-up without its leading "en" / "wat met" and its question mark: "en voor werken?" -> "voor werken"."""
    rest = _FOLLOW_UP.sub("", question, count=1).strip(" ?!.,")
    return rest if _PREPOSITION.match(rest) else f"voor {rest}"


def contextual_query(question: str, history: list[Turn]) -> tuple[str, str]:
    """(query to retrieve on, the question as a whole sentence) for a message in its conversation.

    A follow-up that names another topic of the same kind asks the previous question about it ("en bij een
    innovatiepartnerschap?"); one that names a topic of another kind narrows it ("Tot welk bedrag volstaat een
    aanvaarde factuur voor werken?"); one that names no topic is read together with the previous question.
    """
    answered = [t for t in history if t.decision in (Decision.ANSWER, Decision.ESCALATE, Decision.NOT_FOUND)]
    if not answered or not is_follow_up(question):
        return question, question
    previous = answered[-1].full_question
    # An earlier follow-up without a topic rides along as a note; the question itself is what gets adapted.
    base, note = _VERVOLG.match(previous).groups(default="")
    new_topics = _topic_phrases(question)
    old_topics = _topic_phrases(base)
    ambiguous = any(sum(t.kind == topic.kind for t, _ in old_topics) > 1 for topic, _ in new_topics)
    if not new_topics or ambiguous:
        # Nothing to substitute, or several candidates ("werken en leveringen"): read it with the question.
        return f"{question} {previous}", f"{previous.rstrip()} (Vervolgvraag: {question.strip()})"
    adapted = base
    narrowed = False
    for topic, phrase in new_topics:
        same_kind = [(t, p) for t, p in old_topics if t.kind == topic.kind and t != topic]
        for _, old_phrase in same_kind:
            adapted = re.sub(rf"\b{re.escape(old_phrase)}\b", phrase, adapted, flags=re.IGNORECASE)
        if not same_kind and all(t != topic for t, _ in old_topics):
            narrowed = True
    if narrowed or adapted == base:
        body = adapted.rstrip().rstrip("?").rstrip()
        adapted = f"{body} {_remainder(question)}?"
    return adapted + note, adapted + note
