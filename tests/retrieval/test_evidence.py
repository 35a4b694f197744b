"""Evidence features: what an officer would check before calling a passage an answer."""

from __future__ import annotations

import pytest

from retrieval.evidence import FEATURES, EvidenceJudge, TermStats, asked_types, features, topic_tokens
from retrieval.types import Chunk, SearchHit


def _hit(text: str, heading: str = "Sectie", rank: int = 1) -> SearchHit:
    chunk = Chunk(id=f"s:{rank}", source_id="s", doc_id=str(rank), unit_id=f"s:{rank}", title="Gids",
                  kind="guidance", text=text, content_hash=str(rank), label=heading, heading_path=(heading,))
    return SearchHit(chunk=chunk, score=1.0 / rank, lexical_rank=rank, dense_rank=rank, dense_score=0.9)


OFFER = _hit("In een onderhandelingsprocedure dienen de kandidaten eerst een eerste offerte in.",
             "Hoe verloopt de onderhandeling?")
FACTUUR = _hit("Een opdracht bij aanvaarde factuur kan tot 30.000 euro exclusief btw.", "Aanvaarde factuur")
STATS = TermStats.from_chunks([OFFER.chunk, FACTUUR.chunk, _hit("De termijn bedraagt tien dagen.", rank=3).chunk])


def _row(question: str, hit: SearchHit) -> dict[str, float]:
    return dict(zip(FEATURES, features(question, [hit], STATS)[0]))


def test_a_shared_procurement_word_is_not_coverage_of_the_question() -> None:
    # "offerte" is shared; "ondertekenen", the thing asked, occurs nowhere in the corpus and weighs most.
    row = _row("Wie moet de offerte ondertekenen?", OFFER)
    assert row["plain_coverage"] == 0.5
    assert row["coverage"] < 0.5
    assert row["missing_idf"] == pytest.approx(1.0)


def test_equivalent_terms_count_as_covered() -> None:
    statute = _hit("De inschrijving wordt onderzocht op een abnormaal lage prijs.", "Artikel 2.116")
    stats = TermStats.from_chunks([statute.chunk])
    row = dict(zip(FEATURES, features("abnormaal lage offerte", [statute], stats)[0]))
    assert row["plain_coverage"] == 1.0  # "offerte" found as "inschrijving" (retrieval/data/terminology.yaml)


def test_a_french_question_is_covered_by_the_dutch_terms_of_a_unit() -> None:
    # The corpus is Dutch: without the French terms of the terminology, every word of a French question would
    # be a topic word no unit covers, and French questions would never be answered.
    unit = _hit("Een innovatiepartnerschap gebruik je voor een oplossing die nog niet op de markt bestaat.",
                "Wanneer mag ik een innovatiepartnerschap gebruiken?")
    stats = TermStats.from_chunks([unit.chunk])
    row = dict(zip(FEATURES, features("Quand puis-je recourir à un partenariat d'innovation ?", [unit], stats)[0]))
    assert row["plain_coverage"] == 1.0
    assert row["heading_coverage"] == 1.0


def test_french_function_words_are_no_topic_of_a_french_question_only() -> None:
    from retrieval.evidence import topic_tokens
    from retrieval.lexical import analyse

    french = topic_tokens("Puis-je passer un marché par facture acceptée ?")
    assert french == analyse("passer marché facture acceptée")
    # "pas" is a French function word and a Dutch one ("pas na", "passen"): it stays a topic of a Dutch question.
    assert "pas" in topic_tokens("Mag ik pas na de wachttermijn sluiten?")
    # Two different French function words make a question French; "et cetera", "de les" and "des te" are Dutch.
    assert "pas" in topic_tokens("Zijn er geen passende offertes, et cetera, en wat is de les over des te hogere "
                                 "prijzen?")
    assert "pas" in topic_tokens("Is het een rendez-vous bij de notaris als ik pas later teken?")


def test_a_french_term_with_function_words_is_covered_through_its_dutch_term() -> None:
    unit = _hit("De opdrachtdocumenten vermelden de gunningscriteria.", "Opdrachtdocumenten")
    stats = TermStats.from_chunks([unit.chunk])
    row = dict(zip(FEATURES, features("Quel est le cahier des charges ?", [unit], stats)[0]))
    assert row["plain_coverage"] == 1.0


def test_an_amount_asked_needs_an_amount_in_the_unit() -> None:
    assert [t.name for t in asked_types("Tot welk bedrag volstaat een aanvaarde factuur?")] == ["amount"]
    assert _row("Tot welk bedrag volstaat een aanvaarde factuur?", FACTUUR)["type_missing"] == 0.0
    assert _row("Hoeveel bedraagt de premie in een onderhandelingsprocedure?", OFFER)["type_missing"] == 1.0


def test_a_period_or_a_count_asked_needs_one_in_the_unit() -> None:
    assert [t.name for t in asked_types("Hoe lang duurt de wachttermijn?")] == ["period"]
    assert [t.name for t in asked_types("Hoeveel kandidaten moet ik uitnodigen?")] == ["count"]
    assert _row("Hoeveel dagen duurt de onderhandeling?", OFFER)["type_missing"] == 1.0
    three = _hit("Nodig minstens drie kandidaten uit.", "Kandidaten")
    assert _row("Hoeveel kandidaten moet ik uitnodigen?", three)["type_missing"] == 0.0


def test_article_numbers_and_dates_are_no_limit() -> None:
    # A statute unit is full of numbers that answer nothing: its own article, paragraphs and the act's date.
    question = "Hoeveel keer mag ik de opdracht maximaal verlengen?"
    assert [t.name for t in asked_types(question)] == ["limit"]
    references = _hit("Art. 40. § 2. Zoals bepaald in de wet van 17 juni 2016 en artikel 2.116, lid 3, sinds 2017, "
                      "kan de opdracht worden verlengd.", "Artikel 40")
    assert _row(question, references)["type_missing"] == 1.0
    limit = _hit("De opdracht kan maximaal 3 keer worden verlengd (art. 40).", "Artikel 40")
    assert _row(question, limit)["type_missing"] == 0.0


def test_a_year_the_unit_does_not_mention_is_missing() -> None:
    amounts = _hit("Voor 2024-2025 bedraagt de drempel 221.000 euro.", "Drempels")
    assert _row("Welke drempel geldt in 2026?", amounts)["year_missing"] == 1.0
    assert _row("Welke drempel geldt in 2024?", amounts)["year_missing"] == 0.0


def test_question_words_are_not_topics() -> None:
    assert topic_tokens("Wanneer mag ik welke procedure gebruiken?") == ["procedur", "bruik"]  # Snowball stems


def test_the_judge_reads_only_known_columns_and_scores_in_order() -> None:
    data = {"columns": ["coverage"], "coef": [4.0], "intercept": -1.0, "mean": [0.0], "scale": [1.0],
            "threshold": 0.5, "strict_threshold": 0.8}
    judge = EvidenceJudge.from_dict(data)
    rows = features("Tot welk bedrag volstaat een aanvaarde factuur?", [FACTUUR, OFFER], STATS)
    high, low = judge.probabilities(rows)
    assert high > 0.5 > low
    with pytest.raises(ValueError, match="unknown evidence feature"):
        EvidenceJudge.from_dict({**data, "columns": ["vibes"]})
