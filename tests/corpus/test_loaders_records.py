"""CSV and JSONL record loader: column roles, skipped rows, mapping and id errors, LegalQA corpus."""

from __future__ import annotations

import gzip
import io
import time
import zipfile
from pathlib import Path

import pytest

from corpus.errors import ManifestError, SourceReadError
from corpus.loaders.records import load_records

RECORDS = Path(__file__).resolve().parents[1] / "fixtures" / "records"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
LEGALQA = SHARED / "data" / "legalqa-nl" / "corpus.csv"

CSV_COLUMNS: dict[str, object] = {
    "id": "id",
    "text": "tekst",
    "title": ["wet", "artikel"],
    "label": "artikel",
    "headings": ["hoofdstuk", "afdeling"],
    "url": "link",
    "date": "geldig_op",
}


def _csv(columns: dict[str, object] | None = None, data: bytes | None = None) -> list:
    return load_records(data if data is not None else (RECORDS / "regels.csv").read_bytes(), name="regels.csv",
                        fmt="csv", columns=columns or CSV_COLUMNS, url="https://regels.example.be")


def test_csv_rows_become_documents_with_all_roles() -> None:
    docs = _csv()
    assert [d.doc_id for d in docs] == ["R001", "R002", "R005"]
    first, second, third = docs
    assert first.title == "Reglement proefaankopen Artikel 1"
    assert first.url == "https://regels.example.be/r001"  # per-record link
    assert first.effective_date == "2024-01-01"
    [section] = second.sections
    assert section.text == (
        "Een proefaankoop blijft onder € 50.000.\nDe aankoper vraagt één offerte per leverancier."
    )
    assert section.label == "Artikel 2"
    assert section.is_article
    assert section.heading_path == ("Algemeen", "Drempels")
    assert second.url == "https://regels.example.be"  # falls back to the source url
    assert second.effective_date == "2024-03-01"  # dd-mm-yyyy normalised
    # No label: not an article; title from the non-empty title parts only; empty headings skipped.
    assert third.title == "Reglement proefaankopen"
    assert third.sections[0].label is None and not third.sections[0].is_article
    assert third.sections[0].heading_path == ("Slotbepalingen",)


def test_csv_bad_rows_are_skipped_and_reported_on_the_first_document() -> None:
    docs = _csv()
    assert docs[0].warnings == (
        "row 3 skipped: no id in column 'id'",
        "row 4 skipped: empty text in column 'tekst' (id R004)",
    )
    assert all(d.warnings == () for d in docs[1:])


def test_jsonl_records_with_invalid_line_and_list_text() -> None:
    docs = load_records((RECORDS / "vragen.jsonl").read_bytes(), name="vragen.jsonl", fmt="jsonl",
                        columns={"id": "id", "text": "antwoord", "title": "vraag", "headings": ["thema"]})
    assert [d.doc_id for d in docs] == ["V1", "V2", "5"]  # numeric ids become text
    assert docs[0].title == "Wat is een proefaankoop?"
    assert docs[0].sections[0].heading_path == ("Begrippen",)
    assert docs[2].sections[0].text == "Hoogstens twaalf maanden.\nVerlengen kan niet."
    assert docs[0].warnings == (
        "line 3 skipped: invalid JSON (Expecting ',' delimiter)",
        "line 5 skipped: empty text in column 'antwoord' (id 4)",
    )


def test_mapping_a_missing_column_is_an_error_naming_it() -> None:
    missing = r"regels\.csv: column 'paragraaf' \(role 'headings'\) is not in the file"
    with pytest.raises(SourceReadError, match=missing):
        _csv({**CSV_COLUMNS, "headings": ["hoofdstuk", "paragraaf"]})
    with pytest.raises(SourceReadError, match="column 'body'"):
        load_records(b'{"id": "1", "text": "x"}\n', name="v.jsonl", fmt="jsonl", columns={"id": "id", "text": "body"})


def test_duplicate_ids_are_an_error() -> None:
    data = "id,tekst\nA1,eerste\nA2,tweede\nA1,derde\n".encode()
    with pytest.raises(SourceReadError, match=r"duplicate id 'A1' in rows 1 and 3"):
        load_records(data, name="dubbel.csv", fmt="csv", columns={"id": "id", "text": "tekst"})


def test_invalid_role_mapping_is_a_manifest_error() -> None:
    with pytest.raises(ManifestError, match="'text' role is required"):
        load_records(b"id,tekst\n1,a\n", name="x.csv", fmt="csv", columns={"id": "id"})
    with pytest.raises(ManifestError, match="unknown role"):
        load_records(b"id,tekst\n1,a\n", name="x.csv", fmt="csv", columns={"id": "id", "text": "tekst", "tags": "x"})
    with pytest.raises(ManifestError, match="'csv' or 'jsonl'"):
        load_records(b"id,tekst\n1,a\n", name="x.xlsx", fmt="xlsx", columns={"id": "id", "text": "tekst"})


