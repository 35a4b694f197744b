"""The shipped evaluation sets stay consistent with the corpora they are scored against."""

from __future__ import annotations

from corpus.loaders.bwb import load_bwb_xml
from retrieval.evaluation import read_questions
from tests.conftest import REPO, shared_path


def test_every_gold_article_of_the_in_domain_set_exists_in_the_act() -> None:
    xml = shared_path("data", "aanbestedingswet-2012", "BWBR0032203_2022-03-02_0.xml")
    [doc] = load_bwb_xml(xml.read_bytes(), name=xml.name)
    labels = {s.label.lower() for s in doc.sections if s.label}
    questions = read_questions(REPO / "bench" / "questions" / "aanbestedingswet.jsonl")
    assert len(questions) >= 40
    assert len({q.id for q in questions}) == len(questions)
    for q in questions:
        assert q.gold, q.id
        for gold in q.gold:
            assert gold.lower().replace("artikel", "art.") in labels, (q.id, gold)
