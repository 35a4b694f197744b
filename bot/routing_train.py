"""Training and reporting of the routing model (`vraagbaak routing train | report`).

Intent is learned from ``bench/questions/intent.jsonl``; evidence from retrieval runs over the bundled sample
corpus (``coverage.jsonl``, ``decisions.jsonl``, the off-topic intent questions) and over the Netherlands
procurement act (``aanbestedingswet.jsonl``, needs ../shared). Only the ``train`` split of a file is used for
fitting and for choosing thresholds; ``dev`` splits and the held-out files are for the report. scikit-learn is
imported here only: serving reads the stored numbers.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bot.core import ANSWER_KINDS
from bot.intent import ESCALATING, Intent, IntentModel, decide, feature_vector
from bot.routing import RoutingModel
from corpus.errors import CorpusError
from corpus.manifest import bundled_manifest_path, load_manifest
from retrieval.embedders import Embedder
from retrieval.evaluation import first_gold_rank
from retrieval.evidence import DENSE_FEATURES, FEATURES, EvidenceJudge, TermStats, features
from retrieval.ranking import RANK_FEATURES, Ranker, rank_features
from retrieval.types import SearchHit

if TYPE_CHECKING:
    from retrieval.search import FusionParams

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = REPO / "bench" / "questions"
AW_MANIFEST = REPO / "bench" / "manifests" / "aanbestedingswet.yaml"
LEXICAL_DIM = 2048
EVIDENCE_DEPTH = 3
"""Hits judged per question: the sources an answer may cite."""
SEARCH_K = 5
ESCALATE_RECALL_GOAL = 0.98
"""Own-case / person recall the escalation threshold is set for on out-of-fold train predictions."""


@dataclass(frozen=True)
class LabelledQuestion:
    """A question from one of the bench files."""

    id: str
    question: str
    expect: str
    """An intent, or a decision (answer / not_found / out_of_scope ...)."""
    gold: tuple[str, ...] = ()
    split: str = "train"
    group: str = ""
    lang: str = "nl"
    tags: tuple[str, ...] = ()


def read_labelled(path: Path, *, label: str = "expect", default_split: str = "train") -> list[LabelledQuestion]:
    """A bench JSONL file; ``label`` names the field that holds the class."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        out.append(LabelledQuestion(id=row["id"], question=row["question"], expect=row.get(label, "answer"),
                                    gold=tuple(row.get("gold") or ()), split=row.get("split", default_split),
                                    group=row.get("group", row["id"]), lang=row.get("lang", "nl"),
                                    tags=tuple(row.get("tags") or ())))
    return out


# -- intent -----------------------------------------------------------------------------------------------------


_DECISION_INTENT = {"answer": Intent.INFORMATION, "not_found": Intent.INFORMATION, "out_of_scope": Intent.OFF_TOPIC,
                    "clarify": Intent.VAGUE, "escalate": Intent.OWN_CASE}
_PERSON_IDS = frozenset({"d033", "d034"})
"""The escalate lines of decisions.jsonl that ask for a person rather than describe an own case."""


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def retrieval_set_examples(*, exclude: Iterable[str] = ()) -> list[LabelledQuestion]:
    """Intent examples from the train questions of the other bench sets.

    The retrieval sets are information questions by construction, many of them situational ("Er werd geen enkele
    offerte ingediend op onze openbare aanbesteding ... Mogen we ...?"): the border with own-case questions that
    the intent set alone draws too thinly. decisions.jsonl was the calibration set of the first version and is
    used the same way here (its report is a train number). Questions in ``exclude`` (the intent dev split) are left
    out even when another set has them in its train split, so the dev numbers stay unseen.
    """
    held_out = {_normalised(t) for t in exclude}
    out = []
    for name in ("aanbestedingswet.jsonl", "coverage.jsonl", "decisions.jsonl"):
        for q in read_labelled(QUESTIONS / name):
            if q.split != "train" or _normalised(q.question) in held_out:
                continue
            intent = Intent.PERSON if q.id in _PERSON_IDS else _DECISION_INTENT[q.expect]
            out.append(LabelledQuestion(q.id, q.question, str(intent), group=f"{name}:{q.group}"))
    return out


