"""Practice cases: what other local governments did, as structured records (YAML, JSON Lines or CSV).

Each record names the local government, the year, the procedure, the estimate, the subject, the outcome and the
lessons learned (and optionally a contact). One record is one document with one section, titled
"Praktijkvoorbeeld: <bestuur>, <jaar>" as officers cite it; the structured fields travel with every chunk so a
question can be answered with the cases of one procedure or one kind of local government.
"""

from __future__ import annotations

import csv
import io
import json
import re

import yaml

from corpus.documents import LoadedDocument, Section
from corpus.errors import SourceReadError
from corpus.loaders.text import decode_text, load_yaml
from common.vocabulary import GOVERNMENT_TYPES, PROCEDURES

FIELDS = ("id", "bestuur", "type_bestuur", "year", "procedure", "estimate_eur", "subject", "outcome", "lessons",
          "contact")
REQUIRED = ("id", "bestuur", "year", "procedure", "subject", "outcome", "lessons")
TYPES = GOVERNMENT_TYPES
MAX_FIELD_CHARS = 4000
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")


def load_cases(data: bytes, *, name: str, url: str | None = None) -> list[LoadedDocument]:
    """Every valid case as a document; a record with a problem is skipped and reported, not fatal."""
    records = _records(data, name=name)
    documents: list[LoadedDocument] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for n, record in enumerate(records, 1):
        try:
            documents.append(_case(record, url=url))
        except ValueError as exc:
            warnings.append(f"case #{n}: {exc}; skipped")
            continue
        if documents[-1].doc_id in seen:
            documents.pop()
            warnings.append(f"case #{n}: duplicate id; skipped")
            continue
        seen.add(documents[-1].doc_id)
    if not documents:
        raise SourceReadError(f"{name}: no usable case records" + (f" ({warnings[0]})" if warnings else ""))
    if warnings:
        first = documents[0]
        documents[0] = LoadedDocument(doc_id=first.doc_id, title=first.title, sections=first.sections,
                                      url=first.url, effective_date=first.effective_date, meta=first.meta,
                                      warnings=tuple(warnings))
    return documents


def _records(data: bytes, *, name: str) -> list[object]:
    text = decode_text(data, name=name)
    lower = name.lower()
    if lower.endswith((".yaml", ".yml")):
        try:
            loaded = load_yaml(text)
        except yaml.YAMLError as exc:
            raise SourceReadError(f"{name}: invalid YAML ({exc})") from None
        records = loaded.get("cases") if isinstance(loaded, dict) else loaded
        if not isinstance(records, list):
            raise SourceReadError(f"{name}: needs a 'cases' list")
        return records
    if lower.endswith(".jsonl"):
        out: list[object] = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append(f"line {n} is not JSON")
        return out
    if lower.endswith(".csv"):
        return list(csv.DictReader(io.StringIO(text)))
    raise SourceReadError(f"{name}: cases are read from .yaml, .jsonl or .csv files")


def _case(record: object, *, url: str | None) -> LoadedDocument:
    if not isinstance(record, dict):
        raise ValueError(str(record) if isinstance(record, str) else "not a mapping")
    values = {k: " ".join(str(record[k]).split())[:MAX_FIELD_CHARS] for k in FIELDS
              if record.get(k) not in (None, "")}
    missing = [k for k in REQUIRED if k not in values]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if not _ID.match(values["id"]):
        raise ValueError("id must be letters, digits, '.', '_' or '-'")
    if not re.fullmatch(r"(19|20)\d\d", values["year"]):
        raise ValueError(f"year must be a year, got {values['year']!r}")
    if values["procedure"] not in PROCEDURES:
        raise ValueError(f"unknown procedure {values['procedure']!r}")
    if values.get("type_bestuur", "andere") not in TYPES:
        raise ValueError(f"type_bestuur must be one of {', '.join(TYPES)}")
    estimate = values.get("estimate_eur")
    if estimate is not None:
        if not re.fullmatch(r"\d{1,12}", estimate.replace(".", "").replace(" ", "")):
            raise ValueError(f"estimate_eur must be a whole number of euros, got {estimate!r}")
        values["estimate_eur"] = estimate.replace(".", "").replace(" ", "")
    title = f"Praktijkvoorbeeld: {values['bestuur']}, {values['year']}"
    lines = [f"{values['bestuur']} ({values.get('type_bestuur', 'lokaal bestuur')}) gebruikte in {values['year']} "
             f"de procedure {values['procedure'].replace('-', ' ')} voor {values['subject']}."]
    if estimate is not None:
        lines.append(f"Raming: {int(values['estimate_eur']):,} euro exclusief btw.".replace(",", "."))
    lines += [f"Resultaat: {values['outcome']}", f"Lessen: {values['lessons']}"]
    if values.get("contact"):
        lines.append(f"Contact: {values['contact']}")
    meta = {k: values[k] for k in ("bestuur", "type_bestuur", "year", "procedure", "estimate_eur", "subject")
            if k in values}
    return LoadedDocument(doc_id=values["id"], title=title, url=url,
                          sections=(Section(text="\n".join(lines), label=values["subject"][:120]),),
                          meta=tuple(meta.items()))
