"""The extractive composer: the best unit first, whole sentences in order, lists with their introduction."""

from __future__ import annotations

from retrieval.answer import MAX_QUOTE_CHARS, Block, blocks, compose, quote, split_sentences
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


def test_a_heading_that_asks_a_french_question_in_dutch_leads() -> None:
    near = _hit("Het innovatiepartnerschap begint met een aankondiging.", "Hoe verloopt de selectie?", score=1.0)
    faq = _hit("Wanneer de oplossing nog niet op de markt bestaat.", "Wanneer mag ik een innovatiepartnerschap "
               "gebruiken?", score=0.9, n=2)
    answer = compose("Quand puis-je recourir à un partenariat d'innovation ?", [near, faq], probabilities=[0.8, 0.7])
    assert answer.sources == (faq, near)


def test_without_a_heading_match_the_most_likely_answer_leads() -> None:
    a, b = _hit("Tekst a.", "Over a", n=1), _hit("Tekst b.", "Over b", score=0.95, n=2)
    assert compose("Iets gevraagd?", [a, b], probabilities=[0.3, 0.9]).sources[0] is b
    assert compose("Iets gevraagd?", [a, b]).sources[0] is a


def test_a_unit_of_headings_only_is_still_shown() -> None:
    assert quote(_hit("## Drempels", "Iets anders"), "Welke drempels?") == "## Drempels"


def _record(n: int, text: str) -> Chunk:
    return Chunk(id=f"r:{n}:art:0", source_id="r", doc_id=f"DOC{n}", unit_id="r:art", title="Wet", kind="legislation",
                 text=text, content_hash=f"r{n}", label="Artikel 7")


def test_text_in_lower_case_splits_into_sentences_but_not_after_abbreviations() -> None:
    assert split_sentences("de raad beslist. het college voert het plan. zie bijv. de wet. o.a. het college.") == [
        "de raad beslist.", "het college voert het plan.", "zie bijv. de wet. o.a. het college."]


def test_a_long_unit_is_quoted_from_the_passage_that_matched_not_a_row_that_shares_more_words() -> None:
    rounds = ("alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima")
    wordy = " ".join(f"de aanvraag van de vergunning wordt door het college behandeld in ronde {r}." for r in rounds)
    rows = (_record(1, wordy), _record(2, "het college kan de vergunning weigeren indien de aanvrager onjuiste "
                                          "gegevens verstrekte. de weigering wordt gemotiveerd."),
            _record(3, wordy))
    hit = SearchHit(chunk=rows[0], score=1.0, matched=rows[1], unit=rows)
    shown = quote(hit, "Wanneer kan het college de aanvraag van een vergunning weigeren?")
    assert shown.startswith("… het college kan de vergunning weigeren indien")


def test_an_enormous_sentence_is_cut_after_a_list_point_and_marked_once() -> None:
    points = "; ".join(f"de aanvrager onder punt {i} een verklaring van goed gedrag overlegt" for i in range(40))
    shown = quote(_hit(f"De vergunning wordt verleend indien: {points}. Daarna volgt de rest.", "Art. 3"),
                  "Wanneer wordt de vergunning verleend?")
    assert shown.endswith("overlegt; …") and shown.count("…") == 1
    assert len(shown) <= MAX_QUOTE_CHARS + 2


def test_a_hit_beyond_the_judged_three_leads_when_its_heading_asks_the_question() -> None:
    # The FAQ entry that is the question came fifth: its short answer shares fewer words than the long sections.
    sections = [_hit(f"Het innovatiepartnerschap in stap {n}: aankondiging, selectie en onderhandeling.",
                     f"Stap {n} van het innovatiepartnerschap", score=1.0 - n / 20, n=n) for n in range(1, 5)]
    faq = _hit("Als de oplossing nog niet op de markt bestaat en je ze ook wil aankopen.",
               "Wanneer mag ik een innovatiepartnerschap gebruiken?", score=0.75, n=9)
    answer = compose("Wanneer mag ik een innovatiepartnerschap gebruiken?", [*sections, faq],
                     probabilities=[0.9, 0.8, 0.7])
    assert answer.sources[0] is faq and answer.quote.startswith("Als de oplossing")
    assert answer.sources[1:] == tuple(sections[:2])  # the references are still the best of the rest
    weak = _hit(faq.chunk.text, faq.chunk.label, score=0.2, n=10)  # far below the others: not a lead
    assert compose("Wanneer mag ik een innovatiepartnerschap gebruiken?", [*sections, weak],
                   probabilities=[0.9, 0.8, 0.7]).sources[0] is sections[0]


