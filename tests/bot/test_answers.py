"""How the extractive answer names its sources (bot/answers.py): the lead line and the "Zie ook" lines."""

from __future__ import annotations

from bot.answers import lead, reference
from retrieval.types import Chunk, SearchHit


def _article(title: str, label: str) -> SearchHit:
    chunk = Chunk(id="w:1:0", source_id="w", doc_id="1", unit_id="w:1", title=title, kind="legislation",
                  text="1. Een aanbestedende dienst kan de procedure gebruiken.", content_hash="1", label=label)
    return SearchHit(chunk=chunk, score=1.0)


def test_an_article_is_named_with_its_law() -> None:
    hit = _article("Wet van 17 juni 2016 inzake overheidsopdrachten", "Artikel 38")
    assert lead(hit) == "Volgens Artikel 38 van Wet van 17 juni 2016 inzake overheidsopdrachten"
    assert reference(hit) == "Artikel 38 — Wet van 17 juni 2016 inzake overheidsopdrachten"


def test_a_title_that_already_names_the_article_does_not_say_it_twice() -> None:
    # Sources with one record per article carry the article in the title ("Wet ... Artikel 10").
    hit = _article("Wet openbaarheid van bestuur Artikel 10", "Artikel 10")
    assert lead(hit) == "Volgens Wet openbaarheid van bestuur Artikel 10"
    assert reference(hit) == "Wet openbaarheid van bestuur Artikel 10"


def test_a_number_at_the_end_of_a_title_is_not_taken_for_the_article() -> None:
    hit = _article("Decreet lokaal bestuur van 22 december 2017", "17")
    assert lead(hit) == "Volgens 17 van Decreet lokaal bestuur van 22 december 2017"


def test_a_see_also_line_of_the_law_the_lead_line_named_gives_only_the_article() -> None:
    # The lead line says "Volgens Wet openbaarheid van bestuur Artikel 10"; repeating the law name on every
    # "Zie ook" line only lengthens the reply (the sources under it name the law in full, with its link).
    lead_hit = _article("Wet openbaarheid van bestuur Artikel 10", "Artikel 10")
    same_law = _article("Wet openbaarheid van bestuur Artikel 7", "Artikel 7")
    other_law = _article("Participatiewet Artikel 7", "Artikel 7")
    assert reference(same_law, beside=lead_hit) == "Artikel 7"
    assert reference(other_law, beside=lead_hit) == "Participatiewet Artikel 7"
    # A law whose title does not carry the article (one source, one title for all its articles).
    act = _article("Aanbestedingswet 2012 (Nederland)", "art. 2.87a")
    assert reference(_article("Aanbestedingswet 2012 (Nederland)", "art. 2.86"), beside=act) == "art. 2.86"
    assert reference(_article("Gemeentewet", "art. 2.86"), beside=act) == "art. 2.86 — Gemeentewet"


def test_the_extractive_reply_names_the_law_once() -> None:
    from bot.answers import ExtractiveComposer

    first = _article("Wet openbaarheid van bestuur Artikel 10", "Artikel 10")
    second = _article("Wet openbaarheid van bestuur Artikel 7", "Artikel 7")
    body, cited = ExtractiveComposer().compose("Wanneer kan de procedure?", [first, second])
    assert cited == [first, second]
    assert body.count("Wet openbaarheid van bestuur") == 1
    assert body.endswith("Zie ook:\n[2] Artikel 7")