def intent_matrix(texts: Sequence[str], vectors: np.ndarray | None, embedding_weight: float) -> np.ndarray:
    """Feature rows as ``IntentModel.features`` builds them."""
    return np.vstack([feature_vector(t, None if vectors is None else vectors[i], lexical_dim=LEXICAL_DIM,
                                     embedding_weight=embedding_weight) for i, t in enumerate(texts)])


def _fit_intent(x: np.ndarray, y: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x, y)


def _escalate_threshold(probabilities: np.ndarray, classes: Sequence[str], y: np.ndarray) -> float:
    """The highest threshold on P(own case) + P(person) that keeps the recall goal on these predictions."""
    columns = [list(classes).index(str(c)) for c in ESCALATING]
    escalate_p = probabilities[:, columns].sum(axis=1)
    positive = np.isin(y, [str(c) for c in ESCALATING])
    scores = np.sort(escalate_p[positive])
    allowed_misses = int(np.floor((1 - ESCALATE_RECALL_GOAL) * len(scores)))
    threshold = float(scores[allowed_misses]) if len(scores) else 0.5
    return min(0.5, threshold - 1e-6)


def train_intent(questions: Sequence[LabelledQuestion], embed: Callable[[Sequence[str]], np.ndarray] | None
                 ) -> tuple[IntentModel, dict]:
    """Choose C and the embedding weight by grouped 5-fold CV on train, fit, set the escalation threshold."""
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedGroupKFold

    train = [q for q in questions if q.split == "train"]
    texts = [q.question for q in train]
    y = np.array([q.expect for q in train])
    groups = np.array([q.group for q in train])
    vectors = embed(texts) if embed else None
    weights = (0.0, 1.0, 2.0, 4.0, 8.0) if vectors is not None else (0.0,)
    folds = list(StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=7).split(texts, y, groups))
    best = None
    grid = []
    for weight in weights:
        x = intent_matrix(texts, vectors, weight)
        for c in (0.25, 1.0, 4.0):
            classes = sorted(set(y))
            oof = np.zeros((len(y), len(classes)))
            for fit_idx, test_idx in folds:
                model = _fit_intent(x[fit_idx], y[fit_idx], c)
                columns = [classes.index(k) for k in model.classes_]
                oof[np.ix_(test_idx, columns)] = model.predict_proba(x[test_idx])
            threshold = _escalate_threshold(oof, classes, y)
            predicted = _decide(oof, classes, threshold)
            information = y == str(Intent.INFORMATION)
            wrongly = float(np.isin(predicted[information], [str(k) for k in ESCALATING]).mean())
            macro_f1 = float(f1_score(y, predicted, average="macro"))
            grid.append({"embedding_weight": weight, "C": c, "cv_information_escalated": round(wrongly, 4),
                         "cv_macro_f1": round(macro_f1, 4), "escalate_threshold": round(threshold, 4)})
            # With the threshold set for the recall goal, the best model sends the fewest general questions
            # to the experts; macro-F1 breaks ties.
            score = (-round(wrongly, 3), macro_f1)
            if best is None or score > best[0]:
                best = (score, weight, c, threshold, classes)
    _, weight, c, threshold, _ = best
    x = intent_matrix(texts, vectors, weight)
    model = _fit_intent(x, y, c)
    intent = IntentModel(classes=tuple(Intent(k) for k in model.classes_), lexical_dim=LEXICAL_DIM,
                         embedding_weight=weight, embedding_dim=x.shape[1] - 2 * LEXICAL_DIM, coef=model.coef_,
                         intercept=model.intercept_, escalate_threshold=threshold)
    info = {"train_questions": len(train), "chosen": {"embedding_weight": weight, "C": c}, "grid": grid}
    return intent, info


def _decide(probabilities: np.ndarray, classes: Sequence[str], threshold: float) -> np.ndarray:
    intents = [Intent(c) for c in classes]
    return np.array([str(decide(dict(zip(intents, row)), threshold)) for row in probabilities])


