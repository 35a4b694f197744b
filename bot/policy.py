"""Deciding what to do with a question: escalate, clarify, answer, or say it is out of scope."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from retrieval.lexical import analyse
from retrieval.types import SearchHit

# Question words carry no topic; they must not count towards how well a passage covers the question.
_QUESTION_WORDS = frozenset(analyse("wat wie welke welk waar wanneer hoe hoeveel waarom mag moet kan kunnen "
                                    "zijn is wordt worden gelden geldt moeten mogen nodig iemand iets vraag vragen "
                                    "vraagt aanvragen nieuw nieuwe onze gemeente stad"))


@dataclass(frozen=True)
class Rule:
    """A legal-advice rule: when a pattern matches, the question goes to an expert."""

    id: str
    label: str
    patterns: tuple[re.Pattern[str], ...]


@dataclass(frozen=True)
class RuleMatch:
    """Why a question is escalated before retrieval."""

    rule_id: str
    label: str


@dataclass(frozen=True)
class Thresholds:
    """Retrieval confidence limits for one embedding model (calibration: docs/EVALUATION.md)."""

    out_of_scope_dense: float
    """Below this cosine similarity of the best source, nothing in the corpus is about the question."""
    answer_dense: float
    """Below this similarity an answer also needs ``min_coverage``, else the question is escalated."""
    min_coverage: float = 0.5
    """Share of the question's topic words the best source must contain when similarity is modest."""
    out_of_scope_coverage: float = 0.15
    """When similarity is modest and the best source shares (almost) no topic word, nothing is relevant."""

    def decide(self, dense: float, cov: float) -> str:
        """"out_of_scope", "escalate" (not confident enough) or "answer"."""
        if dense < self.out_of_scope_dense:
            return "out_of_scope"
        if dense < self.answer_dense:
            if cov < self.out_of_scope_coverage:
                return "out_of_scope"
            if cov < self.min_coverage:
                return "escalate"
        return "answer"


@lru_cache(maxsize=1)
def _threshold_table() -> dict[str, dict[str, float]]:
    text = resources.files("bot").joinpath("data/thresholds.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)["models"]


def thresholds_for(model: str) -> Thresholds:
    """The calibrated thresholds of an embedding model, or the defaults for an uncalibrated one."""
    table = _threshold_table()
    return Thresholds(**table.get(model, table["default"]))


@dataclass(frozen=True)
class Rules:
    """The escalation and vagueness rules of ``bot/data/escalation_rules.yaml``."""

    expert_request: tuple[re.Pattern[str], ...]
    legal_advice: tuple[Rule, ...]
    vague_patterns: tuple[re.Pattern[str], ...]
    filler_words: frozenset[str]
    min_content_words: int

    def legal_match(self, question: str) -> RuleMatch | None:
        """The first legal-advice rule the question matches."""
        for rule in self.legal_advice:
            if any(p.search(question) for p in rule.patterns):
                return RuleMatch(rule.id, rule.label)
        return None

    def asks_for_expert(self, question: str) -> bool:
        """True when the officer explicitly asks for a human expert."""
        return any(p.search(question) for p in self.expert_request)

    def is_vague(self, question: str) -> bool:
        """True when there is too little in the question to retrieve on."""
        if any(p.search(question) for p in self.vague_patterns):
            return True
        words = [w for w in re.findall(r"\w+", question.lower()) if w not in self.filler_words]
        return len(words) < self.min_content_words


@lru_cache(maxsize=1)
def load_rules() -> Rules:
    """Read the bundled rules file once."""
    text = resources.files("bot").joinpath("data/escalation_rules.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)

    def compile_all(patterns: list[str]) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(p, re.IGNORECASE) for p in patterns)

    vague = data.get("vague", {})
    return Rules(
        expert_request=compile_all([item["pattern"] for item in data.get("expert_request", [])]),
        legal_advice=tuple(Rule(r["id"], r["label"], compile_all(r["patterns"])) for r in data.get("legal_advice", [])),
        vague_patterns=compile_all(vague.get("patterns", [])),
        filler_words=frozenset(w.lower() for w in vague.get("filler_words", [])),
        min_content_words=int(vague.get("min_content_words", 2)),
    )


def topic_tokens(question: str) -> set[str]:
    """The question's analysed words that say what it is about."""
    return {t for t in analyse(question) if t not in _QUESTION_WORDS}


def coverage(question: str, hit: SearchHit) -> float:
    """Share of the question's topic words that occur in the hit's unit (title, headings, text)."""
    wanted = topic_tokens(question)
    if not wanted:
        return 0.0
    chunk = hit.passage
    have = set(analyse(" ".join([chunk.title, *chunk.heading_path, chunk.label or "", chunk.text])))
    return len(wanted & have) / len(wanted)


def signals(question: str, hits: list[SearchHit]) -> tuple[float, float]:
    """(dense similarity, coverage) of the best hit; (0, 0) without hits."""
    if not hits:
        return 0.0, 0.0
    dense = hits[0].dense_score if hits[0].dense_score is not None else 0.0
    return dense, coverage(question, hits[0])
