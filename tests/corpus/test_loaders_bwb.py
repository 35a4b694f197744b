"""BWB toestand XML loader: articles, leden, lists, headings, anchors, expired articles."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from corpus.errors import SourceReadError
from corpus.loaders.bwb import load_bwb_xml

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "bwb" / "BWBR9999901_2024-01-01_0.xml"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
AW_DIR = SHARED / "data" / "aanbestedingswet-2012"
AW_XML = AW_DIR / "BWBR0032203_2022-03-02_0.xml"
AW_CSV = AW_DIR / "BWBR0032203_2022-03-02_0.csv"


@pytest.fixture(scope="module")
def fixture_doc():
    [doc] = load_bwb_xml(FIXTURE.read_bytes(), name=FIXTURE.name)
    return doc


def test_document_identity_comes_from_the_toestand(fixture_doc) -> None:
    assert fixture_doc.doc_id == "BWBR9999901"
    assert fixture_doc.title == "Wet proefaankopen"  # citeertitel, not the long intitule
    assert fixture_doc.effective_date == "2024-01-01"
    assert fixture_doc.url == "https://wetten.overheid.nl/BWBR9999901/2024-01-01"
    assert fixture_doc.language == "nl"


def test_one_article_section_per_article_in_force(fixture_doc) -> None:
    assert [s.label for s in fixture_doc.sections] == ["art. 1.1", "art. 2.1", "art. 2.2"]
    assert all(s.is_article for s in fixture_doc.sections)
    assert fixture_doc.warnings == ("1 expired articles skipped (art. 2.1a)",)


def test_heading_path_and_anchor_follow_the_structure(fixture_doc) -> None:
    art_11, art_21, _ = fixture_doc.sections
    assert art_11.heading_path == ("Hoofdstuk 1 Begripsbepalingen",)
    assert art_21.heading_path == ("Hoofdstuk 2 De proefaankoop", "Afdeling 2.1 Voorwaarden")
    assert art_21.anchor == "Hoofdstuk2_Afdeling2.1_Artikel2.1"


def test_leden_and_list_items_are_kept_on_their_own_lines(fixture_doc) -> None:
    art_21 = fixture_doc.sections[1]
    assert art_21.text.split("\n") == [
        "Artikel 2.1",
        "1. Een gemeente mag een proefaankoop doen zonder voorafgaande aankondiging indien:",
        "a. de waarde lager is dan het bedrag, genoemd in artikel 2.2;",
        "b. de testperiode niet langer duurt dan twaalf maanden.",
        "2. De gemeente maakt de uitkomst van de proefaankoop openbaar.",
    ]


def test_definitions_list_and_article_title_without_meta_data(fixture_doc) -> None:
    art_11, _, art_22 = fixture_doc.sections
    lines = art_11.text.split("\n")
    assert lines[0] == "Artikel 1.1"
    assert lines[2] == (
        "proefaankoop: een kleine aankoop waarmee een gemeente een nieuwe oplossing in de praktijk uitprobeert;"
    )
    assert "2023" not in art_11.text and "jci" not in art_11.text  # publication meta-data left out
    assert art_22.text == (
        "Artikel 2.2 Drempelbedrag\nHet drempelbedrag voor een proefaankoop is € 50.000, exclusief omzetbelasting."
    )


def test_given_url_is_kept() -> None:
    [doc] = load_bwb_xml(FIXTURE.read_bytes(), name="wet", url="https://example.org/wet")
    assert doc.url == "https://example.org/wet"


def test_malformed_xml_is_an_error_naming_the_source() -> None:
    with pytest.raises(SourceReadError, match=r"kapot\.xml: not well-formed XML"):
        load_bwb_xml(FIXTURE.read_bytes()[:500], name="kapot.xml")


def test_xml_that_is_not_bwb_is_an_error() -> None:
    with pytest.raises(SourceReadError, match="not a BWB toestand"):
        load_bwb_xml(b"<html><body><p>Artikel 1</p></body></html>", name="pagina.xml")


def test_xml_without_articles_is_an_error() -> None:
    with pytest.raises(SourceReadError, match="no articles"):
        load_bwb_xml(b'<toestand bwb-id="BWBR1"><wetgeving><citeertitel>Leeg</citeertitel></wetgeving></toestand>',
                     name="leeg.xml")


@pytest.fixture(scope="module")
def aanbestedingswet():
    if not AW_XML.exists():
        pytest.skip(f"shared data not found at {AW_XML} (place ../shared beside the repo)")
    [doc] = load_bwb_xml(AW_XML.read_bytes(), name=AW_XML.name)
    return doc


def test_real_act_has_every_article_in_force(aanbestedingswet) -> None:
    with AW_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 451
    expired = [r["artikel"] for r in rows if r["text"].strip().lower().startswith("vervallen")]
    assert len(expired) == 21
    in_force = ["art. " + r["artikel"].removeprefix("Artikel ") for r in rows if r["artikel"] not in expired]
    assert [s.label for s in aanbestedingswet.sections] == in_force  # 430, in document order
    assert aanbestedingswet.warnings[0].startswith("21 expired articles skipped (art. 2.4, art. 2.35")
    assert aanbestedingswet.title == "Aanbestedingswet 2012"
    assert aanbestedingswet.effective_date == "2022-03-02"


def test_real_act_innovation_partnership_article(aanbestedingswet) -> None:
    by_label = {s.label: s for s in aanbestedingswet.sections}
    art = by_label["art. 2.31a"]
    assert art.heading_path == (
        "Deel 2 Overheidsopdrachten en prijsvragen voor overheidsopdrachten",
        "Hoofdstuk 2.2 Procedures voor het plaatsen van opdrachten voor aanbestedende diensten",
        "Afdeling 2.2.1 Algemene procedures",
        "§ 2.2.1.6 Procedure van het innovatiepartnerschap",
    )
    assert art.anchor == "Deel2_Hoofdstuk2.2_Afdeling2.2.1_Paragraaf2.2.1.6_Artikel2.31a"
    assert art.text.startswith("Artikel 2.31a\nEen aanbestedende dienst kan de procedure van het innovatiepartnerschap")


def test_real_act_leden_and_lists(aanbestedingswet) -> None:
    art = {s.label: s for s in aanbestedingswet.sections}["art. 2.86"]
    lines = art.text.split("\n")
    assert lines[1].startswith("1. Een aanbestedende dienst sluit een gegadigde")
    assert lines[2].startswith("2. Voor de toepassing van het eerste lid")
    assert lines[3].startswith("a. deelneming aan een criminele organisatie")


def test_real_act_text_matches_the_flat_csv(aanbestedingswet) -> None:
    """Every word of each article in the reference CSV appears in the loaded article (no text lost)."""
    import re
    from collections import Counter

    with AW_CSV.open(encoding="utf-8", newline="") as handle:
        reference = {r["artikel"].removeprefix("Artikel "): r["text"] for r in csv.DictReader(handle)}
    for section in aanbestedingswet.sections:
        expected = Counter(re.findall(r"\w+", reference[section.label.removeprefix("art. ")].lower()))
        found = Counter(re.findall(r"\w+", section.text.lower()))
        assert not expected - found, section.label