def intent_to_dict(model: IntentModel) -> dict:
    """The JSON form of an intent model (floats rounded: the file stays diffable and small)."""
    return {"classes": [str(c) for c in model.classes], "lexical_dim": model.lexical_dim,
            "embedding_weight": model.embedding_weight, "embedding_dim": model.embedding_dim, "escalate_threshold": round(model.escalate_threshold, 6),
            "coef": [[round(float(v), 5) for v in row] for row in model.coef],
            "intercept": [round(float(v), 6) for v in model.intercept]}


# -- evidence ---------------------------------------------------------------------------------------------------


@dataclass
class EvidenceRun:
    """Feature rows and labels of one question set over one corpus."""

    name: str
    rows: list[np.ndarray] = field(default_factory=list)
    hit_labels: list[np.ndarray] = field(default_factory=list)
    should_answer: list[bool] = field(default_factory=list)
    answerable: list[bool] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


def evidence_run(name: str, questions: Iterable[LabelledQuestion], search: Callable[[str], list[SearchHit]],
                 stats: TermStats) -> EvidenceRun:
    """Search every question; label each judged hit by whether it is gold."""
    run = EvidenceRun(name)
    for q in questions:
        hits = search(q.question)[:EVIDENCE_DEPTH]
        labels = np.array([q.expect == "answer" and first_gold_rank([h], q.gold) == 1 for h in hits], dtype=bool)
        run.rows.append(features(q.question, hits, stats, depth=EVIDENCE_DEPTH))
        run.hit_labels.append(labels)
        run.should_answer.append(bool(labels.any()))
        run.answerable.append(q.expect == "answer")
        run.ids.append(q.id)
    return run


def train_evidence(runs: Sequence[EvidenceRun], *, use_dense: bool, off_topic: EvidenceRun | None) -> dict:
    """Fit P(hit answers) and choose the question-level thresholds on the training runs."""
    from sklearn.linear_model import LogisticRegression

    columns = [c for c in FEATURES if use_dense or c not in DENSE_FEATURES]
    index = [FEATURES.index(c) for c in columns]
    x = np.vstack([r for run in runs for r in run.rows if len(r)])[:, index]
    y = np.concatenate([lab for run in runs for lab in run.hit_labels if len(lab)])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000).fit((x - mean) / scale, y)
    judge = {"columns": columns, "coef": [round(float(v), 6) for v in model.coef_[0]],
             "intercept": round(float(model.intercept_[0]), 6), "mean": [round(float(v), 6) for v in mean],
             "scale": [round(float(v), 6) for v in scale], "threshold": 0.5, "strict_threshold": 0.5}

    fitted = EvidenceJudge.from_dict(judge)

    def best_per_question(run: EvidenceRun) -> np.ndarray:
        return np.array([float(fitted.probabilities(r).max()) if r.shape[0] else 0.0 for r in run.rows])

    best = {run.name: best_per_question(run) for run in runs}

    # One question-level threshold for all runs: the mean over runs of the balanced accuracy of
    # "answer when a judged hit is gold, else say so", so a large set does not outvote a small one.
    candidates = np.linspace(0.05, 0.95, 91)
    scored = []
    for t in candidates:
        per_run = []
        for run in runs:
            want = np.array(run.should_answer)
            answered = best[run.name] >= t
            parts = [answered[want].mean() if want.any() else None, (~answered[~want]).mean() if (~want).any()
                     else None]
            per_run.append(np.mean([p for p in parts if p is not None]))
        scored.append((float(np.mean(per_run)), -abs(t - 0.5), float(t)))
    judge["threshold"] = round(max(scored)[2], 4)
    strict = judge["threshold"]
    if off_topic is not None and off_topic.rows:
        worst = float(best_per_question(off_topic).max())
        strict = max(strict, min(0.95, worst + 0.05))
    judge["strict_threshold"] = round(strict, 4)
    return judge


RANKING_CANDIDATES = 30
"""Fused units read per training question: deeper than any ranker depth of the grid."""
RANKING_GRID = {"depth": (10, 20, 30), "c": (0.01, 0.1, 1.0)}
RANKING_FOLDS = 5


