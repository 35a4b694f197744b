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

_FOLLOW_UP = re.compile(r"^\s*(en|maar|ook|idem|wat met|wat als|hoe zit het met|geldt dat ook|is dat ook)\b",
                        re.IGNORECASE)
FOLLOW_UP_MAX_WORDS = 7


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


class ConversationMemory:
    """The last few turns per conversation, in memory, forgotten after ``ttl_seconds``."""

    def __init__(self, *, max_turns: int = 3, ttl_seconds: float = 3600, max_conversations: int = 10_000) -> None:
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


@lru_cache(maxsize=1)
def _topics() -> tuple[tuple[str, ...], ...]:
    text = resources.files("bot").joinpath("data/topics.yaml").read_text(encoding="utf-8")
    return tuple(tuple(t.lower() for t in group) for group in yaml.safe_load(text)["topics"])


def _topic_phrases(text: str) -> list[tuple[int, str]]:
    """(topic index, phrase) for every topic named in the text, longest phrases first."""
    lower = text.lower()
    found = []
    for index, group in enumerate(_topics()):
        for phrase in sorted(group, key=len, reverse=True):
            if re.search(rf"\b{re.escape(phrase)}\b", lower):
                found.append((index, phrase))
                break
    return found


def is_follow_up(question: str) -> bool:
    """True for short, elliptic questions that lean on the previous one."""
    words = re.findall(r"\w+", question)
    return bool(_FOLLOW_UP.match(question)) and len(words) <= FOLLOW_UP_MAX_WORDS


def contextual_query(question: str, history: list[Turn]) -> str:
    """The query to retrieve on: the question itself, or for a follow-up the previous question adapted to it."""
    answered = [t for t in history if t.decision in (Decision.ANSWER, Decision.ESCALATE)]
    if not answered or not is_follow_up(question):
        return question
    previous = answered[-1].query
    new_topics = _topic_phrases(question)
    if not new_topics:
        return f"{question} {previous}"
    # The follow-up names another topic: ask the previous question about that topic instead.
    adapted = previous
    new_ids = {index for index, _ in new_topics}
    for index, phrase in _topic_phrases(previous):
        if index not in new_ids:
            adapted = re.sub(rf"\b{re.escape(phrase)}\b", " ".join(p for _, p in new_topics), adapted,
                             flags=re.IGNORECASE)
    if adapted == previous:
        adapted = f"{previous} {' '.join(p for _, p in new_topics)}"
    return adapted
