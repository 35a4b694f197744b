"""Format detection and dispatch to the loader for each format."""

from __future__ import annotations

from corpus.documents import LoadedDocument
from corpus.errors import SourceReadError
from corpus.fetch import RawFile
from corpus.manifest import SourceSpec

_BY_SUFFIX = {
    ".pdf": "pdf", ".html": "html", ".htm": "html", ".md": "markdown",
    ".markdown": "markdown", ".txt": "text", ".csv": "csv", ".jsonl": "jsonl", ".docx": "docx", ".odt": "odt",
}


def detect_format(name: str, data: bytes) -> str:
    """The format of a file from its name, else from its first bytes."""
    lower = name.lower()
    if lower.endswith(".xml"):
        # BWB acts and EUR-Lex XHTML pages both end in .xml; the root element tells them apart.
        if b"<toestand" in data[:4096]:
            return "bwb-xml"
        if b"<html" in data[:4096].lower():
            return "html"
        raise SourceReadError(f"{name}: XML that is neither a BWB act nor XHTML (name the format in the manifest)")
    for suffix, fmt in _BY_SUFFIX.items():
        if lower.endswith(suffix):
            return fmt
    head = data[:2048].lstrip().lower()
    if head.startswith(b"%pdf"):
        return "pdf"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "html"
    if head.startswith(b"<?xml") and b"<toestand" in data[:4096]:
        return "bwb-xml"
    raise SourceReadError(f"{name}: unknown format (name the format in the manifest)")


def load_file(raw: RawFile, spec: SourceSpec, fmt: str | None = None) -> list[LoadedDocument]:
    """Parse one file of a source into documents (as ``fmt`` when given, else the source's or the detected one)."""
    fmt = fmt or spec.format or detect_format(raw.name, raw.data)
    if not raw.data.strip():
        raise SourceReadError(f"{raw.name}: the file is empty")
    if fmt in ("docx", "odt"):
        from corpus.loaders.office import load_docx, load_odt

        loader = load_docx if fmt == "docx" else load_odt
        return loader(raw.data, name=raw.name, url=raw.link, title=_single_title(spec))
    if fmt == "cases":
        from corpus.loaders.cases import load_cases

        return load_cases(raw.data, name=raw.name, url=raw.link)
    if fmt == "pdf":
        from corpus.loaders.pdf import load_pdf

        return load_pdf(raw.data, name=raw.name, url=raw.link, title=_single_title(spec))
    if fmt == "html":
        from corpus.loaders.html import load_html

        return load_html(raw.data, name=raw.name, url=raw.link, language=spec.language)
    if fmt == "bwb-xml":
        from corpus.loaders.bwb import load_bwb_xml

        return load_bwb_xml(raw.data, name=raw.name, url=raw.link)
    if fmt == "markdown":
        from corpus.loaders.text import load_markdown

        return load_markdown(raw.data, name=raw.name, url=raw.link, title=_single_title(spec))
    if fmt == "text":
        from corpus.loaders.text import load_text

        return load_text(raw.data, name=raw.name, url=raw.link, title=_single_title(spec))
    if fmt in ("csv", "jsonl"):
        from corpus.loaders.records import load_records

        return load_records(raw.data, name=raw.name, fmt=fmt, columns=spec.columns, url=raw.link)
    raise SourceReadError(f"{raw.name}: no loader for format {fmt!r}")


def _single_title(spec: SourceSpec) -> str | None:
    # A glob source holds many documents: the source title would wrongly name each of them.
    return None if any(ch in spec.location for ch in "*?[") else spec.title