@dataclass
class RankingQuestion:
    """The fused candidates of one training question, as ranking features, and which of them are gold."""

    rows: np.ndarray
    gold: np.ndarray


def ranking_questions(questions: Iterable[LabelledQuestion], search: Callable[[str], list[SearchHit]],
                      stats: TermStats) -> list[RankingQuestion]:
    """Candidates of the questions with gold, searched without a ranker."""
    out = []
    for q in questions:
        if q.expect != "answer" or not q.gold:
            continue
        hits = search(q.question)[:RANKING_CANDIDATES]
        out.append(RankingQuestion(rank_features(q.question, hits, stats),
                                   np.array([first_gold_rank([h], q.gold) == 1 for h in hits], dtype=bool)))
    return out


def _pairs(questions: Sequence[RankingQuestion], depth: int, index: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Differences gold - other (label 1) and other - gold (label 0) within each question's first ``depth``."""
    x, y = [], []
    for q in questions:
        rows, gold = q.rows[:depth, index], q.gold[:depth]
        for p in np.flatnonzero(gold):
            for n in np.flatnonzero(~gold):
                x += [rows[p] - rows[n], rows[n] - rows[p]]
                y += [1, 0]
    return np.array(x).reshape(-1, len(index)), np.array(y)


def _fit_ranker(questions: Sequence[RankingQuestion], depth: int, c: float, columns: Sequence[str]) -> Ranker | None:
    from sklearn.linear_model import LogisticRegression

    index = [RANK_FEATURES.index(col) for col in columns]
    x, y = _pairs(questions, depth, index)
    if len(set(y)) < 2:
        return None
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, fit_intercept=False, max_iter=5000).fit(x / scale, y)
    return Ranker(columns=tuple(columns), coef=tuple(round(float(v), 6) for v in model.coef_[0]),
                  scale=tuple(round(float(v), 6) for v in scale), depth=depth)


def _mrr(questions: Sequence[RankingQuestion], ranker: Ranker | None) -> float:
    total = 0.0
    for q in questions:
        gold = q.gold
        if ranker is not None and len(gold) > 1:
            order = ranker.order(q.rows[: ranker.depth])
            gold = np.concatenate([gold[: ranker.depth][order], gold[ranker.depth:]])
        found = np.flatnonzero(gold[:10])
        total += 1.0 / (found[0] + 1) if len(found) else 0.0
    return total / len(questions) if questions else 0.0


def train_ranker(questions: Sequence[RankingQuestion], *, use_dense: bool) -> tuple[Ranker | None, dict]:
    """Choose depth and C by grouped cross-validation (MRR@10 out of fold), then fit on all training questions.

    Kept only when it beats the fused order out of fold; ``None`` otherwise.
    """
    columns = [c for c in RANK_FEATURES if use_dense or c not in DENSE_FEATURES]
    folds = [list(range(i, len(questions), RANKING_FOLDS)) for i in range(RANKING_FOLDS)]
    baseline = _mrr(questions, None)
    grid = []
    for depth in RANKING_GRID["depth"]:
        for c in RANKING_GRID["c"]:
            total = 0.0
            for fold in folds:
                held = set(fold)
                ranker = _fit_ranker([q for i, q in enumerate(questions) if i not in held], depth, c, columns)
                total += _mrr([questions[i] for i in fold], ranker) * len(fold)
            grid.append((round(float(total) / len(questions), 4), -depth, -c))
    best = max(grid)
    info = {"questions": len(questions), "fused_mrr": round(baseline, 4),
            "grid": [{"depth": -d, "c": -c, "cv_mrr": m} for m, d, c in grid],
            "chosen": {"depth": -best[1], "c": -best[2], "cv_mrr": best[0]}}
    if best[0] <= baseline:
        return None, info
    return _fit_ranker(questions, -best[1], -best[2], columns), info


def _procurement_act_available() -> bool:
    """The Netherlands procurement act lives in ../shared, beside the repo, not in it."""
    return AW_MANIFEST.exists() and (REPO.parent / "shared" / "data" / "aanbestedingswet-2012").exists()


