"""Hybrid retrieval: BM25 and dense vectors fused, one hit per citable unit, twins folded."""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.embedders import Embedder
from retrieval.errors import ModelMismatchError
from retrieval.evidence import TermStats
from retrieval.lexical import LexicalIndex, analyse
from retrieval.ranking import Ranker
from retrieval.store import GenerationStore
from retrieval.terminology import expand, special_regimes
from retrieval.types import QUOTED_KINDS, Chunk, SearchHit
from retrieval.vector_index import VectorIndex

logger = logging.getLogger(__name__)

MODES = ("hybrid", "bm25", "dense")


@dataclass(frozen=True)
class FusionParams:
    """How the two rankings are combined (chosen on LegalQA-NL dev, see docs/EVALUATION.md)."""

    candidates: int = 100
    """How deep each ranker is read before fusing."""
    lexical_weight: float = 0.4
    twin_threshold: float = 0.9
    """Word overlap (Jaccard, numbers ignored) above which two units are the same rule stated twice."""
    expand_terms: bool = True
    special_regimes: bool = True
    """Rank units of special-case parts (special sectors, concessions) lower unless the query names them."""
    rerank: bool = True
    """Reorder the first fused units with the learned ranker, when the retriever has one."""


KIND_FILTER_DEPTH = 300
"""Candidates per ranking when only some source kinds are wanted."""


