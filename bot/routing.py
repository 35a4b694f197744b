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

from bot.intent import Intent, IntentModel, IntentPrediction, LearnedIntent
from retrieval.evidence import EvidenceJudge, TermStats, features
from retrieval.lexical import analyse
from retrieval.ranking import Ranker
from retrieval.terminology import groups
from retrieval.types import SearchHit

OFF_TOPIC_LEANING = 0.3
"""P(off-topic) above which a question without procurement words is out of scope (train: procurement questions
without such words stay below 0.23, off-topic ones are above 0.89)."""
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
    """Where it came from: data sets, counts, the training grid (read by people, not by the code)."""
    ranker: Ranker | None = None
    """The retrieval reorderer learned with it (none in the model-independent default)."""

    @classmethod
    def from_dict(cls, data: dict) -> "RoutingModel":
        """Parse a routing model file."""
        return cls(embedder=data["embedder"], intent=IntentModel.from_dict(data["intent"]),
                   evidence=EvidenceJudge.from_dict(data["evidence"]), trained=data.get("trained", {}),
                   ranker=Ranker.from_dict(data["ranking"]) if data.get("ranking") else None)


@lru_cache(maxsize=8)
def load_routing(embedder: str) -> RoutingModel:
    """The routing model trained for ``embedder``, or the model-independent default."""
    folder = resources.files("bot").joinpath("data/routing")
    path = folder.joinpath(model_file_name(embedder))
    if not path.is_file():
        path = folder.joinpath(model_file_name(DEFAULT_MODEL))
    return RoutingModel.from_dict(json.loads(path.read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def procurement_terms() -> tuple[frozenset[tuple[str, ...]], frozenset[tuple[str, ...]]]:
    """(strong, weak) analysed terms that mark a procurement question (``bot/data/procurement_terms.yaml``)."""
    import yaml

    from bot.conversation import topics

    data = yaml.safe_load(resources.files("bot").joinpath("data/procurement_terms.yaml").read_text(encoding="utf-8"))
    unrelated = {tuple(analyse(w)) for w in ("gemeente", "btw")}
    everyday = {tuple(analyse(w)) for w in ("firma", "perceel")}
    equivalents = {term for group in groups() if not (unrelated | everyday) & set(group) for term in group}
    everyday_equivalents = {term for group in groups() if everyday & set(group) for term in group}
    procedures = {tuple(analyse(p)) for t in topics() if t.kind == "procedure" for p in t.phrases}
    contract_types = {tuple(analyse(p)) for t in topics() if t.kind != "procedure" for p in t.phrases}
    strong = {tuple(analyse(p)) for p in data["strong"]} | equivalents | procedures
    weak = {tuple(analyse(p)) for p in data["weak"]} | contract_types | everyday_equivalents
    return frozenset(t for t in strong if t), frozenset(t for t in weak - strong if t)


def names_procurement(question: str) -> bool:
    """True when the question uses one strong procurement word, or two weak ones."""
    present = set(analyse(question))
    strong, weak = procurement_terms()
    if any(set(term) <= present for term in strong):
        return True
    return sum(set(term) <= present for term in weak) >= 2


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
        self._intent = LearnedIntent(model.intent, embed)

    def intent(self, question: str) -> IntentPrediction:
        """What the officer wants."""
        return self._intent.classify(question)

    def evidence(self, question: str, hits: Sequence[SearchHit], stats: TermStats, *,
                 intent: IntentPrediction | None = None) -> Evidence:
        """Whether one of ``hits`` answers ``question``; an off-topic ``intent`` must clear the strict bar."""
        off_topic = intent is not None and intent.intent is Intent.OFF_TOPIC
        probabilities: tuple[float, ...] = ()
        if hits:
            judge = self.model.evidence
            probabilities = tuple(float(p) for p in judge.probabilities(features(question, hits, stats)))
            if max(probabilities) >= (judge.strict_threshold if off_topic else judge.threshold):
                return Evidence(Verdict.ANSWERS, probabilities)
        # Nothing answers: a gap in the corpus only when the question is about procurement at all. The word list
        # misses compounds and typos, so it decides only when the intent model also leans off-topic.
        leans_off_topic = intent is not None and intent.probabilities.get(Intent.OFF_TOPIC, 0.0) >= OFF_TOPIC_LEANING
        unrelated = off_topic or (not names_procurement(question) and (intent is None or leans_off_topic))
        return Evidence(Verdict.OFF_TOPIC if unrelated else Verdict.NO_SOURCE, probabilities)
