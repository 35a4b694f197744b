"""Routing a question: what the officer wants (intent) and whether a source answers it (evidence), kept apart.

The two are asked separately because they fail separately: "Wat is een kort geding?" is a general question the
sample corpus cannot answer (information, no evidence: "niet in mijn bronnen"), while "Houdt onze keuze voor een
onderhandelingsprocedure stand?" is the officer's own case whatever the corpus holds (escalate).
A routing model file per embedding model holds both learned parts (`vraagbaak routing train`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from bot.intent import IntentModel, IntentPrediction, LearnedIntent
from retrieval.evidence import EvidenceJudge, TermStats, features
from retrieval.lexical import analyse
from retrieval.terminology import groups
from retrieval.types import SearchHit

DEFAULT_MODEL = "default"
"""The model-independent file, for embedders without their own (the tests' hashing embedder, a new model)."""


def model_file_name(embedder: str) -> str:
    """The routing file of an embedding model: its name made safe for a file system."""
    return re.sub(r"[^a-z0-9]+", "-", embedder.lower()).strip("-") + ".json"


@dataclass(frozen=True)
class RoutingModel:
    """The learned parts of routing for one embedding model."""

    embedder: str
    intent: IntentModel
    evidence: EvidenceJudge
    trained: dict[str, Any]
    """Where it came from: data files, counts, training scores (for docs and `routing show`)."""

    @classmethod
    def from_dict(cls, data: dict) -> "RoutingModel":
        """Parse a routing model file."""
        return cls(embedder=data["embedder"], intent=IntentModel.from_dict(data["intent"]),
                   evidence=EvidenceJudge.from_dict(data["evidence"]), trained=data.get("trained", {}))


@lru_cache(maxsize=8)
def load_routing(embedder: str) -> RoutingModel:
    """The routing model trained for ``embedder``, or the model-independent default."""
    folder = resources.files("bot").joinpath("data/routing")
    path = folder.joinpath(model_file_name(embedder))
    if not path.is_file():
        path = folder.joinpath(model_file_name(DEFAULT_MODEL))
    return RoutingModel.from_dict(json.loads(path.read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def procurement_terms() -> tuple[tuple[str, ...], ...]:
    """The analysed words that mark a procurement question (``bot/data/procurement_terms.yaml`` and friends)."""
    import yaml

    data = yaml.safe_load(resources.files("bot").joinpath("data/procurement_terms.yaml").read_text(encoding="utf-8"))
    topics = yaml.safe_load(resources.files("bot").joinpath("data/topics.yaml").read_text(encoding="utf-8"))["topics"]
    phrases = [*data["terms"], *(p for kind in topics.values() for group in kind for p in group)]
    # "gemeente" and "stad" share a terminology group with "lokaal bestuur" but say nothing about procurement.
    generic = {tuple(analyse(w)) for w in ("gemeente", "stad", "lokaal bestuur", "btw")}
    equivalents = {term for group in groups() if not generic & set(group) for term in group}
    terms = {tuple(analyse(p)) for p in phrases} | equivalents
    return tuple(sorted(t for t in terms if t))


def names_procurement(question: str) -> bool:
    """True when the question uses at least one procurement word."""
    tokens = analyse(question)
    present = set(tokens)
    return any(set(term) <= present for term in procurement_terms())


class Verdict(StrEnum):
    """What the evidence says about the retrieved sources."""

    ANSWERS = "answers"
    NO_SOURCE = "no_source"
    """The question is about procurement, but no source answers it."""
    OFF_TOPIC = "off_topic"
    """Neither about procurement nor answered by any source."""


@dataclass(frozen=True)
class Evidence:
    """The verdict and, per hit, the probability that it answers the question."""

    verdict: Verdict
    probabilities: tuple[float, ...]

    @property
    def best(self) -> float:
        """The highest probability among the hits (0 without hits)."""
        return max(self.probabilities, default=0.0)


class Router:
    """Classifies intent and judges evidence with one routing model."""

    def __init__(self, model: RoutingModel, *, embed: Callable[[str], np.ndarray] | None) -> None:
        self.model = model
        self._intent = LearnedIntent(model.intent, embed if model.intent.uses_embedding else None)

    def intent(self, question: str) -> IntentPrediction:
        """What the officer wants."""
        return self._intent.classify(question)

    def evidence(self, question: str, hits: Sequence[SearchHit], stats: TermStats, *,
                 off_topic: bool = False) -> Evidence:
        """Whether one of ``hits`` answers ``question``; ``off_topic`` raises the bar."""
        if not hits:
            unrelated = off_topic or not names_procurement(question)
            return Evidence(Verdict.OFF_TOPIC if unrelated else Verdict.NO_SOURCE, ())
        judge = self.model.evidence
        probabilities = tuple(float(p) for p in judge.probabilities(features(question, hits, stats)))
        bar = judge.strict_threshold if off_topic else judge.threshold
        if max(probabilities) >= bar:
            return Evidence(Verdict.ANSWERS, probabilities)
        # Nothing answers: a gap in the corpus only when the question is about procurement at all.
        unrelated = off_topic or not names_procurement(question)
        return Evidence(Verdict.OFF_TOPIC if unrelated else Verdict.NO_SOURCE, probabilities)
