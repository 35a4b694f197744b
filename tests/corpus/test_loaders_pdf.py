"""PDF loader: articles across page breaks, pages without text, corrupt and encrypted files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from corpus.errors import SourceReadError
from corpus.loaders.pdf import load_pdf

PDF = Path(__file__).resolve().parents[1] / "fixtures" / "pdf"


def _load(file_name: str, **kwargs: str) -> list:
    return load_pdf((PDF / file_name).read_bytes(), name=file_name, **kwargs)


def _builder():
    """The fixture script, to build a PDF with other text on the fly."""
    spec = importlib.util.spec_from_file_location("make_pdf_fixtures", PDF / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_articles_are_split_at_their_headings_with_start_page_and_labels() -> None:
    [doc] = _load("reglement-artikelen.pdf")
    articles = [s for s in doc.sections if s.is_article]
    assert [s.label for s in articles] == ["art. 1", "art. 2", "art. 42/1", "art. 2.31a", "art. 5"]
    assert [s.page for s in articles] == [1, 1, 2, 2, 3]
    assert [s.anchor for s in articles] == ["page=1", "page=1", "page=2", "page=2", "page=3"]
    assert doc.warnings == ()


def test_an_article_continues_over_the_page_break() -> None:
    [doc] = _load("reglement-artikelen.pdf")
    by_label = {s.label: s for s in doc.sections}
    art2 = by_label["art. 2"].text
    assert art2.startswith("Artikel 2.")
    assert "volstaat één aanvaarde" in art2  # WinAnsi text decoded, accents intact
    assert art2.endswith("minstens drie offertes op wanneer dat redelijk is.")  # the line from page 2
    assert "Hoofdstuk 2" not in art2  # the next chapter heading is not article text
    art_231a = by_label["art. 2.31a"].text
    assert "in het aankoopdossier." in art_231a  # continued on page 3
    # "Artikel 3 van het ..." is a reference inside the text, not a new article.
    assert "Artikel 3 van het gemeentelijk kwaliteitsplan" in art_231a
    assert "art. 3" not in by_label


def test_running_headers_and_page_numbers_are_removed() -> None:
    [doc] = _load("reglement-artikelen.pdf")
    everything = "\n".join(s.text for s in doc.sections)
    assert "Pagina" not in everything
    assert "versie 2024" not in everything


def test_chapter_headings_become_the_heading_path_and_intro_text_is_kept() -> None:
    [doc] = _load("reglement-artikelen.pdf")
    by_label = {s.label: s for s in doc.sections}
    assert by_label["art. 1"].heading_path == ("Hoofdstuk 1. Algemene bepalingen",)
    assert by_label["art. 42/1"].heading_path == ("Hoofdstuk 2. Innovatieve aankopen",)
    intro = doc.sections[0]
    assert not intro.is_article and intro.page == 1
    assert intro.text == "Dit reglement beschrijft hoe de gemeente Testgem kleine aankopen plaatst."


def test_title_comes_from_argument_then_metadata_then_name() -> None:
    assert _load("reglement-artikelen.pdf", title="Eigen titel")[0].title == "Eigen titel"
    assert _load("reglement-artikelen.pdf")[0].title == "Aankoopreglement Testgem"
    [nota] = _load("nota-met-scanpagina.pdf", url="https://example.be/nota.pdf")
    assert nota.title == "nota-met-scanpagina.pdf"
    assert nota.doc_id == "nota-met-scanpagina"
    assert nota.url == "https://example.be/nota.pdf"


def test_page_without_text_is_reported_and_other_pages_keep_their_numbers() -> None:
    [doc] = _load("nota-met-scanpagina.pdf")
    assert doc.warnings == ("page 2 has no extractable text (scanned?)",)
    assert [s.page for s in doc.sections] == [1, 3]
    assert [s.anchor for s in doc.sections] == ["page=1", "page=3"]
    assert not any(s.is_article for s in doc.sections)
    assert doc.sections[1].text.startswith("Na de consultatie vat de aankoper")


def test_pdf_without_any_text_is_an_error() -> None:
    with pytest.raises(SourceReadError, match=r"alleen-scan\.pdf: no extractable text.*2 page"):
        _load("alleen-scan.pdf")


def test_truncated_pdf_is_an_error_naming_the_source() -> None:
    with pytest.raises(SourceReadError, match=r"afgebroken\.pdf: corrupt or unreadable PDF"):
        _load("afgebroken.pdf")


def test_bytes_that_are_not_a_pdf_are_an_error() -> None:
    with pytest.raises(SourceReadError, match="not a PDF"):
        load_pdf(b"<html><body>404</body></html>", name="download.pdf")


def test_password_protected_pdf_is_an_error() -> None:
    with pytest.raises(SourceReadError, match=r"versleuteld-wachtwoord\.pdf: PDF is encrypted with a password"):
        _load("versleuteld-wachtwoord.pdf")


def test_pdf_encrypted_with_an_empty_user_password_still_loads() -> None:
    [doc] = _load("versleuteld-zonder-wachtwoord.pdf")
    assert [s.label for s in doc.sections if s.is_article][:2] == ["art. 1", "art. 2"]


def test_articles_opening_every_page_are_not_mistaken_for_running_headers() -> None:
    pages = [[f"Art. {n}. Bepaling nummer {n} over de aankoop van materiaal.", "Tweede regel."] for n in (1, 2, 3)]
    [doc] = load_pdf(_builder().build_pdf(pages, footer=True), name="wet.pdf")
    assert [(s.label, s.page) for s in doc.sections] == [("art. 1", 1), ("art. 2", 2), ("art. 3", 3)]
    assert doc.sections[2].text == "Art. 3. Bepaling nummer 3 over de aankoop van materiaal.\nTweede regel."


def test_fixture_files_are_what_the_script_generates() -> None:
    builder = _builder()
    expected = builder.build_pdf(builder.REGLEMENT_PAGES, title="Aankoopreglement Testgem", footer=True)
    assert (PDF / "reglement-artikelen.pdf").read_bytes() == expected


def test_table_of_contents_entries_are_not_articles_and_repeated_labels_are_flagged() -> None:
    pages = [
        ["Inhoud", "Art. 1. Toepassing ........ 2", "Art. 2. Slot ........ 2"],
        ["Art. 1. Dit reglement geldt voor alle diensten.", "Art. 2. Het treedt meteen in werking."],
        ["Bijlage 1 - Voorbeeld", "Art. 1. Een aangehaald artikel uit een ander reglement."],
    ]
    [doc] = load_pdf(_builder().build_pdf(pages), name="met-inhoud.pdf")
    assert [(s.label, s.page, s.is_article) for s in doc.sections] == [
        (None, 1, False),
        ("art. 1", 2, True),
        ("art. 2", 2, True),
        ("Bijlage 1 - Voorbeeld", 3, False),
        ("art. 1", 3, True),
    ]
    assert doc.sections[0].text.startswith("Inhoud\nArt. 1. Toepassing")
    assert doc.warnings == ("article art. 1 occurs 2 times (pages 2, 3)",)