def test_a_long_unit_whose_heading_asks_the_question_is_quoted_from_its_first_step() -> None:
    filler = "Hier gebeurt van alles dat bij deze stap hoort. " * 4
    steps = "\n".join(f"{n}. Stap {n}. " + ("De concurrentiegerichte dialoog verloopt in fasen. " if n == 5 else "")
                      + filler for n in range(1, 8))
    unit = _hit(steps, "Hoe verloopt een concurrentiegerichte dialoog?")
    question = "Hoe verloopt een concurrentiegerichte dialoog?"
    answer = compose(question, [unit], probabilities=[0.9])
    assert answer.quote.startswith("1. Stap 1.") and answer.quote.endswith("…")  # step 1, not the best row
    assert quote(unit, question).startswith("… 5. Stap 5.")  # without the heading's say: from where it matches


def test_the_sentence_that_states_the_rule_is_quoted_rather_than_a_short_one_repeating_a_few_words() -> None:
    # Lid 1 (its list flattened into one sentence, as lower-case records have it) says all the question asks;
    # a later short sentence only repeats "buiten behandeling stellen".
    points = "; ".join((
        "de aanvrager de gevraagde inlichtingen over zijn inkomen niet binnen twee weken aanvult",
        "hij zonder geldige reden niet verschijnt op het gesprek met de ambtenaar",
        "zijn woonadres onbekend blijkt na een onderzoek in het bevolkingsregister",
        "de leges na een herinnering onbetaald blijven",
        "een vertaling van buitenlandse stukken ontbreekt ondanks een verzoek daartoe",
        "hij het land heeft verlaten zonder een contactpersoon op te geven",
        "de medische keuring door zijn toedoen niet kon plaatsvinden",
        "hij over zijn identiteit of nationaliteit een onware verklaring heeft afgelegd",
        "de aanvraag niet is ondertekend door de aanvrager of zijn wettelijke vertegenwoordiger"))
    rule = ("een aanvraag tot verlenging van de vergunning voor bepaalde tijd kan buiten behandeling worden "
            f"gesteld, indien: {points}.")
    rest = " ".join(f"de aanvrager ontvangt in geval {i} een bericht van het college." for i in range(12))
    text = f"{rule} het besluit buiten behandeling te stellen, geldt als afwijzing. {rest}"
    assert len(text) > MAX_QUOTE_CHARS and len(rule) > MAX_QUOTE_CHARS * 0.6
    shown = quote(SearchHit(chunk=_record(1, text), score=1.0),
                  "Wanneer kan een vergunning voor bepaalde tijd buiten behandeling worden gesteld?")
    assert shown.startswith("een aanvraag tot verlenging van de vergunning")


def test_a_long_sentence_that_does_not_fit_whole_is_shown_up_to_a_list_point_rather_than_left_out() -> None:
    points = "; ".join(f"de ouders onder punt {i} in staat zijn de taken van het budget zelf uit te voeren"
                       for i in range(16))
    text = f"het college verstrekt een budget als de ouders dit wensen. een budget wordt verstrekt, indien: {points}."
    assert len(text) > MAX_QUOTE_CHARS
    shown = quote(SearchHit(chunk=_record(1, text), score=1.0), "Wanneer wordt een budget verstrekt?")
    assert shown.startswith("het college verstrekt een budget als de ouders dit wensen. een budget wordt verstrekt, "
                            "indien: de ouders onder punt 0")
    assert shown.endswith("uit te voeren; …") and shown.count("…") == 1 and len(shown) <= MAX_QUOTE_CHARS + 2


def test_a_citation_of_an_official_journal_does_not_end_a_sentence() -> None:
    assert split_sentences("het verdrag van genève (Trb. 1981, 239). de vergunning geldt vijf jaar. zie Stb. 2012, "
                           "nr. 3 en B.S. 14 juli 2016.") == [
        "het verdrag van genève (Trb. 1981, 239).", "de vergunning geldt vijf jaar.",
        "zie Stb. 2012, nr. 3 en B.S. 14 juli 2016."]


def _article(text: str) -> SearchHit:
    chunk = Chunk(id="w:art:0", source_id="w", doc_id="w", unit_id="w:art", title="Wet", kind="legislation",
                  text=text, content_hash="w", label="art. 2.28")
    return SearchHit(chunk=chunk, score=1.0)


