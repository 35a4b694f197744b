"""Loader for record files (CSV, JSON Lines) where every row is one document.

A ``columns`` mapping says which column plays which role:

- ``id`` (required): the record id, becomes ``doc_id``; ids must be unique.
- ``text`` (required): the record text, becomes the single section's text.
- ``title``: a column, or a list of columns joined with a space (empty parts skipped).
- ``label``: a column with a citation label ("Artikel 12"); a non-empty label marks the record as an article.
- ``headings``: a list of columns that form the heading path (empty ones skipped).
- ``url``: a column with a link to the record; falls back to the source ``url``.
- ``date``: a column with the date the text is valid on.

Rows without an id or without text are skipped, not fatal: one bad line should not keep a whole
corpus out of the index. The skips are reported as warnings on the *first returned document*,
because ``LoadedDocument`` is the only carrier of warnings and a loader returns nothing else;
a refresh report reads warnings from every document, so they reach the maintainer either way.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import replace

from corpus.documents import LoadedDocument, Section
from corpus.errors import ManifestError, SourceReadError
from corpus.loaders.text import decode_bytes, iso_date

_ROLES = {"id", "text", "title", "label", "headings", "url", "date"}
_LIST_ROLES = {"title", "headings"}
# Statute texts in one CSV cell run to hundreds of kilobytes; the csv default of 128 KiB is too small.
_FIELD_SIZE_LIMIT = 2**31 - 1


def _column_list(role: str, value: object) -> list[str]:
    """The column names a role refers to, validated."""
    if isinstance(value, str) and value:
        return [value]
    if role in _LIST_ROLES and isinstance(value, (list, tuple)) and value and all(
        isinstance(item, str) and item for item in value
    ):
        return list(value)
    kind = "a column name or a list of column names" if role in _LIST_ROLES else "a column name"
    raise ManifestError(f"columns: role {role!r} must be {kind}, got {value!r}")


def _validate_columns(columns: dict[str, object]) -> dict[str, list[str]]:
    """Check the role mapping and normalise every role to a list of column names."""
    unknown = sorted(set(columns) - _ROLES)
    if unknown:
        raise ManifestError(f"columns: unknown role(s) {', '.join(unknown)}; known roles: {', '.join(sorted(_ROLES))}")
    for required in ("id", "text"):
        if required not in columns:
            raise ManifestError(f"columns: the {required!r} role is required")
    return {role: _column_list(role, value) for role, value in columns.items() if value is not None}


def _decode(data: bytes, *, name: str, fmt: str) -> str:
    """Decode record bytes like a text file (UTF-16 with a BOM; binary data refused), else UTF-8 or cp1252."""
    what = "a CSV file" if fmt == "csv" else "a JSON Lines file"
    return decode_bytes(data, name=name, what=what, eight_bit=lambda raw: _decode_8bit(raw, name=name))


def _decode_8bit(data: bytes, *, name: str) -> str:
    """UTF-8 (BOM allowed), else cp1252 as written by older spreadsheet exports; anything else is an error."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise SourceReadError(f"{name}: not UTF-8 or cp1252 text ({exc.reason} at byte {exc.start})") from exc


def _csv_rows(text: str, *, name: str) -> tuple[list[str], Iterator[tuple[int, dict[str, object]]]]:
    """The CSV header and its rows numbered from 1 (the first data row)."""
    csv.field_size_limit(_FIELD_SIZE_LIMIT)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise SourceReadError(f"{name}: unreadable CSV header ({exc})") from exc
    if not header:
        raise SourceReadError(f"{name}: empty CSV file (no header row)")
    # Spreadsheet exports pad header cells ("text "); match columns on the trimmed names.
    reader.fieldnames = [column.strip() for column in header]

    def rows() -> Iterator[tuple[int, dict[str, object]]]:
        """Rows one by one, a CSV syntax error becoming a SourceReadError."""
        number = 0
        try:
            for number, row in enumerate(reader, start=1):
                yield number, row
        except csv.Error as exc:
            raise SourceReadError(f"{name}: malformed CSV after row {number} ({exc})") from exc

    return list(reader.fieldnames), rows()