# -- the command ------------------------------------------------------------------------------------------------


def build_index(home: Path, manifest: Path | None, embedder: Embedder, ranker: Ranker | None = None,
                params: FusionParams | None = None):
    """Index a manifest into ``home`` (incremental: re-runs reuse the embedding cache) and open a retriever."""
    from corpus.refresh import Refresher
    from retrieval.search import HybridRetriever
    from retrieval.store import GenerationStore
    from retrieval.vector_index import ChromaIndex

    vectors = ChromaIndex(path=home / "index" / "chroma")
    summary = Refresher(home=home, embedder=embedder, vectors=vectors).refresh(load_manifest(manifest, home=home))
    if summary.failed:
        raise CorpusError(f"indexing {manifest or 'the sample corpus'} failed: {summary.failed}")
    return HybridRetriever(store=GenerationStore(home / "index"), vectors=vectors, embedder=embedder, ranker=ranker,
                           params=params)


def train(embedder: Embedder, *, work: Path, independent: bool = False, say: Callable[[str], None] = print) -> dict:
    """Train the routing model for ``embedder`` (or the model-independent default) and return its JSON form."""
    started = time.monotonic()
    intent_questions = read_labelled(QUESTIONS / "intent.jsonl", label="intent")
    embed = None if independent else (lambda texts: np.vstack([embedder.embed_query(t) for t in texts]))
    dev = [q.question for q in intent_questions if q.split == "dev"]
    intent, intent_info = train_intent([*intent_questions, *retrieval_set_examples(exclude=dev)], embed)
    say(f"intent: {intent_info['train_questions']} train questions")
    say(f"intent: chose {intent_info['chosen']}, escalate threshold {intent.escalate_threshold:.3f}")

    sample = build_index(work / "sample", bundled_manifest_path(), embedder)
    from retrieval.search import FusionParams  # noqa: F811 - at run time, where retrievers are built

    # The ranker's candidates in the order it will reorder: fused, without the general rules moved first.
    aw = (build_index(work / "aanbestedingswet", AW_MANIFEST, embedder, params=FusionParams(general_first=False))
          if _procurement_act_available() else None)
    ranker, ranking_info = None, {}
    if aw is not None and not independent:
        # Learned on statute text, where the fused order fails most; candidates are read without a ranker.
        ranker, ranking_info = train_ranker(
            ranking_questions(read_labelled(QUESTIONS / "aanbestedingswet.jsonl"),
                              lambda q: aw.search(q, k=RANKING_CANDIDATES), aw.term_stats()),
            use_dense=True)
        say(f"ranking: chose {ranking_info['chosen']} (fused order {ranking_info['fused_mrr']})"
            + ("" if ranker else ", not better: no ranker"))
        # The evidence judge below learns from the fused order. Trained on the reordered statute hits instead, it
        # chose a stricter threshold that answered fewer questions on every set (docs/EVALUATION.md).
    sample_search = lambda q: sample.search(q, k=SEARCH_K, kinds=ANSWER_KINDS)  # noqa: E731
    coverage = [q for q in read_labelled(QUESTIONS / "coverage.jsonl") if q.split == "train"]
    decisions = [q for q in read_labelled(QUESTIONS / "decisions.jsonl") if q.expect in ("answer", "out_of_scope")]
    off_topic = [LabelledQuestion(q.id, q.question, "out_of_scope", split=q.split)
                 for q in intent_questions if q.expect == "off_topic" and q.split == "train"]
    runs = [evidence_run("coverage", coverage, sample_search, sample.term_stats()),
            evidence_run("decisions", decisions, sample_search, sample.term_stats())]
    off_run = evidence_run("off_topic", off_topic, sample_search, sample.term_stats())
    if aw is not None:
        aw_questions = read_labelled(QUESTIONS / "aanbestedingswet.jsonl")
        runs.append(evidence_run("aanbestedingswet", aw_questions, lambda q: aw.search(q, k=SEARCH_K),
                                 aw.term_stats()))
    else:
        say("evidence: ../shared not found, training without the procurement-act questions")
    evidence = train_evidence([*runs, off_run], use_dense=not independent, off_topic=off_run)
    say(f"evidence: threshold {evidence['threshold']}, off-topic threshold {evidence['strict_threshold']}")
    counts = {run.name: {"questions": len(run.rows), "should_answer": int(sum(run.should_answer))}
              for run in [*runs, off_run]}
    return {
        "embedder": "default" if independent else embedder.name,
        "trained": {"intent": intent_info, "evidence_sets": counts, "ranking": ranking_info,
                    "intent_classes": dict(Counter(q.expect for q in intent_questions if q.split == "train")),
                    "seconds": round(time.monotonic() - started, 1)},
        "intent": intent_to_dict(intent),
        "evidence": evidence,
        "ranking": ranker_to_dict(ranker),
    }


