"""Template sources: document files an officer can download, described by a catalogue side file.

The catalogue (YAML, named by the source's ``catalogue`` field) gives per file: title, the procedures and phase it
serves, a short description, its version date and optionally a validity window. Each file's text is indexed (DOCX,
ODT, Markdown, PDF, text; a spreadsheet by its description only) behind a first section that says what the template
is, so "heb je een sjabloon voor ..." finds it; every chunk carries the file's path and digest so the helpdesk can
hand the file itself out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import yaml

from corpus.documents import LoadedDocument, Section
from corpus.errors import SourceReadError
from corpus.fetch import RawFile
from corpus.loaders.text import iso_date, load_yaml
from common.vocabulary import PHASES, PROCEDURES

TEXT_FORMATS = {".docx": "docx", ".odt": "odt", ".md": "markdown", ".markdown": "markdown", ".pdf": "pdf",
                ".txt": "text"}
DESCRIBED_ONLY = {".xlsx", ".ods", ".pptx", ".odp"}
"""Files whose text is not read (spreadsheets, slides): indexed by their catalogue description."""
_FIELDS = {"file", "title", "procedures", "phase", "description", "version", "valid_from", "valid_until"}


@dataclass(frozen=True)
class TemplateEntry:
    """One catalogue entry."""

    file: str
    title: str
    procedures: tuple[str, ...]
    phase: str | None
    description: str
    version: str
    valid_from: str | None = None
    valid_until: str | None = None


def parse_catalogue(data: bytes, *, name: str) -> dict[str, TemplateEntry]:
    """The catalogue's entries by file name; every problem names the entry and field."""
    try:
        loaded = load_yaml(data.decode("utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SourceReadError(f"{name}: not a valid YAML catalogue ({exc})") from None
    entries = loaded.get("templates") if isinstance(loaded, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SourceReadError(f"{name}: needs a non-empty 'templates' list")
    out: dict[str, TemplateEntry] = {}
    for n, entry in enumerate(entries, 1):
        where = f"{name}, template #{n}"
        if not isinstance(entry, dict):
            raise SourceReadError(f"{where}: must be a mapping")
        unknown = set(entry) - _FIELDS
        if unknown:
            raise SourceReadError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        for required in ("file", "title", "description", "version"):
            if not entry.get(required):
                raise SourceReadError(f"{where}: '{required}' is required")
        file = str(entry["file"])
        if PurePosixPath(file).name != file:
            raise SourceReadError(f"{where}: 'file' must be a file name in the catalogue's folder, got {file!r}")
        procedures = entry.get("procedures") or ["algemeen"]
        if isinstance(procedures, str):
            procedures = [procedures]
        bad = [p for p in procedures if p not in PROCEDURES]
        if bad:
            raise SourceReadError(f"{where}: unknown procedure(s) {', '.join(map(str, bad))}; "
                                  f"known: {', '.join(PROCEDURES)}")
        phase = entry.get("phase")
        if phase is not None and phase not in PHASES:
            raise SourceReadError(f"{where}: phase must be one of {', '.join(PHASES)}")
        dates = {}
        for key in ("version", "valid_from", "valid_until"):
            value = entry.get(key)
            dates[key] = iso_date(value) if value is not None else None
            if value is not None and dates[key] is None:
                raise SourceReadError(f"{where}: {key} must be a date (YYYY-MM-DD), got {value!r}")
        if file in out:
            raise SourceReadError(f"{where}: {file} is listed twice")
        out[file] = TemplateEntry(file=file, title=str(entry["title"]), procedures=tuple(procedures),
                                  phase=phase, description=" ".join(str(entry["description"]).split()),
                                  version=dates["version"], valid_from=dates["valid_from"],
                                  valid_until=dates["valid_until"])
    return out


def load_templates(files: Sequence[RawFile], *, catalogue: str, load) -> tuple[list[LoadedDocument], list[str]]:
    """Documents of a template source and warnings; ``load(raw, fmt)`` reads one file's text."""
    by_name = {raw.name: raw for raw in files}
    if catalogue not in by_name:
        raise SourceReadError(f"the catalogue {catalogue} is not among the source's files")
    entries = parse_catalogue(by_name[catalogue].data, name=catalogue)
    documents: list[LoadedDocument] = []
    warnings = [f"{e.file}: listed in {catalogue} but not found" for e in entries.values() if e.file not in by_name]
    for raw in files:
        if raw.name == catalogue:
            continue
        entry = entries.get(raw.name)
        if entry is None:
            warnings.append(f"{raw.name}: not in {catalogue}; not offered as a template")
            continue
        suffix = PurePosixPath(raw.name).suffix.lower()
        about = _about(entry)
        if suffix in TEXT_FORMATS:
            [doc] = load(raw, TEXT_FORMATS[suffix])[:1]
            sections = (about, *doc.sections)
        elif suffix in DESCRIBED_ONLY:
            sections = (about,)
        else:
            warnings.append(f"{raw.name}: {suffix or 'no extension'} is not a template format; skipped")
            continue
        meta = {"file": str(raw.path) if raw.path else "", "sha256": hashlib.sha256(raw.data).hexdigest(),
                "file_name": raw.name, "version": entry.version, "procedures": ",".join(entry.procedures),
                "description": entry.description}
        if entry.phase:
            meta["phase"] = entry.phase
        if entry.valid_from:
            meta["valid_from"] = entry.valid_from
        if entry.valid_until:
            meta["valid_until"] = entry.valid_until
        stem = PurePosixPath(raw.name).stem
        documents.append(LoadedDocument(doc_id=stem, title=entry.title, sections=tuple(sections), url=raw.link,
                                        effective_date=entry.version, meta=tuple(meta.items())))
    return documents, warnings


def _about(entry: TemplateEntry) -> Section:
    procedures = ", ".join(p.replace("-", " ") for p in entry.procedures)
    lines = [f"Sjabloon: {entry.title}.", entry.description, f"Voor: {procedures}."]
    if entry.phase:
        lines.append(f"Fase: {entry.phase}.")
    lines.append(f"Versie van {entry.version}.")
    return Section(text=" ".join(lines), label="Over dit sjabloon")

