"""Eval metrics against values computed by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from retrieval.evaluation import EvalFileError, Question, evaluate, first_gold_rank, ndcg, read_questions
from retrieval.types import Chunk, SearchHit


def _hit(doc_id: str, label: str | None = None) -> SearchHit:
    chunk = Chunk(id=f"s:{doc_id}:x:0", source_id="s", doc_id=doc_id, unit_id=f"s:{doc_id}:x", title="T",
                  kind="legislation", text="t", content_hash="h", label=label)
    return SearchHit(chunk=chunk, score=1.0)


def test_gold_matches_document_id_or_article_label_loosely() -> None:
    hits = [_hit("DOC1"), _hit("aw", "art. 2.31a, § 1"), _hit("DOC3")]
    assert first_gold_rank(hits, ["doc3"]) == 3
    assert first_gold_rank(hits, ["Artikel   2.31A"]) == 2
    assert first_gold_rank(hits, ["Artikel 2.31"]) is None


def test_ndcg_by_hand() -> None:
    hits = [_hit("A"), _hit("B"), _hit("C")]
    # Gold B and C at ranks 2 and 3: DCG = 1/log2(3) + 1/log2(4); ideal = 1 + 1/log2(3).
    expected = (1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3))
    assert ndcg(hits, ["B", "C"], 10) == pytest.approx(expected)
    assert ndcg(hits, ["A"], 10) == pytest.approx(1.0)
    assert ndcg(hits, ["Z"], 10) == 0.0


def test_evaluate_recall_mrr_by_hand() -> None:
    ranking = {"q1": ["A", "B"], "q2": ["C", "D", "E", "F", "H", "G"], "q3": ["X"]}
    questions = [Question("q1", "q1", ("A",)), Question("q2", "q2", ("G",)), Question("q3", "q3", ("Y",))]
    result = evaluate(questions, lambda q: [_hit(d) for d in ranking[q]], k=10)
    assert result["n"] == 3
    assert result["recall@1"] == pytest.approx(1 / 3)
    assert result["recall@5"] == pytest.approx(1 / 3)
    assert result["recall@10"] == pytest.approx(2 / 3)
    assert result["mrr@10"] == pytest.approx((1 + 1 / 6) / 3)
    assert result["decision_accuracy"] is None
    assert [row["rank"] for row in result["per_question"]] == [1, 6, None]
    assert set(result["latency_ms"]) == {"p50", "p95"}


def test_read_questions_reports_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "x", "gold": ["1"]}) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(EvalFileError, match=":2:"):
        read_questions(path)