def ranker_to_dict(ranker: Ranker | None) -> dict | None:
    """The ``ranking`` part of a model file."""
    if ranker is None:
        return None
    return {"columns": list(ranker.columns), "coef": list(ranker.coef), "scale": list(ranker.scale),
            "depth": ranker.depth}


# -- the report -------------------------------------------------------------------------------------------------


def _service(retriever, model: RoutingModel, embedder: Embedder):
    from bot.audit import AuditLog
    from bot.conversation import ConversationMemory
    from bot.core import HelpdeskService, NoEscalation
    from bot.policy import load_rules
    from bot.routing import Router

    return HelpdeskService(retriever=retriever, audit=AuditLog("sqlite://", key=b"report"),
                           escalator=NoEscalation(), memory=ConversationMemory(), rules=load_rules(),
                           router=Router(model, embed=embedder.embed_query))


def _replies(service, questions: Sequence[LabelledQuestion]):
    from bot.messages import Incoming

    for n, q in enumerate(questions):
        yield q, service.handle(Incoming(channel="report", conversation_id=f"r{n}", user_id="r", text=q.question))


def _gold_cited(reply, q: LabelledQuestion, hits_by_chunk, *, first_only: bool = False) -> bool:
    citations = reply.citations[:1] if first_only else reply.citations
    return any(first_gold_rank([hits_by_chunk[c.chunk_id]], q.gold) == 1 for c in citations
               if c.chunk_id in hits_by_chunk)


class _Recording:
    """Wraps a retriever and remembers the hits it returned, so citations can be matched to gold."""

    def __init__(self, retriever) -> None:
        self._retriever = retriever
        self.seen: dict[str, SearchHit] = {}

    def search(self, query: str, *, k: int = 10, mode: str = "hybrid", kinds=None) -> list[SearchHit]:
        hits = self._retriever.search(query, k=k, mode=mode, kinds=kinds)
        for h in hits:
            self.seen[h.passage.id] = h
        return hits

    def term_stats(self) -> TermStats:
        return self._retriever.term_stats()


def decision_report(service, recording: _Recording, questions: Sequence[LabelledQuestion]) -> dict:
    """Per expected class: how many got each decision, and for answers whether a gold source was cited."""
    table: dict[str, Counter] = {}
    answered = cited = first = 0
    rows = []
    for q, reply in _replies(service, questions):
        decision = str(reply.decision)
        table.setdefault(q.expect, Counter())[decision] += 1
        gold_cited = gold_first = None
        if q.gold and reply.decision.value == "answer":
            answered += 1
            gold_cited = _gold_cited(reply, q, recording.seen)
            gold_first = _gold_cited(reply, q, recording.seen, first_only=True)  # the source the answer quotes
            cited += gold_cited
            first += gold_first
        rows.append({"id": q.id, "expect": q.expect, "decision": decision, "gold_cited": gold_cited,
                     "gold_first": gold_first, "citations": len(reply.citations)})
    with_gold = sum(1 for q in questions if q.gold)
    return {"questions": len(questions), "decisions": {k: dict(v) for k, v in sorted(table.items())},
            "with_gold": with_gold, "answered_with_gold": answered,
            "answered_share": round(answered / with_gold, 3) if with_gold else None,
            "gold_cited_among_answered": round(cited / answered, 3) if answered else None,
            "gold_first_among_answered": round(first / answered, 3) if answered else None, "rows": rows}


