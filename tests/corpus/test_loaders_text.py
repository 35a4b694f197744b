"""Markdown and plain-text loaders: headings, front matter, decoding, the real position paper."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.errors import SourceReadError
from corpus.loaders.text import decode_text, github_slug, load_markdown, load_text

TEXT = Path(__file__).resolve().parents[1] / "fixtures" / "text"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
PAPER = SHARED / "seeds" / "000_d144577ad6d8663c.txt"


def test_markdown_front_matter_gives_title_url_date_and_language() -> None:
    [doc] = load_markdown((TEXT / "marktconsultatie.md").read_bytes(), name="notes/marktconsultatie.md",
                          url="file:///notes/marktconsultatie.md", title="Genegeerd")
    assert doc.title == "Marktconsultatie in vijf stappen"
    assert doc.url == "https://kennisbank.example.be/marktconsultatie"
    assert doc.effective_date == "2024-05-01"
    assert doc.language == "nl"
    assert doc.doc_id == "notes/marktconsultatie"


def test_markdown_headings_become_sections_with_path_label_and_slug() -> None:
    [doc] = load_markdown((TEXT / "marktconsultatie.md").read_bytes(), name="marktconsultatie.md")
    assert [(s.label, s.heading_path, s.anchor) for s in doc.sections] == [
        (None, (), None),
        ("Waarom een marktconsultatie?", ("Marktconsultatie",), "waarom-een-marktconsultatie"),
        ("Stap 1: de behoefte beschrijven", ("Marktconsultatie", "Stappen"), "stap-1-de-behoefte-beschrijven"),
        ("Stap 2: de markt uitnodigen", ("Marktconsultatie", "Stappen"), "stap-2-de-markt-uitnodigen"),
        ("Kosten", ("Marktconsultatie",), "kosten"),
        ("Kosten", ("Marktconsultatie",), "kosten-1"),
    ]
    assert doc.sections[0].text == "Deze nota helpt aankopers van lokale besturen bij een eerste marktconsultatie."
    step1 = doc.sections[2].text
    assert step1.startswith("Stap 1: de behoefte beschrijven\n\nBeschrijf het probleem")
    assert "# Dit is geen titel" in step1  # a '#' line inside a code block is not a heading
    assert not any(s.is_article for s in doc.sections)


def test_markdown_title_falls_back_to_first_h1_then_argument_then_name() -> None:
    body = "Inleiding zonder kop.\n\n# Eerste titel\n\nTekst.\n\n# Tweede titel\n\nMeer tekst.\n"
    assert load_markdown(body.encode(), name="a.md", title="Arg")[0].title == "Eerste titel"
    assert load_markdown(b"## Alleen H2\n\nTekst.\n", name="b.md", title="Arg")[0].title == "Arg"
    assert load_markdown(b"Tekst zonder koppen.\n", name="c.md")[0].title == "c.md"


def test_markdown_invalid_front_matter_date_is_a_warning() -> None:
    [doc] = load_markdown(b"---\ngeldig_op: binnenkort\n---\nTekst.\n", name="d.md")
    assert doc.effective_date is None
    assert doc.warnings == ("front matter date 'binnenkort' is not a date (expected YYYY-MM-DD); ignored",)


def test_markdown_broken_front_matter_is_an_error() -> None:
    with pytest.raises(SourceReadError, match=r"e\.md: invalid YAML front matter"):
        load_markdown(b"---\ntitle: [niet gesloten\n---\nTekst.\n", name="e.md")


def test_markdown_heading_markup_is_dropped_but_names_with_underscores_stay() -> None:
    [doc] = load_markdown(b"## Het veld `doc_id` en _nadruk_\n\nTekst.\n", name="f.md")
    assert doc.sections[0].label == "Het veld doc_id en nadruk"
    assert doc.sections[0].anchor == "het-veld-doc_id-en-nadruk"


def test_github_slug() -> None:
    assert github_slug("Wat is een PCP? (pre-commerciële aankoop)") == "wat-is-een-pcp-pre-commerciële-aankoop"
    assert github_slug("Art. 42, § 1, 1°") == "art-42--1-1"


def test_plain_text_cp1252_with_numbered_and_plain_headings() -> None:
    [doc] = load_text((TEXT / "stappenplan-cp1252.txt").read_bytes(), name="stappenplan.txt")
    assert doc.title == "Stappenplan innovatieve aankoop"
    assert [(s.label, s.heading_path) for s in doc.sections] == [
        (None, ()),
        ("1. Inleiding", ()),
        ("2. Wanneer kiest u voor een innovatiepartnerschap?", ()),
        ("Voorbeelden uit de praktijk", ("2. Wanneer kiest u voor een innovatiepartnerschap?",)),
        ("3. Financiering", ()),
        ("Bronnen", ("3. Financiering",)),
    ]
    assert doc.sections[0].text == "Stappenplan innovatieve aankoop\n\nWerkdocument voor aankopers"
    assert "€ 80.000" in doc.sections[3].text  # cp1252 euro sign decoded
    assert "\r" not in "".join(s.text for s in doc.sections)
    # Footnotes stay together in one section instead of becoming headings.
    assert doc.sections[5].text.count("\n(") == 3


def test_plain_text_title_argument_wins_over_first_line() -> None:
    [doc] = load_text((TEXT / "stappenplan-cp1252.txt").read_bytes(), name="s.txt", title="Mijn titel",
                      url="https://example.be/s.txt")
    assert doc.title == "Mijn titel"
    assert doc.url == "https://example.be/s.txt"


def test_decoding_utf8_bom_and_binary_and_empty() -> None:
    assert decode_text("\ufeffÉén regel\r\n".encode("utf-8"), name="x") == "Één regel\n"
    assert decode_text("Café".encode("cp1252"), name="x") == "Café"
    with pytest.raises(SourceReadError, match=r"foto\.txt: looks like a binary file"):
        load_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", name="foto.txt")
    with pytest.raises(SourceReadError, match=r"leeg\.md: empty"):
        load_markdown(b" \n\t\n", name="leeg.md")
    with pytest.raises(SourceReadError, match="empty"):
        load_text(b"", name="leeg.txt")


@pytest.fixture(scope="module")
def paper():
    if not PAPER.exists():
        pytest.skip(f"shared data not found at {PAPER} (place ../shared beside the repo)")
    [doc] = load_text(PAPER.read_bytes(), name=PAPER.name)
    return doc


def test_position_paper_numbered_sections(paper) -> None:
    assert paper.title == "Innovatieve overheidsopdrachten, een hefboom voor lokale innovatie"
    labels = [s.label for s in paper.sections]
    assert labels[:3] == [None, "1. Aanleiding", "2. Wat zijn innovatieve overheidsopdrachten?"]
    assert "4. Ons standpunt" in labels
    assert paper.sections[1].text.startswith("1. Aanleiding\n\nOverheidsopdrachten en innovatie")


def test_position_paper_subsections_nest_under_numbered_sections(paper) -> None:
    by_label = {s.label: s for s in paper.sections}
    assert by_label["Europa"].heading_path == ("3. Wat doen de centrale overheden?",)
    assert by_label["Wat doet de VVSG?"].heading_path == ("4. Ons standpunt",)
    helpdesk = by_label["1) Steunpunt innovatieve overheidsopdrachten voor lokale besturen"]
    assert helpdesk.heading_path == (
        "4. Ons standpunt",
        "Ondersteuning van de lokale besturen: voorstellen aan de centrale overheden",
    )
    assert "helpdesk" in helpdesk.text


def test_position_paper_footnotes_do_not_become_sections(paper) -> None:
    assert 10 <= len(paper.sections) <= 20
    last = paper.sections[-1]
    assert last.label == "Meer info en bronnen"
    assert "(1) Conclusies van de Raad" in last.text and "(10) Project 71" in last.text
    assert not any(s.label and s.label.startswith("(") for s in paper.sections)
    assert not any(s.label and s.label.startswith("- ") for s in paper.sections)
