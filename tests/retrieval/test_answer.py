"""The extractive composer: the best unit first, whole sentences in order, lists with their introduction."""

from __future__ import annotations

from retrieval.answer import MAX_QUOTE_CHARS, blocks, compose, quote
from retrieval.types import Chunk, SearchHit


def _hit(text: str, label: str, *, score: float = 1.0, n: int = 1) -> SearchHit:
    chunk = Chunk(id=f"g:{n}:0", source_id="g", doc_id=str(n), unit_id=f"g:{n}", title="Gids", kind="guidance",
                  text=text, content_hash=str(n), label=label, heading_path=(label,))
    return SearchHit(chunk=chunk, score=score)


THRESHOLDS = _hit(
    "## Welke drempels gelden?\n"
    "Voor een lokaal bestuur gelden deze bedragen, telkens exclusief btw:\n"
    "- **lager dan 30.000 euro**: aanvaarde factuur;\n"
    "- **vanaf 221.000 euro**: Europese bekendmaking voor leveringen.\n"
    "Die bedragen veranderen om de twee jaar.", "Welke drempels gelden?")


def test_a_short_unit_is_quoted_whole_with_its_list_and_without_heading_or_markup() -> None:
    assert quote(THRESHOLDS, "Welke drempels gelden?") == (
        "Voor een lokaal bestuur gelden deze bedragen, telkens exclusief btw:\n"
        "• lager dan 30.000 euro: aanvaarde factuur;\n"
        "• vanaf 221.000 euro: Europese bekendmaking voor leveringen.\n"
        "Die bedragen veranderen om de twee jaar.")


def test_a_long_unit_is_cut_between_sentences_and_says_so() -> None:
    filler = " ".join(f"Zin {i} gaat over iets anders dan de vraag." for i in range(40))
    text = filler + " De wachttermijn bedraagt vijftien dagen na de kennisgeving. Daarna mag je sluiten. " + filler
    shown = quote(_hit(text, "Termijnen"), "Hoe lang duurt de wachttermijn?")
    assert "De wachttermijn bedraagt vijftien dagen na de kennisgeving." in shown
    assert shown.startswith("… ") and shown.endswith(" …") and len(shown) <= MAX_QUOTE_CHARS + 10
    body = shown.removeprefix("… ").removesuffix(" …")
    assert body[0].isupper() and body.endswith(".")  # whole sentences: no fragment at either end


def test_a_list_item_that_matches_is_shown_with_the_sentence_introducing_the_list() -> None:
    items = "\n".join(f"- punt {i}: iets over de procedure in geval {i};" for i in range(30))
    text = "Andere gronden zijn:\n" + items + "\n- dwingende spoed door onvoorziene omstandigheden."
    parts = blocks(text)
    assert parts[0].introduces and all(p.item for p in parts[1:])
    shown = quote(_hit(text, "Gronden"), "Mag dat bij dwingende spoed?")
    assert shown.startswith("Andere gronden zijn:\n…\n") and shown.endswith("omstandigheden.")


def test_article_numbering_is_kept() -> None:
    text = "Artikel 2.32\n1. Een aanbestedende dienst kan de procedure gebruiken.\n2. Dat geldt ook bij spoed."
    assert quote(_hit(text, "art. 2.32"), "Wanneer?") == (
        "1. Een aanbestedende dienst kan de procedure gebruiken.\n2. Dat geldt ook bij spoed.")


def test_the_section_whose_heading_asks_the_question_leads_and_the_others_are_references() -> None:
    near = _hit("Het innovatiepartnerschap begint met een aankondiging.", "Hoe verloopt de selectie?", score=1.0)
    faq = _hit("Wanneer de oplossing nog niet op de markt bestaat.", "Wanneer mag ik een innovatiepartnerschap "
               "gebruiken?", score=0.9, n=2)
    far = _hit("Iets heel anders.", "Subsidies", score=0.1, n=3)
    answer = compose("Wanneer mag ik een innovatiepartnerschap gebruiken?", [near, faq, far],
                     probabilities=[0.8, 0.7, 0.1])
    assert answer.sources == (faq, near)  # the far hit is below the score floor: not even a reference
    assert answer.quote == "Wanneer de oplossing nog niet op de markt bestaat."


def test_without_a_heading_match_the_most_likely_answer_leads() -> None:
    a, b = _hit("Tekst a.", "Over a", n=1), _hit("Tekst b.", "Over b", score=0.95, n=2)
    assert compose("Iets gevraagd?", [a, b], probabilities=[0.3, 0.9]).sources[0] is b
    assert compose("Iets gevraagd?", [a, b]).sources[0] is a


def test_a_unit_of_headings_only_is_still_shown() -> None:
    assert quote(_hit("## Drempels", "Iets anders"), "Welke drempels?") == "## Drempels"
