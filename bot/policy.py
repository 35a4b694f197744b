"""The precise routing rules: explicit requests for a person, own-case patterns, content-free messages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml


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
