"""HTML loader: Justel (both designs), Staatsblad, EUR-Lex (current and older renderings), generic pages, bad input."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from corpus.documents import LoadedDocument, Section
from corpus.errors import SourceReadError
from corpus.loaders.html import load_html

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "html"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
LEGAL_HTML = SHARED / "data" / "legal-html"


def _fixture(file_name: str, **kwargs: str) -> LoadedDocument:
    [doc] = load_html((FIXTURES / file_name).read_bytes(), name=file_name, **kwargs)
    return doc


def _real(relative: str) -> LoadedDocument:
    path = LEGAL_HTML / relative
    if not path.is_file():
        pytest.skip(f"real page {path} is absent (the ../shared data folder is not checked out here)")
    [doc] = load_html(path.read_bytes(), name=path.name)
    return doc


def _by_label(doc: LoadedDocument) -> dict[str, Section]:
    return {s.label: s for s in doc.sections if s.label}


# --------------------------------------------------------------------------------------------------
# Own fixtures (small pages written for these tests)


def test_legacy_justel_fixture_in_cp1252_is_split_into_articles() -> None:
    doc = _fixture("justel_legacy_nl_cp1252.html")
    assert [s.label for s in doc.sections] == ["art. 1", "art. 2", "art. 2/1", "art. 3"]
    assert [s.anchor for s in doc.sections] == ["Art.1", "Art.2", "Art.2/1", "Art.3"]
    assert all(s.is_article for s in doc.sections)
    assert doc.doc_id == "2019099901"
    assert doc.title == "3 APRIL 2019. - Wet betreffende de schoolmaaltijden in gemeentelijke scholen."
    assert doc.url == "https://www.ejustice.just.fgov.be/eli/wet/2019/04/03/2019099901/justel"
    assert doc.effective_date == "2024-02-01"
    assert doc.language == "nl"


def test_legacy_justel_fixture_text_is_clean_and_footnotes_are_notes() -> None:
    art2 = _by_label(_fixture("justel_legacy_nl_cp1252.html"))["art. 2"]
    # cp1252 bytes decoded: §, ° and € survive.
    assert art2.text.splitlines() == [
        "Art. 2.",
        "§ 1. Voor de toepassing van deze wet wordt verstaan onder:",
        "1° school: een door de gemeente ingerichte basisschool;",
        "2° leverancier: elke onderneming die maaltijden bereidt of vervoert.",
        "§ 2. De prijs per maaltijd bedraagt ten hoogste 4,50 €, btw inbegrepen.",
    ]
    assert art2.notes == ("(1) W 2023-06-20/07, art. 2, 002; Inwerkingtreding : 01-09-2023",)
    assert "----------" not in art2.text


def test_legacy_justel_fixture_plain_markers_inline_notes_and_heading_nesting() -> None:
    by_label = _by_label(_fixture("justel_legacy_nl_cp1252.html"))
    art21 = by_label["art. 2/1"]
    assert art21.text.startswith("Art. 2/1. De school bestelt")
    assert "Een café of restaurant" in art21.text
    assert "[" not in art21.text and "]" not in art21.text
    assert art21.notes == ("(1) Ingevoegd bij W 2023-06-20/07, art. 3, 002; Inwerkingtreding : 01-09-2023",)
    # The old-style inline note "<W 2021-02-11/03, ...>" leaves the text and becomes a note.
    art3 = by_label["art. 3"]
    assert art3.text == "Art. 3. De gemeente betaalt de leverancier binnen dertig dagen."
    assert art3.notes == ("W 2021-02-11/03, art. 4, 001; Inwerkingtreding : 01-03-2021",)
    # A new HOOFDSTUK replaces the previous one; the Afdeling nests under it.
    assert by_label["art. 2"].heading_path == ("HOOFDSTUK 1. - Algemene bepalingen",)
    assert art21.heading_path == ("HOOFDSTUK 2. - Levering van de maaltijden", "Afdeling 1. - Bestelling")


def test_justel_2024_design_fixture_uses_the_title_box_tag_and_eli_link() -> None:
    doc = _fixture("justel_2024_nl_latin1.html", url="https://example.org/ignored")
    assert doc.doc_id == "2022099902"
    assert doc.title.startswith("14 OKTOBER 2022. - Koninklijk besluit tot regeling van de uitleen")
    assert doc.url == "https://www.ejustice.just.fgov.be/eli/besluit/2022/10/14/2022099902/justel"  # ELI wins
    assert doc.language == "nl"  # from the text: the page's lang="en" is wrong on Justel
    by_label = _by_label(doc)
    assert list(by_label) == ["art. 1", "art. 2", "art. 3"]
    assert by_label["art. 1"].text.startswith("Artikel 1. In dit besluit")
    assert by_label["art. 1"].heading_path == ("TITEL I. - Begrippen",)
    assert by_label["art. 2"].heading_path == ("TITEL II. - Uitleen",)
    # Declared Latin-1 but read as cp1252, so the euro sign (byte 0x80) survives.
    assert by_label["art. 2"].text.splitlines()[1] == "De waarborg bedraagt 20 € per stuk."
    assert "comité" in by_label["art. 3"].text
    everything = "\n".join(s.text for s in doc.sections)
    assert "FILIP" not in everything  # the preamble box is not article text
    assert "Copyright" not in everything


def test_eurlex_fixture_keeps_recitals_articles_and_annex_apart() -> None:
    doc = _fixture("eurlex_richtlijn_nl.html")
    assert [(s.label, s.anchor, s.is_article) for s in doc.sections] == [
        ("aanhef", None, False),
        ("overweging 1", "rct_1", False),
        ("overweging 2", "rct_2", False),
        ("art. 1", "art_1", True),
        ("art. 2", "art_2", True),
        ("bijlage I", "anx_I", False),
    ]
    assert doc.title == (
        "RICHTLIJN (EU) 2099/7 VAN HET EUROPEES PARLEMENT EN DE RAAD van 20 januari 2099 "
        "betreffende het delen van fietsen tussen overheidsdiensten"
    )
    assert doc.url == "https://eur-lex.europa.eu/eli/dir/2099/7/oj/nld"
    assert doc.doc_id == "32099L0007"
    assert doc.language == "nl"


def test_eurlex_fixture_article_text_headings_and_points() -> None:
    by_label = _by_label(_fixture("eurlex_richtlijn_nl.html"))
    art1 = by_label["art. 1"]
    assert art1.heading_path == ("HOOFDSTUK I - Algemene bepalingen",)
    assert art1.text.splitlines() == [
        "Artikel 1",  # NBSP normalised
        "Onderwerp",
        "1. Deze richtlijn stelt regels vast voor het delen van dienstfietsen.",
        "2. Zij is van toepassing op:",
        "a) ministeries;",
        "b) gemeenten met meer dan 10 000 inwoners.",
    ]
    art2 = by_label["art. 2"].text
    assert "Gedaan te Brussel" not in art2  # the signature block is not part of the last article
    assert "BIJLAGE" not in art2 and "uitleenregister" not in art2
    assert by_label["overweging 2"].text == "(2) Gedeeld gebruik bespaart geld en ruimte."  # footnote call dropped
    assert by_label["bijlage I"].text.splitlines()[:2] == ["BIJLAGE I", "Model van uitleenregister"]
    assert "PB C 1" not in "\n".join(s.text for s in by_label.values())  # footnotes are not indexed


def test_generic_page_sections_follow_headings_and_drop_page_chrome() -> None:
    doc = _fixture("leidraad_raamovereenkomsten.html", url="https://example.org/leidraad")
    assert doc.title == "Leidraad: raamovereenkomsten voor kleine besturen"
    assert doc.url == "https://example.org/leidraad"
    assert doc.doc_id == "leidraad_raamovereenkomsten"
    assert doc.language == "nl"
    assert [(s.label, s.anchor, s.heading_path) for s in doc.sections] == [
        ("Raamovereenkomsten voor kleine besturen", None, ()),
        ("Wanneer kiest u een raamovereenkomst?", "wanneer", ("Raamovereenkomsten voor kleine besturen",)),
        (
            "Looptijd",
            "looptijd",
            ("Raamovereenkomsten voor kleine besturen", "Wanneer kiest u een raamovereenkomst?"),
        ),
        ("Drempels en bekendmaking", "drempels", ("Raamovereenkomsten voor kleine besturen",)),
    ]
    assert not any(s.is_article for s in doc.sections)
    by_label = _by_label(doc)
    assert "- onderhoud van groenzones" in by_label["Wanneer kiest u een raamovereenkomst?"].text.splitlines()
    assert "Houd de looptijd beperkt tot vier jaar" in by_label["Looptijd"].text  # &nbsp; became a space
    assert "Leveringen | 143.000 euro" in by_label["Drempels en bekendmaking"].text
    everything = "\n".join(s.text for s in doc.sections)
    for chrome in ("Startpagina", "Kruimelpad", "Leidraden", "volg-mij", "font-family", "helpdesk aankoopcentrale"):
        assert chrome not in everything


def test_generic_page_without_title_uses_first_h1_and_keeps_text_before_it() -> None:
    page = "<html><body><p>Inleiding zonder kop.</p><h1>Eerste kop</h1><p>Tekst onder de kop.</p></body></html>"
    [doc] = load_html(page.encode("utf-8"), name="zonder-titel.html")
    assert doc.title == "Eerste kop"
    assert [(s.label, s.text) for s in doc.sections] == [
        (None, "Inleiding zonder kop."),
        ("Eerste kop", "Eerste kop\nTekst onder de kop."),
    ]


def test_encoding_utf8_without_declaration_and_latin1_declared() -> None:
    [utf8] = load_html("<p>Begroting voor één café: 5 €</p>".encode("utf-8"), name="a.html")
    assert utf8.sections[0].text == "Begroting voor één café: 5 €"
    latin = '<html><head><meta charset="iso-8859-1"></head><body><p>Prijs: 5 € per één stuk</p></body></html>'
    [cp] = load_html(latin.encode("cp1252"), name="b.html")
    assert cp.sections[0].text == "Prijs: 5 € per één stuk"
    # Bytes that are not valid UTF-8 and carry no declaration fall back to cp1252.
    [guess] = load_html("<p>Één § en 1°</p>".encode("cp1252"), name="c.html")
    assert guess.sections[0].text == "Één § en 1°"


# --------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"  \r\n\t ", "empty"),
        (bytes(range(256)) * 8, "binary"),
        (bytes(range(1, 32)) * 40 + b"<p>x</p>", "binary"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        (b"<html><body><a name='Art.1'></a></body></html>", "no text"),
    ],
)
def test_unreadable_input_raises_with_the_source_name(data: bytes, reason: str) -> None:
    with pytest.raises(SourceReadError) as info:
        load_html(data, name="kapotte-pagina.html")
    assert "kapotte-pagina.html" in str(info.value)
    assert reason in str(info.value)


def test_page_with_only_chrome_has_no_readable_text() -> None:
    page = b"<html><head><title>Leeg</title><script>var x = 1;</script></head><body><nav>Menu</nav></body></html>"
    with pytest.raises(SourceReadError, match=r"leeg\.html: no readable text"):
        load_html(page, name="leeg.html")


# --------------------------------------------------------------------------------------------------
# Real pages from ../shared/data/legal-html


def test_real_justel_2024_page_yields_all_37_articles() -> None:
    doc = _real("justel-2024-design/justel-1994009284.html")
    assert [s.label for s in doc.sections] == [f"art. {n}" for n in range(1, 38)]
    assert [s.anchor for s in doc.sections] == [f"Art.{n}" for n in range(1, 38)]
    assert all(s.is_article for s in doc.sections)
    assert doc.doc_id == "1994009284"
    assert doc.title == (
        "2 FEVRIER 1994. - Loi modifiant la loi du 8 avril 1965 relative à la protection de la jeunesse."
    )
    assert doc.url == "https://www.ejustice.just.fgov.be/eli/loi/1994/02/02/1994009284/justel"
    assert doc.language == "fr"
    by_label = _by_label(doc)
    assert by_label["art. 1"].text.startswith("Article 1. A l'article 36bis de la loi du 8 avril 1965")
    assert by_label["art. 2"].text.startswith("Art. 2. L'article 37 de la même loi")
    # Latin-1 bytes decoded: é, § and ° intact, no mojibake.
    assert "§ 2. Il peut selon les circonstances :" in by_label["art. 2"].text.splitlines()
    assert "l'article 36, 4°," in by_label["art. 34"].text
    assert not any("Ã" in s.text or "\ufffd" in s.text for s in doc.sections)
    assert by_label["art. 33"].heading_path == ()
    assert by_label["art. 34"].heading_path == ("Dispositions diverses",)


def test_real_strafwetboek_nl_yields_773_articles_quickly() -> None:
    path = LEGAL_HTML / "justel-older-design" / "strafwetboek_nl.html"
    if not path.is_file():
        pytest.skip(f"real page {path} is absent (the ../shared data folder is not checked out here)")
    data = path.read_bytes()
    started = time.perf_counter()
    [doc] = load_html(data, name=path.name)
    assert time.perf_counter() - started < 5.0
    assert len(doc.sections) == 773
    assert all(s.is_article for s in doc.sections)
    assert doc.doc_id == "1867060850"
    assert doc.title == "8 JUNI 1867. - STRAFWETBOEK."
    assert doc.url == "https://www.ejustice.just.fgov.be/eli/wet/1867/06/08/1867060850/justel"
    assert doc.effective_date == "2018-10-29"
    assert doc.language == "nl"
    # Amendment markers and footnote separators never reach the text.
    assert not any(re.search(r"[\[\]]\s*\d", s.text) or "----------" in s.text for s in doc.sections)


def test_real_strafwetboek_nl_article_details() -> None:
    doc = _real("justel-older-design/strafwetboek_nl.html")
    by_label = _by_label(doc)
    art97 = by_label["art. 97"]
    assert art97.anchor == "Art.97"
    assert "§ 1. De verjaring van de verbeurdverklaring wordt geschorst" in art97.text
    assert "[" not in art97.text and "]" not in art97.text
    assert any("2014-02-11/12" in note for note in art97.notes)
    assert art97.heading_path == (
        "BOEK 1. - DE MISDRIJVEN EN DE BESTRAFFING IN HET ALGEMEEN",
        "HOOFDSTUK X. - TENIETGAAN VAN DE STRAFFEN",
    )
    assert by_label["art. 1"].text.startswith("Artikel 1. Het misdrijf, naar de wetten strafbaar met een criminele")
    assert by_label["art. 7bis"].anchor == "Art.7bis"
    assert by_label["art. 7bis"].text.startswith("Art. 7bis. De straffen toepasselijk op misdrijven")
    art5461 = by_label["art. 546/1"]
    assert art5461.anchor == "Art.546/1"
    assert art5461.text.startswith("Art. 546/1. Met gevangenisstraf van acht dagen tot zes maanden")
    assert art5461.heading_path[-1] == "AFDELING VIIIbis. - Binnendringen in havengebieden"
    assert by_label["art. 33bis"].anchor == "Art.33bis."  # the page's own (irregular) anchor, label without dot
    for number in ("383bis/1", "433quinquiesdecies", "34quinquies"):
        assert f"art. {number}" in by_label
    # A heading of the same level replaces the previous one: BOEK 2 drops BOEK 1 and its chapters.
    assert by_label["art. 101"].heading_path[0].startswith("BOEK 2.")
    # Old-style inline notes move to notes; a repealed article keeps the fact in its text.
    assert by_label["art. 13"].text == "Art. 13. (Opgeheven)"
    assert by_label["art. 13"].notes == ("W 1996-07-10/42, art. 21, 018; Inwerkingtreding : 11-08-1996",)
    assert by_label["art. 281"].text.startswith("Art. 281. Opgeheven bij W 2010-03-08/08")


def test_real_strafwetboek_fr_is_decoded_right() -> None:
    doc = _real("justel-older-design/strafwetboek_fr.html")
    assert doc.title == "8 JUIN 1867. - CODE PENAL."
    assert doc.language == "fr"
    assert doc.url == "https://www.ejustice.just.fgov.be/eli/loi/1867/06/08/1867060850/justel"
    by_label = _by_label(doc)
    assert by_label["art. 97"].text.splitlines()[:2] == [
        "Art. 97.",
        "§ 1er. La prescription de la confiscation est suspendue lorsque la loi le prévoit ou lorsqu'il existe "
        "un empêchement légal à l'exécution immédiate de cette peine.",
    ]
    assert "1° l'amende;" in by_label["art. 7bis"].text.splitlines()
    assert by_label["art. 7bis"].heading_path[-1] == "SECTION I. - DES DIVERSE ESPECES DE PEINES"
    assert not any("Ã" in s.text for s in doc.sections)


def test_real_eurlex_current_dga_articles_recitals_and_chapters() -> None:
    doc = _real("eurlex-current/dga.html")
    articles = [s for s in doc.sections if s.is_article]
    assert [s.label for s in articles] == [f"art. {n}" for n in range(1, 39)]
    assert [s.anchor for s in articles] == [f"art_{n}" for n in range(1, 39)]
    recitals = [s for s in doc.sections if (s.label or "").startswith("overweging")]
    assert [s.label for s in recitals] == [f"overweging {n}" for n in range(1, 64)]
    assert [s.anchor for s in recitals] == [f"rct_{n}" for n in range(1, 64)]
    assert not any(s.is_article for s in recitals)
    assert doc.doc_id == "32022R0868"
    assert doc.url == "https://eur-lex.europa.eu/eli/reg/2022/868/oj/eng"
    assert doc.title.startswith("REGULATION (EU) 2022/868 OF THE EUROPEAN PARLIAMENT AND OF THE COUNCIL of 30 May")
    assert "(Text with EEA relevance)" not in doc.title
    assert doc.language == "en"
    by_label = _by_label(doc)
    art1 = by_label["art. 1"]
    assert art1.heading_path == ("CHAPTER I - General provisions",)
    assert art1.text.splitlines()[:3] == ["Article 1", "Subject matter and scope", "1. This Regulation lays down:"]
    assert "(a) conditions for the re-use, within the Union, of certain categories of data" in art1.text
    assert by_label["art. 38"].heading_path == ("CHAPTER IX - Final and transitional provisions",)
    assert "Done at Brussels" not in by_label["art. 38"].text
    assert "Whereas" not in "\n".join(s.text for s in articles)
    assert by_label["overweging 1"].text.startswith("(1) The Treaty on the Functioning of the European Union")
    assert "Article 1" not in by_label["overweging 63"].text


def test_real_eurlex_older_rendering_with_annexes() -> None:
    doc = _real("eurlex-older/modern_1_raw.html")
    labels = [s.label for s in doc.sections]
    assert labels == [
        "aanhef", "overweging 1", "overweging 2", "art. 1", "art. 2", "art. 3", "art. 4", "art. 521",
        "bijlage I", "bijlage II",
    ]  # fmt: skip
    by_label = _by_label(doc)
    assert by_label["art. 1"].heading_path == (
        "PART ONE - GENERAL PROVISIONS",
        "TITLE I - SUBJECT MATTER, SCOPE AND DEFINITIONS",
    )
    assert by_label["art. 521"].heading_path == ("PART ELEVEN - FINAL PROVISIONS",)
    assert "ANNEX" not in by_label["art. 521"].text
    assert by_label["bijlage I"].text.startswith("ANNEX I\nClassification of off-balance sheet items")
    assert not by_label["bijlage I"].is_article
    assert doc.title.startswith("REGULATION (EU) No 575/2013")


def test_real_eurlex_pre_2011_page_is_split_by_text() -> None:
    doc = _real("eurlex-older/old_1_raw.html")
    by_label = _by_label(doc)
    assert [s.label for s in doc.sections if s.is_article] == [
        "art. 1", "art. 2", "art. 3", "art. 4", "art. 110", "art. 111",
    ]  # fmt: skip
    assert [label for label in by_label if label.startswith("overweging")] == [f"overweging {n}" for n in range(1, 6)]
    assert doc.doc_id == "32002R0006"
    assert doc.title == "Council Regulation (EC) No 6/2002 of 12 December 2001 on Community designs"
    assert by_label["art. 3"].heading_path == (
        "TITLE II - THE LAW RELATING TO DESIGNS",
        "Section 1 - Requirements for protection",
    )
    art111 = by_label["art. 111"].text
    assert art111.startswith("Article 111\nEntry into force\n1. This Regulation")
    assert "Done at Brussels" not in art111 and "OJ C 29" not in art111


def test_real_staatsblad_pages() -> None:
    doc = _real("staatsblad/valid_response.html")
    assert doc.title == "21 SEPTEMBER 2021. - Nationale Orden"
    assert doc.sections[0].text.startswith("1) Bij Koninklijk besluit van 21 september 2021")
    assert doc.sections[1].label == "art. 1" and doc.sections[1].is_article
    assert doc.sections[1].text.startswith("Artikel 1. § 1 Worden benoemd tot Grootofficier in de Leopoldsorde:")
    everything = "\n".join(s.text for s in doc.sections)
    assert "SCHEPERS Marie-Hélène" in everything and "FRANçOIS Isabelle" in everything  # ISO-8859-1 bytes decoded
    assert "Beeld van de publicatie" not in everything and "Publicatie :" not in everything
    no_title = _real("staatsblad/valid_no_title_response.html")
    assert "OVAM" in no_title.sections[0].text


def test_real_empty_staatsblad_response_raises_a_clear_error() -> None:
    path = LEGAL_HTML / "staatsblad" / "empty_response.html"
    if not path.is_file():
        pytest.skip(f"real page {path} is absent (the ../shared data folder is not checked out here)")
    with pytest.raises(SourceReadError, match=r"empty_response\.html: Belgisch Staatsblad page without publication"):
        load_html(path.read_bytes(), name=path.name)
