"""Reordering the fused candidates by what an officer would check first, learned from questions with gold.

The fused BM25 + dense score ranks a unit by its best single chunk, so a long article with many chunks (the
definitions, art. 1.1) gets many chances and a rule stated in one precise sentence loses to a neighbour that
shares more common words. The ranker re-scores the first ``depth`` fused units with a linear model over the
evidence features (idf-weighted coverage of the question's terms in the whole unit, per sentence and in its
headings; the asked kind of fact; the fused score and ranks) plus the unit's size and the question's word pairs
found in it. It reorders statute units only (what it learned on): guidance keeps the fused order. It is trained
pairwise (gold unit above a non-gold one of the same question) by `vraagbaak routing train` and stored in the
routing model file of the embedding model; this module only computes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from retrieval.evidence import FEATURES, TermStats, features
from retrieval.lexical import analyse
from retrieval.types import SearchHit

RANKED_KINDS = frozenset({"legislation"})
"""The source kinds the ranker was learned on and reorders."""
RANK_FEATURES = (*FEATURES, "log_chunks", "log_length", "pair_coverage")
"""The evidence features, then: log(1 + chunks of the unit), log(1 + characters of the unit), and the share of the
question's adjacent word pairs that are adjacent in the unit too ("europese drempel", "concurrentiegerichte
dialoog")."""


@lru_cache(maxsize=8192)
def _pairs(text: str) -> frozenset[tuple[str, str]]:
    tokens = analyse(text)
    return frozenset(zip(tokens, tokens[1:]))


def _unit_text(hit: SearchHit) -> str:
    return "\n".join(c.embedding_text() for c in (hit.unit or (hit.chunk,)))


def rank_features(question: str, hits: Sequence[SearchHit], stats: TermStats) -> np.ndarray:
    """One row of ``RANK_FEATURES`` per hit."""
    if not hits:
        return np.zeros((0, len(RANK_FEATURES)))
    evidence = features(question, hits, stats, depth=len(hits))
    tokens = analyse(question)
    wanted = set(zip(tokens, tokens[1:]))
    extra = []
    for hit in hits:
        text = _unit_text(hit)
        pairs = len(wanted & _pairs(text)) / len(wanted) if wanted else 0.0
        extra.append([math.log1p(len(hit.unit) or 1), math.log1p(len(text)), pairs])
    return np.hstack([evidence, np.array(extra, dtype=np.float64)])


@dataclass(frozen=True)
class Ranker:
    """A linear scorer over ``RANK_FEATURES``; the first ``depth`` fused hits are sorted by it."""

    columns: tuple[str, ...]
    coef: tuple[float, ...]
    scale: tuple[float, ...]
    depth: int

    @classmethod
    def from_dict(cls, data: Mapping) -> "Ranker":
        """Read the ``ranking`` part of a routing model file."""
        unknown = set(data["columns"]) - set(RANK_FEATURES)
        if unknown:
            raise ValueError(f"unknown ranking feature(s): {sorted(unknown)}")
        if not len(data["columns"]) == len(data["coef"]) == len(data["scale"]):
            raise ValueError("ranking: columns, coef and scale must have the same length")
        depth = int(data["depth"])
        if depth < 2:
            raise ValueError("ranking: depth must be at least 2")
        return cls(columns=tuple(data["columns"]), coef=tuple(float(v) for v in data["coef"]),
                   scale=tuple(float(v) for v in data["scale"]), depth=depth)

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """The ranking score per row of ``rank_features``."""
        index = [RANK_FEATURES.index(c) for c in self.columns]
        return (rows[:, index] / np.array(self.scale)) @ np.array(self.coef)

    def order(self, rows: np.ndarray, among: Sequence[int] | None = None) -> list[int]:
        """Row indices (all, or ``among``) best first; a tie keeps the fused order."""
        scores = self.scores(rows)
        return sorted(range(len(rows)) if among is None else among, key=lambda i: (-scores[i], i))

    def rerank(self, question: str, hits: Sequence[SearchHit], stats: TermStats) -> list[SearchHit]:
        """The statute units among the first ``depth`` hits in the ranker's order, in the places statute units
        held (ties keep the fused order); guidance, FAQ and every hit after ``depth`` keep their place.

        The ranker is learned on statute questions only; each hit keeps its fused ``score``.
        """
        out = list(hits)
        head = out[: self.depth]
        slots = [i for i, hit in enumerate(head) if hit.chunk.kind in RANKED_KINDS]
        if len(slots) < 2:
            return out
        # Features over the whole head, as in training (ranks and relative scores count every fused hit).
        order = self.order(rank_features(question, head, stats), among=slots)
        for slot, i in zip(slots, order):
            out[slot] = head[i]
        return out