LATER_PARAGRAPHS = "\n".join(f"{n}. De dienst maakt in geval {n} een verslag op dat de keuze motiveert en bewaart "
                             "het bij de stukken van de opdracht." for n in range(2, 12))


def test_a_point_of_a_nested_list_is_quoted_with_the_introductions_it_belongs_to() -> None:
    text = ("1. De aanbestedende dienst kan in de volgende gevallen de concurrentiegerichte dialoog toepassen:\n"
            "a. voor werken of diensten die aan een of meer van de volgende criteria voldoen:\n"
            "1°. de behoefte kan niet worden vervuld met oplossingen die al beschikbaar zijn;\n"
            "2°. het gaat om ontwerp- of innovatieve oplossingen;\n"
            "3°. de opdracht kan wegens de juridische en financiële risico's niet zonder onderhandelingen worden "
            "gegund;\n"
            "b. voor opdrachten waarop alleen onregelmatige inschrijvingen zijn ingediend.\n" + LATER_PARAGRAPHS)
    assert len(text) > MAX_QUOTE_CHARS
    shown = quote(_article(text), "Mag het bij juridische en financiële risico's zonder onderhandelingen?")
    lines = shown.splitlines()
    assert lines[0].startswith("1. De aanbestedende dienst kan in de volgende gevallen")
    assert lines[1].startswith("a. voor werken of diensten") and lines[4].startswith("3°. de opdracht kan")


def test_a_later_paragraph_is_not_read_as_a_point_of_the_list_the_first_paragraph_introduces() -> None:
    # Lid 1 without a number, as some acts print it: its introduction still belongs to its points only.
    text = ("Een ondernemer toont zijn financiële draagkracht aan met een of meer van de volgende middelen:\n"
            + "\n".join(f"{letter}. een verklaring van de bank over het jaar {year} met de cijfers van de omzet en "
                        "de winst van de onderneming," for letter, year in zip("abcdefg", range(2015, 2022)))
            + "\n2. De dienst vermeldt in de aankondiging welke bewijsstukken gevraagd worden.\n"
            "3. Kan de ondernemer om gegronde redenen de gevraagde jaarrekeningen niet voorleggen, dan mag hij andere "
            "bescheiden gebruiken.\n" + LATER_PARAGRAPHS)
    shown = quote(_article(text), "Wat als de ondernemer de gevraagde jaarrekeningen niet kan voorleggen?")
    assert shown.startswith("… ") and "volgende middelen:" not in shown and "3. Kan de ondernemer" in shown
    numbered = "1. " + text
    assert "volgende middelen:" not in quote(_article(numbered), "Wat als de ondernemer de gevraagde jaarrekeningen "
                                                                 "niet kan voorleggen?")


def test_the_points_of_a_later_paragraph_belong_to_its_introduction_not_to_the_first_one() -> None:
    # Lid 1 is unnumbered and has points a. and b. before lid 2 brings the first paragraph number.
    points = "\n".join(f"{letter}. de inschrijver in geval {n} een verklaring over het jaar {2010 + n} niet tijdig "
                       "overlegt;" for n, letter in enumerate("abcdefghij"))
    text = ("Een ondernemer toont zijn draagkracht aan met de volgende middelen:\na. een bankverklaring;\n"
            "b. de jaarrekening.\n2. De dienst weigert de inschrijving indien:\n" + points
            + "\nk. de inschrijver de waarborg na een herinnering niet stort.\n" + LATER_PARAGRAPHS)
    shown = quote(_article(text), "Wat als de inschrijver de waarborg na een herinnering niet stort?")
    assert shown.startswith("2. De dienst weigert de inschrijving indien:\n…\nk. de inschrijver de waarborg")


def test_an_introduction_in_lower_case_is_found_for_its_points() -> None:
    points = "\n".join(f"{letter}. de aanvrager in geval {n} geen bewijs van zijn inkomen over het jaar voorlegt;"
                       for n, letter in enumerate("abcdefghijkl"))
    text = ("de dienst stelt vooraf een dossier samen met de stukken van de aanvraag en het advies van de commissie.\n"
            "de aanvraag wordt afgewezen indien:\n" + points + "\nm. de aanvrager de leges na een herinnering "
            "niet betaalt.\n" + LATER_PARAGRAPHS)
    shown = quote(_article(text), "Wat als de aanvrager de leges na een herinnering niet betaalt?")
    assert shown.startswith("de aanvraag wordt afgewezen indien:\n…\nm. de aanvrager de leges")


