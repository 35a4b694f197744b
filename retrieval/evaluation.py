"""Retrieval evaluation: Recall@k, MRR@10, nDCG@10 and latency over a JSONL question file."""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval.lexical import fold
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
    answer: str | None = None
    """A reference answer (LegalQA-NL's annotators' answer): the reply text is scored against it."""


def read_questions(path: Path) -> list[Question]:
    """Parse a JSONL file of {"id", "question", "gold": [...], "expect"?}."""
    questions = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            answer = obj.get("answer")
            questions.append(Question(id=str(obj["id"]), question=str(obj["question"]),
                                      gold=tuple(str(g) for g in obj.get("gold") or ()), expect=obj.get("expect"),
                                      answer=str(answer) if answer else None))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise EvalFileError(f"{path}:{n}: not a valid question line ({exc})") from None
    if not questions:
        raise EvalFileError(f"{path}: no questions")
    return questions


def _norm(text: str) -> str:
    text = re.sub(r"\s+", " ", text.strip().lower())
    return re.sub(r"^(artikel|article|art\.?)\s*", "art. ", text)


_ARTICLE = re.compile(r"^art\. ([^\s,;:(]+?)[.,;:]*(?=$|[\s,;:(])")
"""The article a normalised label names: "art. 2.31a, § 1", "art. 1.1 (vervolg)", "art. 40 — x" -> its number."""


def _label_keys(label: str) -> set[str]:
    """A label as printed, and the part that names its unit: the article, or a heading without its addition."""
    full = _norm(label)
    article = _ARTICLE.match(full)
    short = f"art. {article.group(1)}" if article else _norm(re.split(r",|\s\(", label, maxsplit=1)[0])
    return {full, short}


def _gold_keys(entry: str) -> set[str]:
    """What one gold entry may equal: itself, and for an article reference with a lid or addition, the article."""
    full = _norm(entry)
    article = _ARTICLE.match(full)
    return {full, f"art. {article.group(1)}"} if article else {full}


def hit_keys(hit: SearchHit) -> set[str]:
    """What a gold entry may name for this hit: a document id in the unit, the unit id, or a label of the unit.

    A label counts as printed (``vraagbaak ask --json`` shows the matched passage's label, e.g. "art. 1.1
    (vervolg)" or a heading with its reference in brackets), as "title — label" (the plain ``ask`` source line),
    and shortened to what names the unit: the article ("art. 2.31a") or the heading before a comma or bracket.
    """
    chunk = hit.chunk
    keys = {_norm(chunk.doc_id), _norm(chunk.unit_id), *(_norm(d) for d in hit.doc_ids)}
    for label in dict.fromkeys(c.label for c in (chunk, hit.passage) if c.label):
        keys |= _label_keys(label)
        keys.add(_norm(f"{chunk.title} — {label}"))
    return keys


def _matching(hit: SearchHit, gold: Sequence[str]) -> set[str]:
    """The gold entries (normalised) this hit matches."""
    keys = hit_keys(hit)
    return {_norm(g) for g in gold if _gold_keys(g) & keys}


def first_gold_rank(hits: Sequence[SearchHit], gold: Sequence[str]) -> int | None:
    """1-based rank of the first hit matching any gold entry, or None."""
    for rank, hit in enumerate(hits, 1):
        if _matching(hit, gold):
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
        match = _matching(hit, gold) - found
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


def skip_reason(question: Question) -> str | None:
    """Why a question is left out of the retrieval metrics, or None when it counts.

    Only questions the helpdesk should answer from a source have a unit to find: the others (expect out_of_scope,
    not_found, clarify, escalate) carry no gold and are measured by the decision accuracy alone.
    """
    if question.expect not in (None, "answer"):
        return f"expect {question.expect}"
    if not question.gold:
        return "no gold"
    return None