class HybridRetriever:
    """Searches one index generation; reopen (or call ``refresh_if_switched``) to see a new one."""

    def __init__(self, *, store: GenerationStore, vectors: VectorIndex, embedder: Embedder,
                 params: FusionParams | None = None, ranker: Ranker | None = None) -> None:
        self._store = store
        self.ranker = ranker
        self._vectors = vectors
        self._embedder = embedder
        self.params = params or FusionParams()
        self.generation = ""
        self._stats_lock = threading.Lock()
        self._load(store.require_active())

    def _load(self, generation: str) -> None:
        meta = self._store.read_meta(generation)
        if meta.model != self._embedder.name:
            raise ModelMismatchError(
                f"the index was built with {meta.model} but the embedder is {self._embedder.name}: "
                "run `vraagbaak corpus refresh --rebuild`"
            )
        self._chunks: list[Chunk] = self._store.read_chunks(generation)
        self._position = {c.id: i for i, c in enumerate(self._chunks)}
        self._unit_members: dict[str, list[int]] = {}
        for i, chunk in enumerate(self._chunks):
            self._unit_members.setdefault(chunk.unit_id, []).append(i)
        self._word_cache: dict[int, frozenset[str]] = {}
        self._lexical = LexicalIndex.load(self._store.path(generation) / "bm25")
        self._term_stats: tuple[str, TermStats] | None = None
        self._kind_counts: tuple[str, dict[str, int]] | None = None
        self.generation = generation
        logger.info("serving index generation %s (%d chunks)", generation, len(self._chunks))

    def refresh_if_switched(self) -> bool:
        """Pick up a newer active generation after a refresh; True when it switched."""
        active = self._store.active()
        if active and active != self.generation:
            self._load(active)
            return True
        return False

    def _kind_share(self, kinds: Collection[str]) -> float:
        """The share of the served chunks that are of these kinds."""
        generation, counts = self._kind_counts if self._kind_counts else (None, {})
        if generation != self.generation:
            counts = {}
            for chunk in self._chunks:
                counts[chunk.kind] = counts.get(chunk.kind, 0) + 1
            self._kind_counts = (self.generation, counts)
        return sum(counts.get(kind, 0) for kind in kinds) / max(1, len(self._chunks))

    def term_stats(self) -> TermStats:
        """Document frequencies over the served chunks of the quoted kinds (counted on first use, once per
        generation)."""
        generation, chunks = self.generation, self._chunks
        cached = self._term_stats
        if cached is not None and cached[0] == generation:
            return cached[1]
        with self._stats_lock:
            cached = self._term_stats
            if cached is not None and cached[0] == generation:
                return cached[1]
            stats = TermStats.from_chunks([c for c in chunks if c.kind in QUOTED_KINDS])
            # Stored under the generation it was counted for: a switch meanwhile must not inherit it.
            self._term_stats = (generation, stats)
            return stats

    @property
    def chunks(self) -> Sequence[Chunk]:
        """All chunks of the served generation."""
        return self._chunks

    def search(self, query: str, *, k: int = 10, mode: str = "hybrid",
               kinds: Collection[str] | None = None) -> list[SearchHit]:
        """Ranked hits, one per citable unit, best first (with ``kinds``: only units of those source kinds)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        query = query.strip()
        if not query or not self._chunks:
            return []
        depth = max(self.params.candidates, k * 3)
        if kinds is not None and self._kind_share(kinds) < 0.5:
            depth = max(depth, KIND_FILTER_DEPTH)  # the wanted kinds are a small part of the corpus
        lexical: list[tuple[int, float]] = []
        dense: list[tuple[int, float]] = []
        if mode in ("hybrid", "bm25"):
            tokens = analyse(query)
            if self.params.expand_terms:
                tokens = expand(tokens)
            lexical = self._lexical.search(tokens, depth)
        if mode in ("hybrid", "dense"):
            vector = self._embedder.embed_query(query)
            dense = [(self._position[cid], score)
                     for cid, score in self._vectors.query(self.generation, vector, depth)
                     if cid in self._position]
        if kinds is not None:
            # Before fusing: each ranking's scores are scaled to its best candidate of the wanted kinds.
            lexical = [(pos, score) for pos, score in lexical if self._chunks[pos].kind in kinds]
            dense = [(pos, score) for pos, score in dense if self._chunks[pos].kind in kinds]
        fused = self._fuse(lexical, dense, mode)
        ranker = self.ranker if mode == "hybrid" and self.params.rerank else None
        if ranker is None:
            return self._units(fused, lexical, dense, query, k)
        hits = self._units(fused, lexical, dense, query, max(k, ranker.depth))
        return ranker.rerank(query, hits, self.term_stats())[:k]

    def _fuse(self, lexical: list[tuple[int, float]], dense: list[tuple[int, float]],
              mode: str) -> dict[int, float]:
        scores: dict[int, float] = {}
        weight = {"bm25": 1.0, "dense": 0.0}.get(mode, self.params.lexical_weight)
        for ranking, w in ((lexical, weight), (dense, 1.0 - weight)):
            if not ranking or w == 0.0:
                continue
            values = np.array([s for _, s in ranking], dtype=np.float64)
            low, high = float(values.min()), float(values.max())
            span = high - low or 1.0
            for pos, s in ranking:
                scores[pos] = scores.get(pos, 0.0) + w * (s - low) / span
        return scores

    def _units(self, fused: dict[int, float], lexical: list[tuple[int, float]],
               dense: list[tuple[int, float]], query: str, k: int) -> list[SearchHit]:
        lex_rank = {pos: r for r, (pos, _) in enumerate(lexical, 1)}
        dense_rank = {pos: r for r, (pos, _) in enumerate(dense, 1)}
        dense_score = dict(dense)
        best: dict[str, tuple[float, int]] = {}
        regimes = special_regimes() if self.params.special_regimes else None
        named = regimes.named_in(query) if regimes else frozenset()
        for pos, score in fused.items():
            if regimes is not None:
                score *= regimes.factor_for(self._chunks[pos], named)
            unit = self._chunks[pos].unit_id
            if unit not in best or score > best[unit][0]:
                best[unit] = (score, pos)
        ranked = sorted(best.values(), key=lambda item: (-item[0], item[1]))
        hits = []
        position_of = {self._chunks[pos].unit_id: pos for _, pos in ranked}
        for score, pos, twins in self._fold_twins(ranked[: k * 3], query)[:k]:
            members = self._unit_members[self._chunks[pos].unit_id]
            # A twin shown in place of the unit that matched keeps the group's best similarity.
            group = [pos, *(position_of[t] for t in twins if t in position_of)]
            similarities = [dense_score[p] for p in group if p in dense_score]
            hits.append(SearchHit(
                chunk=self._chunks[members[0]], score=round(score, 6), matched=self._chunks[pos],
                doc_ids=tuple(dict.fromkeys(self._chunks[m].doc_id for m in members)),
                lexical_rank=lex_rank.get(pos), dense_rank=dense_rank.get(pos),
                dense_score=max(similarities) if similarities else None,
                unit=tuple(self._chunks[m] for m in members) if len(members) > 1 else (),
                twins=twins))
        return hits

    def _fold_twins(self, ranked: list[tuple[float, int]], query: str) -> list[tuple[float, int, tuple[str, ...]]]:
        """Merge units that state the same rule twice (a law repeating a part for special sectors).

        The group keeps the best score and is shown as the unit that comes first in the source,
        the general rule, unless the query names words that only the later unit's headings carry.
        """
        if not ranked:
            return []
        positions = [pos for _, pos in ranked]
        words = [self._words(pos) for pos in positions]
        query_tokens = set(analyse(query))
        taken: set[int] = set()
        out: list[tuple[float, int, tuple[str, ...]]] = []
        for i, (score, pos) in enumerate(ranked):
            if i in taken:
                continue
            group = [i] + [j for j in range(i + 1, len(ranked))
                           if j not in taken and self._restates(pos, positions[j])
                           and _jaccard(words[i], words[j]) >= self.params.twin_threshold]
            taken.update(group)
            members = [positions[j] for j in group]
            shown = min(members, key=lambda p: (self._chunks[p].position, p))
            for p in members:
                if self._heading_overlap(p, query_tokens) > self._heading_overlap(shown, query_tokens):
                    shown = p
            twins = tuple(self._chunks[p].unit_id for p in members if p != shown)
            out.append((score, shown, twins))
        return out

    def _restates(self, a: int, b: int) -> bool:
        """Could unit b restate unit a? Only across top-level parts of one document (Deel 2 vs Deel 3);
        near-identical articles side by side in one part are distinct rules (in-house vs. joint control)."""
        first, second = self._chunks[a], self._chunks[b]
        return (first.source_id == second.source_id and first.doc_id == second.doc_id
                and bool(first.heading_path) and bool(second.heading_path)
                and first.heading_path[0] != second.heading_path[0])

    def _words(self, pos: int) -> frozenset[str]:
        cached = self._word_cache.get(pos)
        if cached is None:
            # Article numbers differ between twins by definition; compare the wording only.
            cached = frozenset(t for t in analyse(self._chunks[pos].text) if not t[0].isdigit())
            self._word_cache[pos] = cached
        return cached

    def _heading_overlap(self, pos: int, query_tokens: set[str]) -> int:
        return len(query_tokens & set(analyse(" ".join(self._chunks[pos].heading_path))))



def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