def test_the_tail_counts_the_introduction_shown_before_it_and_must_show_a_quarter() -> None:
    intro = ("De subsidie wordt verleend voor projecten die " + "aan alle eisen van het reglement voldoen en " * 18
             + "die:")
    items = "\n".join(f"- het project in fase {n} een verslag oplevert;" for n in range(30))
    point = "- de aanvrager een begroting voegt bij zijn aanvraag om subsidie voor het project."
    long = "; ".join(f"de aanvrager in geval {n} de kosten van het project verantwoordt" for n in range(40)) + "."
    shown = quote(_article(f"{intro}\n{items}\n{point}\nDaarnaast geldt: {long}"),
                  "Moet de aanvrager een begroting voegen bij zijn aanvraag om subsidie?")
    assert shown.startswith(intro) and len(shown) <= MAX_QUOTE_CHARS + 10
    after = "\n".join(f"- het project in fase {n} wordt na afloop door het college beoordeeld;" for n in range(30))
    window = quote(_article(f"{intro}\n{items}\n{point}\n{after}"),
                   "Moet de aanvrager een begroting voegen bij zijn aanvraag om subsidie?")
    assert window.startswith(intro) and point[2:] in window and len(window) <= MAX_QUOTE_CHARS + 10
    # A head of one short point is not worth showing: the quote ends before the long sentence instead.
    short = quote(_article("Het college beslist binnen dertig dagen over de aanvraag om subsidie. " * 12
                           + "\nDe subsidie wordt verleend indien: a; " + "de aanvrager voldoet " * 80 + "."),
                  "Wanneer beslist het college over de aanvraag om subsidie?")
    assert "indien: a;" not in short


def test_a_block_counts_by_the_words_in_the_part_that_can_be_shown() -> None:
    annex = "Bijlage bij de regeling met de lijst van " + "formulieren en modellen voor de dienst, " * 60
    text = (f"{annex}waaronder ook de termijn voor bezwaar.\nDe termijn voor bezwaar bedraagt zes weken.\n"
            + LATER_PARAGRAPHS)
    shown = quote(_article(text), "Hoe lang is de termijn voor bezwaar?")
    assert "De termijn voor bezwaar bedraagt zes weken." in shown


def test_a_word_ending_in_an_abbreviation_still_ends_a_sentence() -> None:
    assert split_sentences("het is een standaart. de wet geldt. zie art. 3 hier.") == [
        "het is een standaart.", "de wet geldt.", "zie art. 3 hier."]


def test_a_point_that_goes_on_after_a_line_break_stays_one_point() -> None:
    assert blocks("a. de inschrijver is uitgesloten,\nb. hij heeft een offerte ingediend,\nmits de voorwaarden "
                  "niet wezenlijk wijzigen.") == [
        Block("a. de inschrijver is uitgesloten,", 0, item=True, marker="a"),
        Block("b. hij heeft een offerte ingediend, mits de voorwaarden niet wezenlijk wijzigen.", 1, item=True,
              marker="a")]


def test_numbered_points_under_a_lettered_introduction_keep_it() -> None:
    cases = "\n".join(f"{n}) de aanvrager in geval {n} een verklaring over het jaar {2000 + n} niet overlegt;"
                      for n in range(1, 12))
    text = ("De aanvraag wordt afgewezen indien:\na. de aanvrager niet in de gemeente woont;\n"
            "b. de aanvrager in een van de volgende gevallen verkeert:\n" + cases
            + "\n12) de aanvrager de leges na een herinnering niet betaalt.\n" + LATER_PARAGRAPHS)
    shown = quote(_article(text), "Wat als de aanvrager de leges na een herinnering niet betaalt?")
    assert "b. de aanvrager in een van de volgende gevallen verkeert:\n…\n12) de aanvrager de leges" in shown


def test_an_introduction_too_long_to_show_beside_its_point_is_left_out() -> None:
    intro = "Het college kan " + "na advies van de commissie en de dienst en " * 40 + "beslissen dat:"
    point = "- de aanvrager een waarborg stort " + "die het college bepaalt en " * 40 + "binnen dertig dagen."
    shown = quote(_article(f"{intro}\n" + "\n".join(f"- punt {n} geldt;" for n in range(40)) + f"\n{point}"),
                  "Moet de aanvrager een waarborg storten?")
    assert shown.startswith("… • de aanvrager een waarborg") and len(shown) <= MAX_QUOTE_CHARS + 10
