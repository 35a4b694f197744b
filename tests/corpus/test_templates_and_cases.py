"""Template and case sources: Word / OpenDocument loaders with headings, the catalogue, case records, refresh."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from corpus.errors import SourceReadError
from corpus.loaders.cases import load_cases
from corpus.loaders.office import load_docx, load_odt
from corpus.loaders.templates import parse_catalogue


def make_docx(parts: list[tuple[int, str]], *, table: list[list[str]] | None = None) -> bytes:
    """A Word file made with python-docx: (heading level or 0, text) paragraphs, optionally a table at the end."""
    import docx

    document = docx.Document()
    for level, text in parts:
        if level:
            document.add_heading(text, level=level)
        else:
            document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_odt(parts: list[tuple[int, str]], *, items: list[str] = ()) -> bytes:
    """An OpenDocument text made with odfpy: headings with outline levels, paragraphs and a list."""
    from odf.opendocument import OpenDocumentText
    from odf.text import H, List, ListItem, P

    document = OpenDocumentText()
    for level, text in parts:
        document.text.addElement(H(outlinelevel=level, text=text) if level else P(text=text))
    if items:
        listing = List()
        for item in items:
            entry = ListItem()
            entry.addElement(P(text=item))
            listing.addElement(entry)
        document.text.addElement(listing)
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def test_a_word_document_keeps_its_headings_as_sections_and_reads_tables() -> None:
    data = make_docx([(1, "Aankondiging marktconsultatie"), (0, "Het bestuur wil de markt bevragen."),
                      (2, "Hoe reageren"), (0, "Stuur je antwoord voor [datum]."), (2, "Vertrouwelijkheid"),
                      (0, "Antwoorden blijven vertrouwelijk.")],
                     table=[["Stuk", "Klaar?"], ["Bestek", "ja"]])
    [doc] = load_docx(data, name="aankondiging.docx")
    assert doc.title == "Aankondiging marktconsultatie" and doc.doc_id == "aankondiging"
    labels = [(s.label, s.heading_path) for s in doc.sections]
    assert labels == [("Aankondiging marktconsultatie", ()), ("Hoe reageren", ("Aankondiging marktconsultatie",)),
                      ("Vertrouwelijkheid", ("Aankondiging marktconsultatie",))]
    assert "Stuk | Klaar?" in doc.sections[-1].text and "Bestek | ja" in doc.sections[-1].text


def test_an_opendocument_text_keeps_its_headings_and_list_items() -> None:
    data = make_odt([(1, "Checklist innovatiepartnerschap"), (0, "Controleer voor de publicatie:"),
                     (2, "Fase 1")], items=["Beschrijving van de behoefte", "Gunningscriteria"])
    [doc] = load_odt(data, name="checklist.odt")
    assert [s.label for s in doc.sections] == ["Checklist innovatiepartnerschap", "Fase 1"]
    assert "Beschrijving van de behoefte" in doc.sections[1].text and "Gunningscriteria" in doc.sections[1].text


def test_a_package_that_unpacks_to_far_more_than_it_weighs_is_refused_unread() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", "<Types/>")
        package.writestr("word/document.xml", b"<" + b" " * (20 * 1024 * 1024) + b">")
    with pytest.raises(SourceReadError, match="compressed suspiciously well"):
        load_docx(out.getvalue(), name="bom.docx")
    with pytest.raises(SourceReadError, match="not a readable document package"):
        load_odt(b"PK\x03\x04 not really", name="kapot.odt")


CATALOGUE = b"""
templates:
  - file: aankondiging.docx
    title: "Sjabloon aankondiging marktconsultatie"
    procedures: [marktconsultatie]
    phase: voorbereiding
    description: "Een aankondiging om de markt te bevragen."
    version: 2026-01-15
    valid_until: 2027-12-31
"""


def test_the_catalogue_names_problems_by_entry_and_field() -> None:
    entry = parse_catalogue(CATALOGUE, name="sjablonen.yaml")["aankondiging.docx"]
    assert entry.procedures == ("marktconsultatie",) and entry.version == "2026-01-15"
    assert entry.valid_until == "2027-12-31"
    for bad, message in [(CATALOGUE.replace(b"marktconsultatie]", b"veiling]"), "unknown procedure"),
                         (CATALOGUE.replace(b"2026-01-15", b"januari"), "version must be a date"),
                         (CATALOGUE.replace(b"file: aankondiging.docx", b"file: ../geheim.docx"), "file name"),
                         (CATALOGUE.replace(b"    phase: voorbereiding\n", b"    fase: x\n"), "unknown field"),
                         (b"templates: []", "non-empty")]:
        with pytest.raises(SourceReadError, match=message):
            parse_catalogue(bad, name="sjablonen.yaml")


CASES = b"""
cases:
  - {id: proefdonk-2021, bestuur: "OCMW Proefdonk (fictief)", type_bestuur: ocmw, year: 2021, procedure: pcp,
     estimate_eur: 120000, subject: "een zorgrobot", outcome: "Twee prototypes.", lessons: "Begin klein. Test vroeg."}
  - {id: kapot, bestuur: "X", year: "ooit", procedure: pcp, subject: s, outcome: o, lessons: l}
  - {id: zonder-les, bestuur: "Y", year: 2020, procedure: pcp, subject: s, outcome: o}
