"""Hybrid retrieval: BM25 and dense vectors fused, one hit per citable unit, twins folded."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.embedders import Embedder
from retrieval.errors import IndexUnavailableError, ModelMismatchError
from retrieval.evidence import TermStats
from retrieval.lexical import LexicalIndex, analyse
from retrieval.ranking import Ranker
from retrieval.store import IndexStore
from retrieval.terminology import SpecialRegimes, expand, special_regimes
from retrieval.types import MODES, QUOTED_KINDS, Chunk, SearchHit
from retrieval.vector_index import VectorIndex

logger = logging.getLogger(__name__)


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
    general_first: bool = True
    """Among the first ``REGIME_DEPTH`` units, those of a special regime the query does not name come last (off
    while the ranker's training reads the fused order it will reorder)."""


KIND_FILTER_DEPTH = 300
"""Candidates per ranking when only some source kinds are wanted."""
REGIME_DEPTH = 20
"""How many units are read so that the general rules among them come before the special regimes' units."""
UNAVAILABLE_LOG_SECONDS = 60.0
"""While the shared index store is down, the retriever says so at most once a minute."""


class _Generation:
    """One index generation as searched: chunks, their positions and units, the lexical index, and what is
    derived from them on first use. Built whole before it is served and never changed after, except for its
    caches, which only ever hold values of this generation."""

    def __init__(self, generation: str, chunks: list[Chunk], lexical: LexicalIndex) -> None:
        self.generation = generation
        self.chunks: tuple[Chunk, ...] = tuple(chunks)
        self.position = {c.id: i for i, c in enumerate(self.chunks)}
        self.unit_members: dict[str, list[int]] = {}
        for i, chunk in enumerate(self.chunks):
            self.unit_members.setdefault(chunk.unit_id, []).append(i)
        self.lexical = lexical
        self.kind_counts: dict[str, int] = {}
        for chunk in self.chunks:
            self.kind_counts[chunk.kind] = self.kind_counts.get(chunk.kind, 0) + 1
        self._words: dict[int, frozenset[str]] = {}
        self._term_stats: TermStats | None = None
        self._stats_lock = threading.Lock()

    def kind_share(self, kinds: Collection[str]) -> float:
        """The share of the chunks that are of these kinds."""
        return sum(self.kind_counts.get(kind, 0) for kind in kinds) / max(1, len(self.chunks))

    def term_stats(self) -> TermStats:
        """Document frequencies over the chunks of the quoted kinds (counted once, on first use)."""
        if self._term_stats is None:
            with self._stats_lock:
                if self._term_stats is None:
                    self._term_stats = TermStats.from_chunks([c for c in self.chunks if c.kind in QUOTED_KINDS])
        return self._term_stats

    def words(self, pos: int) -> frozenset[str]:
        cached = self._words.get(pos)
        if cached is None:
            # Article numbers differ between twins by definition; compare the wording only.
            cached = frozenset(t for t in analyse(self.chunks[pos].text) if not t[0].isdigit())
            self._words[pos] = cached
        return cached


class HybridRetriever:
    """Searches one index generation; ``refresh_if_switched`` moves to a newer one in a single step."""

    def __init__(self, *, store: IndexStore, vectors: VectorIndex, embedder: Embedder,
                 params: FusionParams | None = None, ranker: Ranker | None = None) -> None:
        self._store = store
        self.ranker = ranker
        self._vectors = vectors
        self._embedder = embedder
        self.params = params or FusionParams()
        self._switch_lock = threading.Lock()
        self._last_unavailable_log = -math.inf
        self._served = self._load(store.require_active())

    def _load(self, generation: str) -> _Generation:
        meta = self._store.read_meta(generation)
        if meta.model != self._embedder.name:
            raise ModelMismatchError(
                f"the index was built with {meta.model} but the embedder is {self._embedder.name}: "
                "run `vraagbaak corpus refresh --rebuild`"
            )
        loaded = _Generation(generation, self._store.read_chunks(generation), self._store.read_lexical(generation))
        logger.info("serving index generation %s (%d chunks)", generation, len(loaded.chunks))
        return loaded

    @property
    def generation(self) -> str:
        """The generation being served."""
        return self._served.generation

    def refresh_if_switched(self) -> bool:
        """Pick up a newer active generation after a refresh; True when it switched.

        Searches running meanwhile finish on the generation they started with: the new one is loaded whole and
        then replaces it in one assignment. Threads that notice the switch together load it once. When the shared
        store cannot be read (its database is down), the served generation goes on answering.
        """
        try:
            active = self._store.active()
            if not active or active == self._served.generation:
                return False
            with self._switch_lock:
                # Read again: a thread that waited here may hold a pointer that a later refresh has replaced.
                active = self._store.active()
                if not active or active == self._served.generation:
                    return False  # another thread switched while this one waited
                self._served = self._load(active)
        except IndexUnavailableError as exc:
            now = time.monotonic()
            if now - self._last_unavailable_log > UNAVAILABLE_LOG_SECONDS:
                self._last_unavailable_log = now
                logger.warning("%s; still serving index generation %s", exc, self._served.generation)
            return False
        return True

    def term_stats(self) -> TermStats:
        """Document frequencies over the served chunks of the quoted kinds (counted once per generation)."""
        return self._served.term_stats()

    @property
    def chunks(self) -> Sequence[Chunk]:
        """All chunks of the served generation."""
        return self._served.chunks

    def search(self, query: str, *, k: int = 10, mode: str = "hybrid",
               kinds: Collection[str] | None = None) -> list[SearchHit]:
        """Ranked hits, one per citable unit, best first (with ``kinds``: only units of those source kinds)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        served = self._served  # one generation for the whole search, whatever a switch does meanwhile
        query = query.strip()
        if not query or not served.chunks:
            return []
        depth = max(self.params.candidates, k * 3)
        if kinds is not None and served.kind_share(kinds) < 0.5:
            depth = max(depth, KIND_FILTER_DEPTH)  # the wanted kinds are a small part of the corpus
        lexical: list[tuple[int, float]] = []
        dense: list[tuple[int, float]] = []
        if mode in ("hybrid", "bm25"):
            tokens = analyse(query)
            if self.params.expand_terms:
                tokens = expand(tokens)
            lexical = served.lexical.search(tokens, depth)
        if mode in ("hybrid", "dense"):
            vector = self._embedder.embed_query(query)
            dense = [(served.position[cid], score)
                     for cid, score in self._vectors.query(served.generation, vector, depth)
                     if cid in served.position]
        if kinds is not None:
            # Before fusing: each ranking's scores are scaled to its best candidate of the wanted kinds.
            lexical = [(pos, score) for pos, score in lexical if served.chunks[pos].kind in kinds]
            dense = [(pos, score) for pos, score in dense if served.chunks[pos].kind in kinds]
        fused = self._fuse(lexical, dense, mode)
        ranker = self.ranker if mode == "hybrid" and self.params.rerank else None
        regimes = special_regimes() if self.params.special_regimes and self.params.general_first else None
        depth = max(k, ranker.depth if ranker is not None else 0, REGIME_DEPTH if regimes is not None else 0)
        hits = self._units(served, fused, lexical, dense, query, depth)
        if ranker is not None:
            hits = ranker.rerank(query, hits, served.term_stats())
        if regimes is not None:
            # Within the first REGIME_DEPTH only, so the first k do not depend on how many were asked for.
            hits = _general_first(hits[:REGIME_DEPTH], regimes, query) + hits[REGIME_DEPTH:]
        return hits[:k]

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

    def _units(self, served: _Generation, fused: dict[int, float], lexical: list[tuple[int, float]],
               dense: list[tuple[int, float]], query: str, k: int) -> list[SearchHit]:
        chunks = served.chunks
        lex_rank = {pos: r for r, (pos, _) in enumerate(lexical, 1)}
        dense_rank = {pos: r for r, (pos, _) in enumerate(dense, 1)}
        dense_score = dict(dense)
        best: dict[str, tuple[float, int]] = {}
        regimes = special_regimes() if self.params.special_regimes else None
        named = regimes.named_in(query) if regimes else frozenset()
        for pos, score in fused.items():
            if regimes is not None:
                score *= regimes.factor_for(chunks[pos], named)
            unit = chunks[pos].unit_id
            if unit not in best or score > best[unit][0]:
                best[unit] = (score, pos)
        ranked = sorted(best.values(), key=lambda item: (-item[0], item[1]))
        hits = []
        position_of = {chunks[pos].unit_id: pos for _, pos in ranked}
        for score, pos, twins in self._fold_twins(served, ranked[: k * 3], query)[:k]:
            members = served.unit_members[chunks[pos].unit_id]
            # A twin shown in place of the unit that matched keeps the group's best similarity.
            group = [pos, *(position_of[t] for t in twins if t in position_of)]
            similarities = [dense_score[p] for p in group if p in dense_score]
            hits.append(SearchHit(
                chunk=chunks[members[0]], score=round(score, 6), matched=chunks[pos],
                doc_ids=tuple(dict.fromkeys(chunks[m].doc_id for m in members)),
                lexical_rank=lex_rank.get(pos), dense_rank=dense_rank.get(pos),
                dense_score=max(similarities) if similarities else None,
                unit=tuple(chunks[m] for m in members) if len(members) > 1 else (),
                twins=twins))
        return hits

    def _fold_twins(self, served: _Generation, ranked: list[tuple[float, int]],
                    query: str) -> list[tuple[float, int, tuple[str, ...]]]:
        """Merge units that state the same rule twice (a law repeating a part for special sectors).

        The group keeps the best score and is shown as the unit that comes first in the source,
        the general rule, unless the query names words that only the later unit's headings carry.
        """
        if not ranked:
            return []
        chunks = served.chunks
        positions = [pos for _, pos in ranked]
        words = [served.words(pos) for pos in positions]
        query_tokens = set(analyse(query))
        taken: set[int] = set()
        out: list[tuple[float, int, tuple[str, ...]]] = []
        for i, (score, pos) in enumerate(ranked):
            if i in taken:
                continue
            group = [i] + [j for j in range(i + 1, len(ranked))
                           if j not in taken and _restates(chunks[pos], chunks[positions[j]])
                           and _jaccard(words[i], words[j]) >= self.params.twin_threshold]
            taken.update(group)
            members = [positions[j] for j in group]
            shown = min(members, key=lambda p: (chunks[p].position, p))
            for p in members:
                if _heading_overlap(chunks[p], query_tokens) > _heading_overlap(chunks[shown], query_tokens):
                    shown = p
            twins = tuple(chunks[p].unit_id for p in members if p != shown)
            out.append((score, shown, twins))
        return out


def _restates(first: Chunk, second: Chunk) -> bool:
    """Could the second unit restate the first? Only across top-level parts of one document (Deel 2 vs Deel 3);
    near-identical articles side by side in one part are distinct rules (in-house vs. joint control)."""
    return (first.source_id == second.source_id and first.doc_id == second.doc_id
            and bool(first.heading_path) and bool(second.heading_path)
            and first.heading_path[0] != second.heading_path[0])


def _heading_overlap(chunk: Chunk, query_tokens: set[str]) -> int:
    return len(query_tokens & set(analyse(" ".join(chunk.heading_path))))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _general_first(hits: list[SearchHit], regimes: SpecialRegimes, query: str) -> list[SearchHit]:
    """The hits with the units of a special regime the query does not name after all the others, each group in its
    order. The fused score only lowers them (``SpecialRegimes.factor``); the learned ranker, which reads words and
    not parts of a law, put the special-sector twin of a rule back above it ("Hoe lang mag een raamovereenkomst
    lopen?": art. 3.80 before art. 2.140). A local government falls under the general rules."""
    named = regimes.named_in(query)
    special = [regimes.factor_for(hit.passage, named) < 1.0 for hit in hits]
    return [h for h, s in zip(hits, special) if not s] + [h for h, s in zip(hits, special) if s]
