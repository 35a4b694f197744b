"""Loaders for word-processor files: DOCX (python-docx) and ODT (odfpy), split into headed sections.

A heading paragraph (Word's "Heading n" / "Kop n" styles or an outline level; ODF's ``text:h``) opens a section;
the paragraphs, list items and table rows under it are its text. Before a package is handed to either library its
ZIP directory is checked, so a file that claims gigabytes of content (a "zip bomb") is refused unread.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Iterator

from corpus.documents import LoadedDocument, Section
from corpus.errors import SourceReadError
from corpus.loaders.text import github_slug

MAX_UNPACKED_BYTES = 100 * 1024 * 1024
MAX_ENTRIES = 5_000
MAX_RATIO = 200
"""A part that unpacks to more than this many times its packed size (and over a megabyte) is refused."""
_HEADING_STYLE = re.compile(r"^(?:heading|kop)\s*(\d)$", re.IGNORECASE)
_TITLE_STYLES = {"title", "titel"}


def check_package(data: bytes, *, name: str) -> None:
    """Refuse a ZIP package that is damaged, has too many parts or unpacks to too much."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            infos = package.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise SourceReadError(f"{name}: not a readable document package ({exc})") from None
    if len(infos) > MAX_ENTRIES:
        raise SourceReadError(f"{name}: {len(infos)} parts in the package, more than {MAX_ENTRIES}")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNPACKED_BYTES:
        raise SourceReadError(f"{name}: unpacks to {total} bytes, over the {MAX_UNPACKED_BYTES}-byte limit")
    for info in infos:
        if info.file_size > 1024 * 1024 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise SourceReadError(f"{name}: part {info.filename[:80]} is compressed suspiciously well; refused")


def load_docx(data: bytes, *, name: str, url: str | None = None, title: str | None = None) -> list[LoadedDocument]:
    """A Word document as one document of headed sections."""
    check_package(data, name=name)
    import docx  # python-docx: imported here, only sources with Word files need it
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise SourceReadError(f"{name}: not a Word document ({type(exc).__name__})") from None
    blocks = list(_docx_blocks(document))
    core_title = (document.core_properties.title or "").strip()
    return [_document(blocks, name=name, url=url, title=title or core_title or None)]


def _docx_blocks(document) -> Iterator[tuple[int, str]]:
    """(heading level or 0, text) for every paragraph and table row, in document order."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    body = document.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(child, document)
            yield _docx_level(paragraph), paragraph.text
        elif tag == "tbl":
            for row in Table(child, document).rows:
                cells = list(dict.fromkeys(cell.text.strip() for cell in row.cells if cell.text.strip()))
                if cells:
                    yield 0, " | ".join(cells)


def _docx_level(paragraph) -> int:
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    match = _HEADING_STYLE.match(style.strip())
    if match:
        return int(match.group(1))
    return 1 if style.strip().lower() in _TITLE_STYLES else 0


def load_odt(data: bytes, *, name: str, url: str | None = None, title: str | None = None) -> list[LoadedDocument]:
    """An OpenDocument text as one document of headed sections."""
    check_package(data, name=name)
    from odf import teletype
    from odf.element import Element
    from odf.opendocument import load

    try:
        document = load(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - odfpy raises whatever its XML and ZIP layers raise
        raise SourceReadError(f"{name}: not an OpenDocument text ({type(exc).__name__})") from None

    def blocks(nodes: Iterable[Element]) -> Iterator[tuple[int, str]]:
        for node in nodes:
            if not isinstance(node, Element):
                continue
            tag = node.qname[1]
            if tag == "h":
                level = node.getAttribute("outlinelevel")
                yield (int(level) if level and str(level).isdigit() else 1), teletype.extractText(node)
            elif tag == "p":
                yield 0, teletype.extractText(node)
            elif tag in ("list", "list-item", "section", "table", "table-row", "table-header-rows"):
                yield from blocks(node.childNodes)
            elif tag == "table-cell":
                yield 0, teletype.extractText(node)

    found = list(blocks(document.text.childNodes))
    return [_document(found, name=name, url=url, title=title)]


def _document(blocks: list[tuple[int, str]], *, name: str, url: str | None, title: str | None) -> LoadedDocument:
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []

    def close() -> None:
        text = "\n".join(line for line in lines if line.strip()).strip()
        if text:
            heading = path[-1][1] if path else None
            sections.append(Section(text=text, label=heading, heading_path=tuple(h for _, h in path[:-1]),
                                    anchor=github_slug(heading) if heading else None))
        lines.clear()

    first_heading = None
    for level, raw in blocks:
        text = " ".join(raw.split())
        if not text:
            continue
        if level:
            close()
            first_heading = first_heading or text
            path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, text)]
        else:
            lines.append(text)
    close()
    if not sections:
        raise SourceReadError(f"{name}: the document has no text besides headings")
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", name)
    return LoadedDocument(doc_id=stem, title=title or first_heading or stem, sections=tuple(sections), url=url)