"""


def test_a_case_is_cited_as_a_practice_example_and_bad_records_are_reported_not_fatal() -> None:
    [case] = load_cases(CASES, name="cases.yaml")
    assert case.title == "Praktijkvoorbeeld: OCMW Proefdonk (fictief), 2021"
    assert dict(case.meta) == {"bestuur": "OCMW Proefdonk (fictief)", "type_bestuur": "ocmw", "year": "2021",
                               "procedure": "pcp", "estimate_eur": "120000", "subject": "een zorgrobot"}
    assert "Raming: 120.000 euro exclusief btw." in case.sections[0].text and "Lessen: Begin klein." in \
        case.sections[0].text
    assert len(case.warnings) == 2 and "year must be a year" in case.warnings[0] and "missing lessons" in \
        case.warnings[1]
    jsonl = b'{"id": "a", "bestuur": "Stad Z", "year": 2024, "procedure": "marktconsultatie", "subject": "s", ' \
            b'"outcome": "o", "lessons": "l"}\nnot json\n'
    [from_jsonl] = load_cases(jsonl, name="cases.jsonl")
    assert from_jsonl.title == "Praktijkvoorbeeld: Stad Z, 2024" and "not JSON" in from_jsonl.warnings[0]
    with pytest.raises(SourceReadError, match="no usable case records"):
        load_cases(b"cases: [{id: x}]", name="cases.yaml")


def test_the_bundled_sample_templates_and_cases_load(tmp_path: Path) -> None:
    from corpus.fetch import fetch_source
    from corpus.manifest import load_manifest
    from corpus.refresh import SourceReport, _chunk_source

    manifest = load_manifest()
    for source, kind in (("sample-templates", "template"), ("sample-cases", "case")):
        spec = manifest.get(source)
        report = SourceReport(source)
        chunks = _chunk_source(spec, fetch_source(spec, manifest.base_dir), report)
        assert chunks and {c.kind for c in chunks} == {kind} and report.warnings == [], report.warnings
        if kind == "template":
            files = {c.get("file_name") for c in chunks}
            assert len(files) >= 3 and all(Path(c.get("file")).is_file() for c in chunks)
            assert all(c.get("version") and c.get("sha256") for c in chunks)
        else:
            assert len({c.doc_id for c in chunks}) >= 6
            assert all(c.title.startswith("Praktijkvoorbeeld: ") and "fictief" in c.title for c in chunks)


def _note(title: str, until: str | None) -> str:
    window = f"geldig_tot: {until}\n" if until else ""
    return (f"---\ntitle: \"{title}\"\ngeldig_op: 2026-01-01\n{window}---\n# {title}\n\n## Inhoud\n"
            f"De tekst van {title.lower()} over de drempels.\n")


def test_corpus_status_lists_what_expired_or_expires_within_sixty_days(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    from click.testing import CliRunner

    from bot.cli import main

    today = dt.date.today()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "oud.md").write_text(_note("Oude nota", (today - dt.timedelta(days=1)).isoformat()), encoding="utf-8")
    (notes / "bijna.md").write_text(_note("Bijna verlopen", (today + dt.timedelta(days=30)).isoformat()),
                                    encoding="utf-8")
    (notes / "later.md").write_text(_note("Nog lang goed", (today + dt.timedelta(days=400)).isoformat()),
                                    encoding="utf-8")
    (notes / "zonder.md").write_text(_note("Zonder einddatum", None), encoding="utf-8")
    manifest = tmp_path / "sources.yaml"
    soon = (today + dt.timedelta(days=10)).isoformat()
    manifest.write_text("sources:\n  - {id: notes, title: Nota's, kind: guidance, location: 'notes/*.md'}\n"
                        f"  - {{id: oud-pakket, title: Pakket, kind: guidance, location: 'notes/zonder.md', "
                        f"valid_until: {soon}}}\n", encoding="utf-8")
    monkeypatch.setenv("VRAAGBAAK_MANIFEST", str(manifest))
    runner = CliRunner()
    assert runner.invoke(main, ["corpus", "refresh"]).exit_code == 0
    status = runner.invoke(main, ["corpus", "status"])
    assert status.exit_code == 0, status.output
    lines = status.output.split("Validity:", 1)[1].splitlines()
    assert "3 document(s) expired or expiring within 60 days" in lines[0]
    assert lines[1].split() == ["expired", (today - dt.timedelta(days=1)).isoformat(), "notes:", "Oude", "nota"]
    assert lines[2].split()[:3] == ["expires", soon, "oud-pakket:"]  # the source's window, its note has none
    assert lines[3].split()[:3] == ["expires", (today + dt.timedelta(days=30)).isoformat(), "notes:"]
    assert "Nog lang goed" not in status.output.split("Validity:", 1)[1]


def test_yaml_aliases_are_refused_before_they_expand() -> None:
    import time

    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(20))
    records = ("cases:\n  - {id: x, bestuur: *u, year: 2020, procedure: pcp, subject: s, outcome: o, "
               "lessons: l}\n")
    started = time.monotonic()
    with pytest.raises(SourceReadError, match="aliases"):
        load_cases((bomb + records).encode(), name="cases.yaml")
    with pytest.raises(SourceReadError, match="aliases"):
        parse_catalogue((bomb + "templates: [{file: a.docx, title: *u, description: d, version: 2026-01-01}]\n")
                        .encode(), name="sjablonen.yaml")
    assert time.monotonic() - started < 5  # refused when read, not after expanding 4^20 strings
