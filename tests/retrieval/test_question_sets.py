"""The shipped evaluation sets stay consistent with the corpora they are scored against."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from bot.intent import Intent
from corpus.loaders.bwb import load_bwb_xml
from retrieval.evaluation import read_questions
from tests.conftest import REPO, shared_path

QUESTIONS = REPO / "bench" / "questions"


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (QUESTIONS / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _dev_by_group(group: str) -> bool:
    return int(hashlib.sha1(group.encode()).hexdigest(), 16) % 10 < 3


@pytest.mark.parametrize("name", ["aanbestedingswet.jsonl", "aanbestedingswet-dev.jsonl"])
def test_every_gold_article_of_the_in_domain_sets_exists_in_the_act(name: str) -> None:
    xml = shared_path("data", "aanbestedingswet-2012", "BWBR0032203_2022-03-02_0.xml")
    [doc] = load_bwb_xml(xml.read_bytes(), name=xml.name)
    labels = {s.label.lower() for s in doc.sections if s.label}
    questions = read_questions(QUESTIONS / name)
    assert len(questions) >= 80
    assert len({q.id for q in questions}) == len(questions)
    for q in questions:
        assert q.gold, q.id
        for gold in q.gold:
            assert gold.lower().replace("artikel", "art.") in labels, (q.id, gold)


def test_the_held_out_act_questions_do_not_repeat_the_tuned_ones() -> None:
    tuned = {q.question.lower() for q in read_questions(QUESTIONS / "aanbestedingswet.jsonl")}
    assert not tuned & {q.question.lower() for q in read_questions(QUESTIONS / "aanbestedingswet-dev.jsonl")}


def test_the_intent_set_has_the_size_mix_and_split_routing_is_trained_on() -> None:
    rows = _rows("intent.jsonl")
    assert len(rows) >= 400 and len({r["id"] for r in rows}) == len(rows)
    assert {r["intent"] for r in rows} == {str(i) for i in Intent}
    assert sum(r["lang"] == "fr" for r in rows) / len(rows) >= 0.15
    tags = Counter(t for r in rows for t in r["tags"])
    assert tags["typo"] >= 40 and tags["long"] >= 40 and tags["dispute_term"] >= 30
    for r in rows:  # the split follows the group, so paraphrases never straddle it
        assert r["split"] == ("dev" if _dev_by_group(r["group"]) else "train"), r["id"]
    groups = {}
    for r in rows:
        groups.setdefault(r["group"], set()).add(r["split"])
    assert all(len(splits) == 1 for splits in groups.values())


def _sample_heading_keys() -> set[str]:
    keys = set()
    for path in Path(REPO / "corpus" / "sample").glob("*/*.md"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("## "):
                keys.add(re.split(r",|\s\(", line[3:].strip(), maxsplit=1)[0])
    return keys


def test_coverage_gold_names_sections_of_the_sample_corpus() -> None:
    rows = _rows("coverage.jsonl")
    keys = _sample_heading_keys()
    assert sum(r["expect"] == "not_found" for r in rows) >= 80
    for r in rows:
        assert r["expect"] in ("answer", "not_found"), r["id"]
        assert bool(r["gold"]) is (r["expect"] == "answer"), r["id"]
        assert set(r["gold"]) <= keys, (r["id"], set(r["gold"]) - keys)
        assert r["split"] == ("dev" if _dev_by_group(r["group"]) else "train"), r["id"]