def intent_report(model: RoutingModel, embedder: Embedder, questions: Sequence[LabelledQuestion]) -> dict:
    """Confusion matrix (expected x predicted) of the intent model alone, and of the precise rules plus model."""
    from bot.policy import load_rules
    from bot.routing import Router

    router = Router(model, embed=embedder.embed_query)
    rules = load_rules()
    model_only: dict[str, Counter] = {}
    routed: dict[str, Counter] = {}
    for q in questions:
        predicted = str(router.intent(q.question).intent)
        model_only.setdefault(q.expect, Counter())[predicted] += 1
        if rules.asks_for_expert(q.question):
            final = "person"
        elif rules.legal_match(q.question):
            final = "own_case"
        elif rules.is_vague(q.question):
            final = "vague"
        else:
            final = predicted
        routed.setdefault(q.expect, Counter())[final] += 1
    escalating = {"own_case", "person"}

    def recall(table: dict[str, Counter]) -> float | None:
        total = sum(sum(table.get(c, Counter()).values()) for c in escalating)
        hit = sum(table.get(c, Counter())[p] for c in escalating for p in escalating)
        return round(hit / total, 3) if total else None

    def wrongly_escalated(table: dict[str, Counter]) -> float | None:
        info = table.get("information", Counter())
        total = sum(info.values())
        return round(sum(info[p] for p in escalating) / total, 3) if total else None

    return {"questions": len(questions),
            "model": {"confusion": {k: dict(v) for k, v in sorted(model_only.items())},
                      "escalation_recall": recall(model_only), "information_escalated": wrongly_escalated(model_only)},
            "routed": {"confusion": {k: dict(v) for k, v in sorted(routed.items())},
                       "escalation_recall": recall(routed), "information_escalated": wrongly_escalated(routed)}}


def report(model: RoutingModel, embedder: Embedder, *, work: Path, legalqa: bool = False) -> dict:
    """Every routing number of docs/EVALUATION.md, per split."""
    out: dict = {"embedder": embedder.name}
    intent_questions = read_labelled(QUESTIONS / "intent.jsonl", label="intent")
    for split in ("train", "dev"):
        out[f"intent_{split}"] = intent_report(model, embedder, [q for q in intent_questions if q.split == split])
    sample = _Recording(build_index(work / "sample", bundled_manifest_path(), embedder, model.ranker))
    service = _service(sample, model, embedder)
    coverage = read_labelled(QUESTIONS / "coverage.jsonl")
    for split in ("train", "dev"):
        out[f"coverage_{split}"] = decision_report(service, sample, [q for q in coverage if q.split == split])
        off = [LabelledQuestion(q.id, q.question, q.expect, split=q.split) for q in intent_questions
               if q.split == split]
        out[f"intent_end_to_end_{split}"] = decision_report(service, sample, off)
    out["decisions"] = decision_report(service, sample, read_labelled(QUESTIONS / "decisions.jsonl"))
    shared = REPO.parent / "shared" / "data"
    if _procurement_act_available():
        aw = _Recording(build_index(work / "aanbestedingswet", AW_MANIFEST, embedder, model.ranker))
        aw_service = _service(aw, model, embedder)
        out["aanbestedingswet_train"] = decision_report(aw_service, aw,
                                                         read_labelled(QUESTIONS / "aanbestedingswet.jsonl"))
        held_out = QUESTIONS / "aanbestedingswet-dev.jsonl"
        if held_out.exists():
            out["aanbestedingswet_dev"] = decision_report(aw_service, aw, read_labelled(held_out))
    if legalqa and (shared / "legalqa-nl").exists():
        lqa = _Recording(build_index(work / "legalqa", REPO / "bench" / "manifests" / "legalqa.yaml", embedder,
                                     model.ranker))
        out["legalqa_dev"] = decision_report(_service(lqa, model, embedder), lqa,
                                             read_labelled(shared / "legalqa-nl" / "questions-dev.jsonl",
                                                           default_split="dev"))
    return out