MAX_ANSWER_TOKENS = 2000
"""Longer texts are cut before scoring: ROUGE-L is quadratic in the length."""
_ANSWER_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def answer_tokens(text: str) -> list[str]:
    """Lowercased words without diacritics, as the answer metrics compare them."""
    return _ANSWER_TOKEN.findall(fold(text))[:MAX_ANSWER_TOKENS]


def token_f1(reply: str, reference: str) -> float:
    """Harmonic mean of token precision and recall (words counted with their multiplicity)."""
    got, want = Counter(answer_tokens(reply)), Counter(answer_tokens(reference))
    common = sum((got & want).values())
    if not common:
        return 0.0
    precision, recall = common / sum(got.values()), common / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def rouge_l(reply: str, reference: str) -> float:
    """ROUGE-L F1: the longest common token subsequence against both lengths."""
    a, b = answer_tokens(reply), answer_tokens(reference)
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if token == other else max(previous[j], current[j - 1]))
        previous = current
    lcs = previous[-1]
    if not lcs:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def evaluate(questions: Sequence[Question], search: Callable[[str], list[SearchHit]], *, k: int = 10,
             decide: Callable[[str], str] | None = None, respond: Callable[[str], str] | None = None) -> dict:
    """Run every question and compute the metrics (the ``--json`` object of ``vraagbaak eval``).

    Retrieval metrics are over the questions with gold only (``retrieval_n``); ``skipped`` counts the others by
    reason and ``missed`` lists the counted questions whose gold is not in the top ``k``. With ``respond`` (the
    reply text for a question), questions that carry a reference ``answer`` are scored by token F1 and ROUGE-L.
    """
    answer_scores: list[tuple[float, float]] = []
    per_question = []
    latencies = []
    ranks: list[int | None] = []
    ndcgs = []
    skipped: Counter[str] = Counter()
    missed = []
    decisions_right = decisions_total = 0
    for q in questions:
        started = time.perf_counter()
        hits = search(q.question)
        latencies.append((time.perf_counter() - started) * 1000)
        reason = skip_reason(q)
        rank = first_gold_rank(hits[:k], q.gold) if reason is None else None
        row = {"id": q.id, "rank": rank, "top": [h.chunk.unit_id for h in hits[:k]]}
        if reason is None:
            ranks.append(rank)
            ndcgs.append(ndcg(hits, q.gold, 10))
            if rank is None:
                missed.append(q.id)
        else:
            skipped[reason] += 1
            row["skipped"] = reason
        if decide is not None and q.expect:
            decision = decide(q.question)
            row["decision"], row["expect"] = decision, q.expect
            decisions_total += 1
            decisions_right += decision == q.expect
        if respond is not None and q.answer:
            text = respond(q.question)
            scores = (token_f1(text, q.answer), rouge_l(text, q.answer))
            answer_scores.append(scores)
            row["reply"], row["answer_f1"], row["answer_rouge_l"] = text, round(scores[0], 4), round(scores[1], 4)
        per_question.append(row)
    n = len(ranks)

    def recall(at: int) -> float:
        return sum(1 for r in ranks if r is not None and r <= at) / n if n else 0.0

    return {
        "n": len(questions),
        "retrieval_n": n,
        "recall@1": recall(1),
        "recall@5": recall(5),
        "recall@10": recall(10),
        "mrr@10": sum(1.0 / r for r in ranks if r is not None and r <= 10) / n if n else 0.0,
        "ndcg@10": statistics.fmean(ndcgs) if ndcgs else 0.0,
        "latency_ms": {"p50": statistics.median(latencies), "p95": percentile(latencies, 95)},
        "decision_accuracy": decisions_right / decisions_total if decisions_total else None,
        "answer_n": len(answer_scores),
        "answer_f1": statistics.fmean(s[0] for s in answer_scores) if answer_scores else None,
        "answer_rouge_l": statistics.fmean(s[1] for s in answer_scores) if answer_scores else None,
        "skipped": dict(sorted(skipped.items())),
        "missed": missed,
        "per_question": per_question,
    }
