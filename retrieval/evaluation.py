"""Retrieval evaluation: Recall@k, MRR@10, nDCG@10 and latency over a JSONL question file."""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval.types import SearchHit


class EvalFileError(ValueError):
    """The questions file is malformed; the message names the line."""


@dataclass(frozen=True)
class Question:
    """One evaluation question."""

    id: str
    question: str
    gold: tuple[str, ...]
    expect: str | None = None


def read_questions(path: Path) -> list[Question]:
    """Parse a JSONL file of {"id", "question", "gold": [...], "expect"?}."""
    questions = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            questions.append(Question(id=str(obj["id"]), question=str(obj["question"]),
                                      gold=tuple(str(g) for g in obj.get("gold") or ()), expect=obj.get("expect")))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise EvalFileError(f"{path}:{n}: not a valid question line ({exc})") from None
    if not questions:
        raise EvalFileError(f"{path}: no questions")
    return questions


def _norm(text: str) -> str:
    text = re.sub(r"\s+", " ", text.strip().lower())
    return re.sub(r"^(artikel|article|art\.?)\s*", "art. ", text)


def hit_keys(hit: SearchHit) -> set[str]:
    """What a gold entry may name for this hit: a document id in the unit, the unit id, or the article label."""
    chunk = hit.chunk
    keys = {_norm(chunk.doc_id), _norm(chunk.unit_id), *(_norm(d) for d in hit.doc_ids)}
    if chunk.label:
        keys.add(_norm(re.split(r",|\s\(", chunk.label, maxsplit=1)[0]))
    return keys


def first_gold_rank(hits: Sequence[SearchHit], gold: Sequence[str]) -> int | None:
    """1-based rank of the first hit matching any gold entry, or None."""
    wanted = {_norm(g) for g in gold}
    for rank, hit in enumerate(hits, 1):
        if hit_keys(hit) & wanted:
            return rank
    return None


def ndcg(hits: Sequence[SearchHit], gold: Sequence[str], k: int) -> float:
    """Binary-relevance nDCG@k; each gold entry counts once."""
    wanted = {_norm(g) for g in gold}
    if not wanted:
        return 0.0
    found: set[str] = set()
    dcg = 0.0
    for rank, hit in enumerate(hits[:k], 1):
        match = (hit_keys(hit) & wanted) - found
        if match:
            found |= match
            dcg += 1.0 / math.log2(rank + 1)
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(wanted), k) + 1))
    return dcg / ideal


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = max(0, math.ceil(pct / 100 * len(ordered)) - 1)
    return ordered[index]


def evaluate(questions: Sequence[Question], search: Callable[[str], list[SearchHit]], *, k: int = 10,
             decide: Callable[[str], str] | None = None) -> dict:
    """Run every question and compute the metrics (the ``--json`` object of ``vraagbaak eval``)."""
    per_question = []
    latencies = []
    ranks: list[int | None] = []
    ndcgs = []
    decisions_right = decisions_total = 0
    for q in questions:
        started = time.perf_counter()
        hits = search(q.question)
        latencies.append((time.perf_counter() - started) * 1000)
        rank = first_gold_rank(hits[:k], q.gold) if q.gold else None
        if q.gold:
            ranks.append(rank)
            ndcgs.append(ndcg(hits, q.gold, 10))
        row = {"id": q.id, "rank": rank, "top": [h.chunk.unit_id for h in hits[:k]]}
        if decide is not None and q.expect:
            decision = decide(q.question)
            row["decision"], row["expect"] = decision, q.expect
            decisions_total += 1
            decisions_right += decision == q.expect
        per_question.append(row)
    n = len(ranks)

    def recall(at: int) -> float:
        return sum(1 for r in ranks if r is not None and r <= at) / n if n else 0.0

    return {
        "n": len(questions),
        "recall@1": recall(1),
        "recall@5": recall(5),
        "recall@10": recall(10),
        "mrr@10": sum(1.0 / r for r in ranks if r is not None and r <= 10) / n if n else 0.0,
        "ndcg@10": statistics.fmean(ndcgs) if ndcgs else 0.0,
        "latency_ms": {"p50": statistics.median(latencies), "p95": percentile(latencies, 95)},
        "decision_accuracy": decisions_right / decisions_total if decisions_total else None,
        "per_question": per_question,
    }
