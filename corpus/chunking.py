"""Legal-aware chunking: never across articles, long articles at §/lid boundaries, guidance at headings."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import replace

from corpus.documents import LoadedDocument, Section
from retrieval.types import Chunk

TARGET_CHARS = 1400
"""Aim for chunks below this size: ~350 e5 tokens of Dutch, well inside the 512-token window."""
MAX_CHARS = 2000
LIST_TARGET_CHARS = 700
"""Enumerations (definitions, conditions) are packed smaller so one chunk does not match everything."""

# Where an article may be cut: a paragraph "§ 2.", a numbered lid "2. " at line start, a point "3°", "a)".
_PARAGRAPH = re.compile(r"^\s*§\s*(\d+(?:/\d+)?)(?:er)?\.", re.UNICODE)
_LID = re.compile(r"^\s*(\d+)\.\s+\S")
_POINT = re.compile(r"^\s*(?:\d+°|[a-z]\)|[a-z]\.\s|-\s)", re.UNICODE)
_SUBPOINT = re.compile(r"^\s*(?:[a-z]{1,2}[.)]\s|[ivx]+[.)]\s|-\s)")
_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """A short, stable, URL-safe key for a label or heading."""
    return _SLUG.sub("-", text.lower()).strip("-")[:60] or "x"


def content_hash(text: str) -> str:
    """Hash of what is embedded: a changed hash means the chunk must be re-embedded."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def deep_link(url: str | None, section: Section) -> str | None:
    """The source link plus an anchor (article) or #page=N (PDF)."""
    if not url:
        return None
    base = url.split("#", 1)[0]
    if section.anchor:
        return f"{base}#{section.anchor}"
    if section.page:
        return f"{base}#page={section.page}"
    return url


def _blocks(text: str) -> list[tuple[str | None, str]]:
    """Split text into (sub-label, block) at paragraph / lid boundaries; points stay with their lead-in."""
    blocks: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in text.splitlines():
        par = _PARAGRAPH.match(line)
        lid = None if par else _LID.match(line)
        if par:
            blocks.append((f"§ {par.group(1)}", [line]))
        elif lid and blocks[-1][1]:
            blocks.append((f"lid {lid.group(1)}", [line]))
        else:
            blocks[-1][1].append(line)
    out = [(label, "\n".join(lines).strip()) for label, lines in blocks if "\n".join(lines).strip()]
    # A bare heading ("Art. 41.") or a one-line lead-in belongs with the first paragraph after it.
    if len(out) > 1 and out[0][0] is None and len(out[0][1]) < 200:
        out[1] = (out[1][0], out[0][1] + "\n" + out[1][1])
        out.pop(0)
    return out


def _split_long(text: str, target: int) -> list[str]:
    """Split an oversized block at its entries (sub-points stay with their entry), packing up to ``target``."""
    units: list[str] = []
    for line in text.splitlines():
        # "a." / "b)" / "- " continue the entry above them (a definition with its sub-points).
        if units and _SUBPOINT.match(line):
            units[-1] += "\n" + line
        else:
            units.append(line)
    pieces: list[str] = []
    for unit in units:
        if len(unit) <= MAX_CHARS:
            pieces.append(unit)
            continue
        sentences = re.split(r"(?<=[.;:])\s+", unit)
        pieces.extend(_pack(sentences, target, sep=" "))
    return _pack(pieces, target, sep="\n")


def _pack(parts: Iterable[str], target: int, *, sep: str) -> list[str]:
    out: list[str] = []
    for part in parts:
        if out and len(out[-1]) + len(part) + 1 <= target:
            out[-1] += sep + part
        else:
            out.append(part)
    return out


def split_article(section: Section) -> list[tuple[str | None, str]]:
    """Cut a long article into (label, text) pieces; each piece repeats the article label."""
    text = section.text.strip()
    if len(text) <= TARGET_CHARS:
        return [(section.label, text)]
    blocks = _blocks(text)
    # Enumeration-heavy articles (definitions) are cut finer so each piece stays specific.
    points = sum(1 for line in text.splitlines() if _POINT.match(line))
    target = LIST_TARGET_CHARS if points >= 8 else TARGET_CHARS
    pieces: list[tuple[str | None, str]] = []
    for sub, block in blocks:
        parts = [block] if len(block) <= target else _split_long(block, target)
        for part in parts:
            if pieces and sub is None and len(pieces[-1][1]) + len(part) < target:
                pieces[-1] = (pieces[-1][0], pieces[-1][1] + "\n" + part)
            else:
                pieces.append((sub, part))
    base = section.label or ""
    labelled: list[tuple[str | None, str]] = []
    for i, (sub, part) in enumerate(pieces):
        label = f"{base}, {sub}" if sub and base else (sub or base or None)
        if i and not sub and base:
            label = f"{base} (vervolg)"
        header = f"{base} (vervolg)\n" if i and base and not part.lower().startswith(base.lower()) else ""
        labelled.append((label, header + part))
    return labelled


def split_guidance(section: Section) -> list[tuple[str | None, str]]:
    """Cut a long guidance section at blank lines, packing paragraphs up to the target size."""
    text = section.text.strip()
    if len(text) <= TARGET_CHARS:
        return [(section.label, text)]
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    pieces: list[str] = []
    for para in paragraphs:
        pieces.extend(_split_long(para, TARGET_CHARS) if len(para) > TARGET_CHARS else [para])
    return [(section.label, part) for part in _pack(pieces, TARGET_CHARS, sep="\n\n")]


def chunk_document(doc: LoadedDocument, *, source_id: str, kind: str, start_position: int = 0) -> list[Chunk]:
    """Turn a loaded document into chunks with stable ids and full citation metadata."""
    chunks: list[Chunk] = []
    used_units: dict[str, int] = {}
    position = start_position
    for index, section in enumerate(doc.sections):
        if not section.text.strip():
            continue
        unit_key = slug(section.label) if section.label else f"s{index}"
        # Two sections with the same label (e.g. repeated headings) must not share a unit id.
        seen = used_units.get(unit_key, 0)
        used_units[unit_key] = seen + 1
        if seen:
            unit_key = f"{unit_key}-{seen + 1}"
        # An article is one citable unit even when a record file spreads it over several rows
        # (one row per lid): rows of the same document title and article label share the unit.
        owner = slug(doc.title) if section.is_article else doc.doc_id
        unit_id = f"{source_id}:{owner}:{unit_key}"
        pieces = split_article(section) if section.is_article else split_guidance(section)
        for n, (label, text) in enumerate(pieces):
            chunk = Chunk(
                id=f"{source_id}:{doc.doc_id}:{unit_key}:{n}",
                source_id=source_id,
                doc_id=doc.doc_id,
                unit_id=unit_id,
                title=doc.title,
                kind=kind,
                text=text,
                content_hash="",
                label=label,
                heading_path=section.heading_path,
                page=section.page,
                url=deep_link(doc.url, section),
                effective_date=doc.effective_date,
                language=doc.language,
                position=position,
                meta=tuple(sorted(doc.meta)),
            )
            position += 1
            chunks.append(_with_hash(chunk))
    return chunks


def _with_hash(chunk: Chunk) -> Chunk:
    return replace(chunk, content_hash=content_hash(chunk.embedding_text()))
