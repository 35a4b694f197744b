"""Calibrate and measure the support check on sentences labelled by hand (``bench/claims/claims.jsonl``).

Each example is one sentence, the passage it cites and whether that passage carries it. The threshold is chosen on
the train split only; the dev split says how well it holds.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval import claims
from retrieval.claims import Claim, Source
from retrieval.generative import load_prompt

CLAIMS_PATH = Path(__file__).resolve().parents[1] / "bench" / "claims" / "claims.jsonl"
THRESHOLDS = tuple(round(0.40 + 0.05 * i, 2) for i in range(12))


@dataclass(frozen=True)
class Example:
    id: str
    split: str
    kind: str
    sentence: str
    source: str
    supported: bool


def load_examples(path: Path = CLAIMS_PATH) -> list[Example]:
    """The labelled sentences; a malformed line is an error naming its line number."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append(Example(str(row["id"]), str(row["split"]), str(row["kind"]), str(row["sentence"]),
                               str(row["source"]), bool(row["supported"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a labelled claim ({exc})") from exc
    return out


def verdicts(examples: Sequence[Example], threshold: float) -> list[claims.Support]:
    """The check's verdict on each example's sentence, cited as [1] against its passage."""
    system, _ = load_prompt()
    return [claims.support(Claim(e.sentence, 0, cited=(1,)), [Source(e.source)], instructions=system,
                           threshold=threshold) for e in examples]


@dataclass(frozen=True)
class Scores:
    n: int
    accuracy: float
    kept_unsupported: int
    """Unsupported sentences the check let through: what an officer would read unbacked."""
    dropped_supported: int
    """Supported sentences it dropped: a shorter (or extractive) answer, never a wrong one."""
    precision: float
    """Of the sentences kept, the share that was supported."""
    recall: float
    """Of the supported sentences, the share kept."""
    by_kind: dict[str, tuple[int, int]]
    """kind -> (right, total)."""


def score(examples: Sequence[Example], threshold: float) -> Scores:
    results = verdicts(examples, threshold)
    kept = [e for e, v in zip(examples, results) if v.supported]
    right = sum((v.supported == e.supported) for e, v in zip(examples, results))
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for e, v in zip(examples, results):
        by_kind[e.kind][0] += v.supported == e.supported
        by_kind[e.kind][1] += 1
    supported = sum(e.supported for e in examples)
    return Scores(
        n=len(examples), accuracy=right / len(examples) if examples else 0.0,
        kept_unsupported=sum(not e.supported for e in kept),
        dropped_supported=sum(e.supported and not v.supported for e, v in zip(examples, results)),
        precision=sum(e.supported for e in kept) / len(kept) if kept else 0.0,
        recall=sum(e.supported for e in kept) / supported if supported else 0.0,
        by_kind={k: (r, t) for k, (r, t) in sorted(by_kind.items())})


def calibrate(train: Sequence[Example], *, max_kept_unsupported: float = 0.05) -> float:
    """The lowest threshold that lets through at most ``max_kept_unsupported`` of train's unsupported sentences
    (an unbacked sentence costs more than a dropped one); the best accuracy if none does."""
    unsupported = sum(not e.supported for e in train) or 1
    candidates = [(t, score(train, t)) for t in THRESHOLDS]
    safe = [t for t, s in candidates if s.kept_unsupported / unsupported <= max_kept_unsupported]
    if safe:
        return min(safe)
    return max(candidates, key=lambda pair: (pair[1].accuracy, -pair[0]))[0]


def report(path: Path = CLAIMS_PATH) -> dict:
    """Calibrated threshold, the bundled threshold, and the scores of each on train and dev."""
    examples = load_examples(path)
    splits = {name: [e for e in examples if e.split == name] for name in ("train", "dev")}
    chosen = calibrate(splits["train"])
    counts = Counter(f"{e.split}/{e.kind}" for e in examples)
    out: dict = {"calibrated_threshold": chosen, "threshold": claims.SUPPORT_THRESHOLD,
                 "counts": dict(sorted(counts.items()))}
    for name, rows in splits.items():
        out[name] = {str(t): _plain(score(rows, t)) for t in sorted({chosen, claims.SUPPORT_THRESHOLD})}
    return out


def _plain(scores: Scores) -> dict:
    data = dict(scores.__dict__)
    data["by_kind"] = {k: f"{r}/{t}" for k, (r, t) in scores.by_kind.items()}
    for key in ("accuracy", "precision", "recall"):
        data[key] = round(data[key], 3)
    return data