def _jsonl_rows(text: str, warnings: list[str]) -> tuple[list[str], list[tuple[int, dict[str, object]]]]:
    """The keys seen in any record, and the records numbered by line; bad lines become warnings."""
    keys: dict[str, None] = {}
    rows: list[tuple[int, dict[str, object]]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            warnings.append(f"line {number} skipped: invalid JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            warnings.append(f"line {number} skipped: not a JSON object")
            continue
        keys.update(dict.fromkeys(record))
        rows.append((number, record))
    return list(keys), rows


def _value(row: dict[str, object], column: str) -> str:
    """A cell as stripped text; JSON numbers become text and lists are joined line by line."""
    value = row.get(column)
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(str(item).strip() for item in value if item is not None and str(item).strip())
    return str(value).replace("\r\n", "\n").strip()


def load_records(
    data: bytes, *, name: str, fmt: str, columns: dict[str, object], url: str | None = None
) -> list[LoadedDocument]:
    """Load a CSV or JSONL file as one document per record; skipped rows are warnings on the first document."""
    roles = _validate_columns(columns)
    if fmt not in ("csv", "jsonl"):
        raise ManifestError(f"{name}: record format must be 'csv' or 'jsonl', got {fmt!r}")
    text = _decode(data, name=name, fmt=fmt)
    if not text.strip():
        raise SourceReadError(f"{name}: empty file")

    warnings: list[str] = []
    unit = "row" if fmt == "csv" else "line"
    if fmt == "csv":
        header, rows = _csv_rows(text, name=name)
    else:
        header, rows = _jsonl_rows(text, warnings)
        if not rows:
            raise SourceReadError(f"{name}: no JSON records ({'; '.join(warnings[:3]) or 'no lines'})")

    present = set(header)
    for role, names in roles.items():
        for column in names:
            if column not in present:
                raise SourceReadError(
                    f"{name}: column {column!r} (role {role!r}) is not in the file; columns: {', '.join(header)}"
                )

    documents: list[LoadedDocument] = []
    first_seen: dict[str, int] = {}
    for number, row in rows:
        doc_id = _value(row, roles["id"][0])
        body = _value(row, roles["text"][0])
        if not doc_id:
            warnings.append(f"{unit} {number} skipped: no id in column {roles['id'][0]!r}")
            continue
        if not body:
            warnings.append(f"{unit} {number} skipped: empty text in column {roles['text'][0]!r} (id {doc_id})")
            continue
        if doc_id in first_seen:
            raise SourceReadError(
                f"{name}: duplicate id {doc_id!r} in {unit}s {first_seen[doc_id]} and {number}; ids must be unique"
            )
        first_seen[doc_id] = number

        label = _value(row, roles["label"][0]) if "label" in roles else ""
        title = " ".join(part for part in (_value(row, c) for c in roles.get("title", [])) if part)
        headings = tuple(part for part in (_value(row, c) for c in roles.get("headings", [])) if part)
        record_url = _value(row, roles["url"][0]) if "url" in roles else ""
        effective_date = None
        if "date" in roles:
            raw_date = _value(row, roles["date"][0])
            effective_date = iso_date(raw_date)
            if raw_date and effective_date is None:
                warnings.append(f"{unit} {number}: date {raw_date!r} is not a date (id {doc_id}); ignored")
        section = Section(text=body, label=label or None, heading_path=headings, is_article=bool(label))
        documents.append(
            LoadedDocument(
                doc_id=doc_id,
                title=title or label or doc_id,
                sections=(section,),
                url=record_url or url,
                effective_date=effective_date,
            )
        )

    if not documents:
        detail = "; ".join(warnings[:3]) if warnings else "no data rows"
        raise SourceReadError(f"{name}: no usable records ({detail})")
    if warnings:
        documents[0] = replace(documents[0], warnings=(*documents[0].warnings, *warnings))
    return documents