def test_cp1252_csv_and_header_padding() -> None:
    data = "id , tekst\n1,Één café\n".encode("cp1252")
    [doc] = load_records(data, name="oud.csv", fmt="csv", columns={"id": "id", "text": "tekst"})
    assert doc.sections[0].text == "Één café"
    assert doc.title == "1"  # no title or label column: the id


def test_utf16_csv_and_jsonl_with_a_bom_are_read_like_utf8() -> None:
    # Excel's "Unicode text" and Notepad's "Unicode" save UTF-16 with a BOM, as the text loader already accepts.
    for encoding in ("utf-16", "utf-16-be"):
        bom = "\ufeff" if encoding == "utf-16-be" else ""
        csv_data = f"{bom}id,tekst\r\nR1,Één café; € 50.000\r\n".encode(encoding)
        [doc] = load_records(csv_data, name="unicode.csv", fmt="csv", columns={"id": "id", "text": "tekst"})
        assert (doc.doc_id, doc.sections[0].text) == ("R1", "Één café; € 50.000")
        jsonl_data = f'{bom}{{"id": "V1", "tekst": "Één café"}}\r\n'.encode(encoding)
        [doc] = load_records(jsonl_data, name="unicode.jsonl", fmt="jsonl", columns={"id": "id", "text": "tekst"})
        assert (doc.doc_id, doc.sections[0].text, doc.warnings) == ("V1", "Één café", ())


def test_broken_utf16_record_file_gets_the_text_loaders_error() -> None:
    with pytest.raises(SourceReadError, match=r"^kapot\.csv: cannot decode UTF-16 text"):
        load_records(b"\xff\xfei\x00d\x00,", name="kapot.csv", fmt="csv", columns={"id": "id", "text": "tekst"})


def _xlsx_like() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("xl/worksheets/sheet1.xml", (2024, 1, 1, 0, 0, 0)), "<row/>" * 40)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "name", "fmt"),
    [
        (_xlsx_like(), "regels.csv", "csv"),  # a spreadsheet saved under a .csv name
        (gzip.compress(b"id,tekst\n1,a\n" * 20, mtime=0), "regels.csv", "csv"),
        (b"id,tekst\nR1,een\x00twee\n", "regels.csv", "csv"),  # would otherwise become a record with a NUL in it
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "vragen.jsonl", "jsonl"),
    ],
    ids=["zip", "gzip", "nul-in-a-cell", "png"],
)
def test_binary_file_named_as_records_is_refused_naming_the_file(data: bytes, name: str, fmt: str) -> None:
    what = "a CSV file" if fmt == "csv" else "a JSON Lines file"
    expected = rf"^{name.replace('.', '[.]')}: looks like a binary file \(contains NUL bytes\), not {what}$"
    with pytest.raises(SourceReadError, match=expected):
        load_records(data, name=name, fmt=fmt, columns={"id": "id", "text": "tekst"})


def test_file_without_usable_rows_is_an_error() -> None:
    with pytest.raises(SourceReadError, match=r"leeg\.csv: no usable records \(row 1 skipped"):
        load_records(b"id,tekst\n,zonder id\n", name="leeg.csv", fmt="csv", columns={"id": "id", "text": "tekst"})
    with pytest.raises(SourceReadError, match="empty"):
        load_records(b"", name="niets.csv", fmt="csv", columns={"id": "id", "text": "tekst"})


def test_very_long_cells_are_read() -> None:
    long_text = "woord " * 60_000  # beyond the csv module's default 128 KiB field limit
    [doc] = load_records(f'id,tekst\n1,"{long_text}"\n'.encode(), name="lang.csv", fmt="csv",
                         columns={"id": "id", "text": "tekst"})
    assert len(doc.sections[0].text) == len(long_text.strip())


def test_legalqa_corpus_loads_every_article_quickly() -> None:
    if not LEGALQA.exists():
        pytest.skip(f"shared data not found at {LEGALQA} (place ../shared beside the repo)")
    columns = {
        "id": "DOC_ID",
        "title": ["law_name", "artikel"],
        "text": "text",
        "label": "artikel",
        "headings": ["hoofdstuk_titel", "afdeling_titel", "paragraaf_titel", "titel_titel"],
    }
    started = time.perf_counter()
    docs = load_records(LEGALQA.read_bytes(), name="legalqa", fmt="csv", columns=columns)
    elapsed = time.perf_counter() - started
    assert len(docs) == 4653
    assert elapsed < 10
    assert docs[0].warnings == ()
    first = docs[0]
    assert first.doc_id == "DOC0001"
    assert first.title == "Burgerlijk Wetboek Boek 1 Artikel 1"
    assert first.sections[0].label == "Artikel 1" and first.sections[0].is_article
    assert first.sections[0].heading_path == ("Algemene bepalingen",)
    assert first.sections[0].text.startswith("allen die zich in nederland bevinden")
    assert len({d.doc_id for d in docs}) == 4653
