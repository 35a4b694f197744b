"""Loader for PDF files; the only module that imports pypdf.

Text is extracted page by page. When the text contains article headings ("Artikel 12.",
"Art. 42/1.", "Art. 2.31a") the document is split at them, across page breaks, so that an
article is one section that starts on a known page. Other PDFs get one section per page: a
heading guess on extracted PDF text (no blank lines, no font sizes) is too unreliable to be
worth it, and a page is a unit a reader can open with ``#page=N``.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field

from pypdf import PasswordType, PdfReader

from corpus.documents import LoadedDocument, Section
from corpus.errors import SourceReadError
from corpus.loaders.text import doc_id_from_name

logger = logging.getLogger(__name__)

_ORDINALS = "bis|ter|quater|quinquies|sexies|septies|octies|novies|decies"
# "Artikel 12." / "Art. 42/1." / "Art. 2.31a" / "Artikel 1:1" / "Art. 7bis" at the start of a line.
_ARTICLE = re.compile(
    rf"^(?:Artikel|ARTIKEL|Art\.|ART\.)\s*(?P<nr>\d+(?:[./:]\d+)*(?:\s?(?:{_ORDINALS}))?[a-z]?)(?P<rest>.*)$"
)
_STRUCTURE_RANK = {
    "boek": 0,
    "deel": 1,
    "titel": 2,
    "hoofdstuk": 3,
    "afdeling": 4,
    "onderafdeling": 5,
    "paragraaf": 6,
}
_STRUCTURE = re.compile(
    r"^(?P<kw>Boek|BOEK|Deel|DEEL|Titel|TITEL|Hoofdstuk|HOOFDSTUK|Afdeling|AFDELING|Onderafdeling|ONDERAFDELING"
    r"|Paragraaf|PARAGRAAF)\s+(?P<nr>[0-9IVXLC]+(?:\.\d+)*[a-z]?)\.?(?P<rest>.*)$"
)
_ANNEX = re.compile(r"^(?:Bijlage|BIJLAGE|Annex|ANNEX)(?:\s+\S+)?(?:\s*[-–—:.].*)?$")
_PAGE_NUMBER = re.compile(
    r"^(?:[-–]\s*)?\d{1,4}(?:\s*[-–])?$"  # "12", "- 12 -"
    r"|^\d{1,4}\s*/\s*\d{1,4}$"  # "3/10"
    r"|^(?:pagina|page|blz\.?|p\.)\s*\d{1,4}(?:\s*(?:van|of|/)\s*\d{1,4})?$",  # "Pagina 3 van 10"
    re.IGNORECASE,
)
_MAX_HEADING = 120
# A table-of-contents entry ("Art. 1. Definities ........ 3") names an article without being one.
_TOC_ENTRY = re.compile(r"(?:\.\s?){4,}\s*\d+$|\s{3,}\d+$")


@dataclass
class _Unit:
    """A section being collected from consecutive lines."""

    page: int
    label: str | None = None
    is_article: bool = False
    heading_path: tuple[str, ...] = ()
    lines: list[str] = field(default_factory=list)


def _open(data: bytes, *, name: str) -> PdfReader:
    """Open a PDF, decrypting it with the empty password when it only has an owner password."""
    if b"%PDF" not in data[:1024]:
        raise SourceReadError(f"{name}: not a PDF file (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except Exception as exc:  # pypdf raises many exception types on damaged files; all mean "unreadable"
        raise SourceReadError(f"{name}: corrupt or unreadable PDF ({type(exc).__name__}: {exc})") from exc
    if reader.is_encrypted:
        try:
            result = reader.decrypt("")
        except Exception as exc:  # e.g. AES encryption without the optional crypto package
            raise SourceReadError(f"{name}: encrypted PDF cannot be opened ({type(exc).__name__}: {exc})") from exc
        if result == PasswordType.NOT_DECRYPTED:
            raise SourceReadError(f"{name}: PDF is encrypted with a password; provide an unprotected copy")
    return reader


def _page_lines(reader: PdfReader, *, name: str, warnings: list[str]) -> list[list[str]]:
    """The non-empty, stripped text lines of every page (an empty list for a page without text)."""
    try:
        pages = list(reader.pages)
    except Exception as exc:  # a broken page tree surfaces only when the pages are walked
        raise SourceReadError(f"{name}: corrupt or unreadable PDF ({type(exc).__name__}: {exc})") from exc
    result: list[list[str]] = []
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # one damaged page should not lose the others
            warnings.append(f"page {number} could not be read ({type(exc).__name__}: {exc})")
            result.append([])
            continue
        lines = [line.strip() for line in text.replace("\r", "\n").split("\n")]
        lines = [line for line in lines if line]
        if not lines:
            warnings.append(f"page {number} has no extractable text (scanned?)")
        result.append(lines)
    return result


def _strip_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Drop page numbers and running headers/footers, which would otherwise split an article's text."""
    with_text = [lines for lines in pages if lines]

    def key(line: str) -> str:
        """The line with numbers masked, so "Pagina 2" and "Pagina 3" count as the same footer."""
        return re.sub(r"\d+", "#", line)

    edges: Counter[str] = Counter()
    for lines in with_text:
        # Pages of a law often open with "Art. 12." or a chapter; with digits masked those would look
        # like a repeated header, so headings are never candidates.
        edges.update(
            {
                key(line)
                for line in (lines[0], lines[-1])
                if len(line) <= _MAX_HEADING and _article_heading(line) is None and _structure_heading(line) is None
            }
        )
    # A line that opens or closes at least half the pages (and two of them) is a running header or footer.
    needed = max(2, math.ceil(len(with_text) / 2))
    running = {edge for edge, count in edges.items() if count >= needed}
    cleaned: list[list[str]] = []
    for lines in pages:
        lines = list(lines)
        for position in (0, -1):
            while lines and (_PAGE_NUMBER.match(lines[position]) or key(lines[position]) in running):
                lines.pop(position)
        cleaned.append(lines)
    return cleaned


