"""Eval metrics against values computed by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from retrieval.evaluation import (EvalFileError, Question, evaluate, first_gold_rank, ndcg, read_questions, rouge_l,
                                  token_f1)
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


def _section(doc_id: str, label: str, *, passage: str | None = None, title: str = "T") -> SearchHit:
    """A hit on one unit; ``passage`` is the label of the matched chunk when it is not the unit's first."""
    chunk = Chunk(id=f"s:{doc_id}:x:0", source_id="s", doc_id=doc_id, unit_id=f"s:{doc_id}:x", title=title,
                  kind="guidance", text="t", content_hash="h", label=label)
    matched = Chunk(id=f"s:{doc_id}:x:1", source_id="s", doc_id=doc_id, unit_id=f"s:{doc_id}:x", title=title,
                    kind="guidance", text="t", content_hash="h", label=passage) if passage else None
    return SearchHit(chunk=chunk, score=1.0, matched=matched)


def test_a_gold_label_copied_from_ask_json_matches_the_same_unit() -> None:
    hits = [
        _section("gun", "Hoe gun ik na een concurrentiegerichte dialoog? (beste prijs-kwaliteitverhouding)"),
        _section("dialoog", "Wanneer mag ik de concurrentiegerichte dialoog gebruiken? (art. 38 van de wet van 17 "
                            "juni 2016)", title="Concurrentiegerichte dialoog: wanneer en hoe (voorbeeldnota)"),
        _section("ip", "art. 40 — Innovatiepartnerschap"),
        _section("aw", "art. 2.31a, § 1", passage="art. 2.31a, § 3"),
        _section("def", "art. 1.1", passage="art. 1.1 (vervolg)"),
    ]
    # The label exactly as `vraagbaak ask --json` prints it (the matched passage's label when it has one).
    copied = "Wanneer mag ik de concurrentiegerichte dialoog gebruiken? (art. 38 van de wet van 17 juni 2016)"
    assert first_gold_rank(hits, [copied]) == 2
    assert first_gold_rank(hits, ["Concurrentiegerichte dialoog: wanneer en hoe (voorbeeldnota) — " + copied]) == 2
    assert first_gold_rank(hits, ["art. 40 — Innovatiepartnerschap"]) == 3
    assert first_gold_rank(hits, ["Artikel 40"]) == 3
    assert first_gold_rank(hits, ["art. 2.31a, § 1"]) == 4
    assert first_gold_rank(hits, ["art. 2.31a, § 3"]) == 4
    assert first_gold_rank(hits, ["art. 2.31a, § 2"]) == 4  # another lid of the same article: the same unit
    assert first_gold_rank(hits, ["art. 1.1 (vervolg)"]) == 5
    # ... and only the same unit: the heading of another section, another article, or a longer number do not match.
    assert first_gold_rank(hits, ["Hoe gun ik na een concurrentiegerichte dialoog? (vertrouwelijkheid)"]) is None
    assert first_gold_rank(hits, ["art. 2.31, § 1"]) is None
    assert first_gold_rank(hits, ["art. 4"]) is None
    assert ndcg(hits, [copied, "art. 40 — Innovatiepartnerschap"], 10) == pytest.approx(
        (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))


def test_questions_without_retrieval_gold_are_skipped_not_counted_as_misses() -> None:
    ranking = {"q1": ["A"], "q2": ["B"], "weer": ["A"], "geding": ["B"], "leeg": ["A"]}
    questions = [Question("q1", "q1", ("A",), "answer"), Question("q2", "q2", ("Z",), "answer"),
                 Question("weer", "weer", (), "out_of_scope"), Question("geding", "geding", (), "escalate"),
                 Question("nf", "leeg", (), "not_found"), Question("vaag", "leeg", (), "clarify"),
                 Question("nogold", "leeg", (), "answer")]
    result = evaluate(questions, lambda q: [_hit(d) for d in ranking.get(q, [])], k=10)
    assert result["n"] == 7
    assert result["retrieval_n"] == 2  # recall and MRR are over q1 and q2 only
    assert result["recall@10"] == pytest.approx(1 / 2)
    assert result["mrr@10"] == pytest.approx(1 / 2)
    assert result["missed"] == ["q2"]
    assert result["skipped"] == {"expect clarify": 1, "expect escalate": 1, "expect not_found": 1,
                                 "expect out_of_scope": 1, "no gold": 1}
    rows = {row["id"]: row for row in result["per_question"]}
    assert rows["weer"]["skipped"] == "expect out_of_scope" and "skipped" not in rows["q2"]


def test_token_f1_and_rouge_l_by_hand() -> None:
    reference = "Een aanvaarde factuur volstaat tot 30.000 euro."
    # Words of letters or digits ("30.000" is 30 and 000): 6 of the 10 reply tokens are among the 8 of the reference.
    assert token_f1("De factuur volstaat tot 30.000 euro, zegt de wet", reference) == pytest.approx(
        2 * (6 / 10) * (6 / 8) / (6 / 10 + 6 / 8))
    # The common subsequence keeps order: "volstaat tot" (2) in a 3-token reply against 8.
    assert rouge_l("tot volstaat tot", reference) == pytest.approx(2 * (2 / 3) * (2 / 8) / (2 / 3 + 2 / 8))
    assert rouge_l(reference, reference) == 1.0 and token_f1("É́én", "een") == 1.0
    assert token_f1("", reference) == 0.0 and rouge_l("iets anders", reference) == 0.0


def test_reply_text_is_scored_only_for_questions_with_a_reference_answer(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "q1", "gold": ["x"], "answer": "tot 30.000 euro"}) + "\n"
                    + json.dumps({"id": "b", "question": "q2", "gold": ["x"]}) + "\n", encoding="utf-8")
    questions = read_questions(path)
    assert questions[0].answer == "tot 30.000 euro" and questions[1].answer is None
    asked = []
    result = evaluate(questions, lambda q: [], respond=lambda q: asked.append(q) or "Het kan tot 30.000 euro.")
    assert asked == ["q1"] and result["answer_n"] == 1
    assert result["answer_f1"] == pytest.approx(token_f1("Het kan tot 30.000 euro.", "tot 30.000 euro"))
    assert result["per_question"][0]["reply"] == "Het kan tot 30.000 euro." and "reply" not in result["per_question"][1]