def _article_heading(line: str) -> str | None:
    """The article number when a line opens an article, else None."""
    match = _ARTICLE.match(line)
    if not match or _TOC_ENTRY.search(line):
        return None
    rest = match.group("rest")
    # "Artikel 3 van de wet ..." is prose that happens to start a line; headings end, or go on with
    # ". ", a dash, or a capitalised title ("Artikel 3 Toepassingsbereik").
    if (
        rest == ""
        or re.match(r"^\.(\s|$)", rest)
        or re.match(r"^\s*[-–—:]\s", rest)
        or (re.match(r"^\s+[A-Z§]", rest) and len(line) <= _MAX_HEADING)
    ):
        return re.sub(r"\s+", "", match.group("nr"))
    return None


def _structure_heading(line: str) -> tuple[int, bool] | None:
    """(rank, has its own title) when a line is a chapter-like heading ("Hoofdstuk 2. Procedures"), else None."""
    match = _STRUCTURE.match(line)
    if not match or len(line) > _MAX_HEADING or _TOC_ENTRY.search(line):
        return None
    rest = match.group("rest")
    if rest and not re.match(r"^\s*(?:[-–—:.]\s*|\s+[A-Z])", rest):
        return None
    return _STRUCTURE_RANK[match.group("kw").lower()], bool(rest.strip(" .-–—:"))


def _split_articles(pages: list[list[str]]) -> list[_Unit]:
    """Split page lines at article headings; text before the first article stays per page."""
    units: list[_Unit] = []
    current: _Unit | None = None
    path: list[tuple[int, str]] = []
    in_articles = False
    for page_number, lines in enumerate(pages, start=1):
        if not in_articles:
            current = None
        index = 0
        while index < len(lines):
            line = lines[index]
            index += 1
            nr = _article_heading(line)
            if nr is not None:
                in_articles = True
                current = _Unit(
                    page=page_number, label=f"art. {nr}", is_article=True, heading_path=tuple(h for _, h in path)
                )
                current.lines.append(line)
                units.append(current)
                continue
            structure = _structure_heading(line)
            if structure is not None:
                rank, titled = structure
                heading = line
                # A bare "HOOFDSTUK 2" is often followed by its title on the next line.
                if not titled and index < len(lines) and _is_title_line(lines[index]):
                    heading = f"{line} {lines[index]}"
                    index += 1
                while path and path[-1][0] >= rank:
                    path.pop()
                path.append((rank, heading))
                if in_articles:
                    current = None  # the next article starts a new unit; loose text goes to a new one
                continue
            if in_articles and _ANNEX.match(line) and len(line) <= _MAX_HEADING:
                current = _Unit(page=page_number, label=line)
                current.lines.append(line)
                units.append(current)
                continue
            if current is None:
                current = _Unit(page=page_number, heading_path=tuple(h for _, h in path))
                units.append(current)
            current.lines.append(line)
    return units


def _is_title_line(line: str) -> bool:
    """A short line that reads as a title rather than an article or a sentence."""
    return (
        len(line) <= _MAX_HEADING
        and not line.endswith((".", ",", ";"))
        and line[:1].isupper()
        and _article_heading(line) is None
        and _structure_heading(line) is None
    )


def load_pdf(data: bytes, *, name: str, url: str | None = None, title: str | None = None) -> list[LoadedDocument]:
    """Load a PDF as one document: one section per article when it has articles, else one per page."""
    reader = _open(data, name=name)
    warnings: list[str] = []
    pages = _page_lines(reader, name=name, warnings=warnings)
    if not any(pages):
        raise SourceReadError(
            f"{name}: no extractable text in any of its {len(pages)} page(s) (scanned PDF? it needs OCR first)"
        )
    pages = _strip_running_lines(pages)

    has_articles = any(_article_heading(line) is not None for lines in pages for line in lines)
    if has_articles:
        units = _split_articles(pages)
        starts: dict[str, list[int]] = {}
        for unit in units:
            if unit.is_article and unit.label:
                starts.setdefault(unit.label, []).append(unit.page)
        for label, pages_of_label in starts.items():
            if len(pages_of_label) > 1:
                # Two laws in one file, or a quoted article: citations by label would be ambiguous.
                listed = ", ".join(str(page) for page in pages_of_label)
                warnings.append(f"article {label} occurs {len(pages_of_label)} times (pages {listed})")
    else:
        units = [_Unit(page=number, lines=lines) for number, lines in enumerate(pages, start=1) if lines]
    sections = tuple(
        Section(
            text="\n".join(unit.lines),
            label=unit.label,
            heading_path=unit.heading_path,
            anchor=f"page={unit.page}",
            page=unit.page,
            is_article=unit.is_article,
        )
        for unit in units
        if unit.lines
    )

    meta_title = None
    try:
        meta_title = (reader.metadata.title or "").strip() if reader.metadata else None
    except Exception as exc:  # a damaged info dictionary should not cost the text
        logger.debug("%s: unreadable PDF metadata: %s", name, exc)
    return [
        LoadedDocument(
            doc_id=doc_id_from_name(name),
            title=title or meta_title or name,
            sections=sections,
            url=url,
            warnings=tuple(warnings),
        )
    ]
