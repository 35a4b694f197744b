"""Loader for HTML pages: Justel legislation, Belgisch Staatsblad, EUR-Lex acts and generic guidance pages.

``load_html`` recognises the page kind and reads it with the matching rules:

* Justel consolidated legislation (the 2024 design and the older table design): one section per
  ``<A NAME='Art.N'>`` article, with the structure headings (BOEK, TITEL, HOOFDSTUK, ...) as heading path,
  amendment markers ``[1 ... ]1`` removed and the amendment footnotes kept apart as notes;
* Belgisch Staatsblad publication pages: the publication text, split at "Artikel N." / "Art. N." lines;
* EUR-Lex Official Journal and consolidated texts: articles, recitals and annexes as separate sections;
* anything else: sections start at ``h1``-``h6`` headings.

lxml is used only inside this module; callers get plain ``LoadedDocument`` values.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import lxml.html
from lxml import etree

from corpus.documents import LoadedDocument, Section
from corpus.errors import SourceReadError
from corpus.loaders.text import decode_bytes, doc_id_from_name

logger = logging.getLogger(__name__)

__all__ = ["load_html"]


def load_html(
    data: bytes, *, name: str, url: str | None = None, language: str | None = None
) -> list[LoadedDocument]:
    """Read one HTML page into documents, choosing the Justel, Staatsblad, EUR-Lex or generic reader."""
    text = _decode(data, name)
    root = _parse(text, name)
    page = _Page(root=root, source=text, name=name, url=url, language=language)
    if _is_justel(root):
        return [_load_justel(page)]
    if _is_staatsblad(root):
        return [_load_staatsblad(page)]
    if _is_eurlex(root):
        document = _load_eurlex(page)
        if document is not None:
            return [document]
        logger.info("%s: looks like EUR-Lex but has no articles, recitals or annexes; reading it as plain HTML", name)
    return [_load_generic(page)]


# --------------------------------------------------------------------------------------------------
# Bytes to text, text to tree

_MAGIC = {
    b"%PDF": "a PDF file",
    b"PK\x03\x04": "a ZIP archive (for example .docx or .xlsx)",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "gzip-compressed data",
    b"\xd0\xcf\x11\xe0": "an old Microsoft Office document",
}
# Pages that declare Latin-1 are decoded as cp1252: a superset that also covers € and curly quotes.
_LATIN1_NAMES = {"iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "windows-1252", "cp1252"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_.-]+)""")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
# C0/C1 control characters never occur in real HTML text; many of them mean the bytes are not text at all.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_BINARY_RATIO = 0.005


def _decode(data: bytes, name: str) -> str:
    """Decode page bytes: declared charset, else UTF-8, else cp1252; reject binary data."""
    if not data.strip():
        raise SourceReadError(f"{name}: empty file, there is no HTML to read")
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise SourceReadError(f"{name}: this is {what}, not an HTML page")
    text = decode_bytes(data, name=name, what="an HTML page",
                        eight_bit=lambda raw: _decode_8bit(raw.removeprefix(b"\xef\xbb\xbf")))
    sample = text[:65536]
    if len(_CONTROL.findall(sample)) > _BINARY_RATIO * len(sample):
        raise SourceReadError(f"{name}: looks like binary data (many control characters), not an HTML page")
    text = _CONTROL.sub(" ", text)
    if not text.strip():
        raise SourceReadError(f"{name}: empty file, there is no HTML to read")
    return text


def _decode_8bit(data: bytes) -> str:
    """Decode bytes without a BOM, trusting a declared Latin-1 charset over a UTF-8 guess."""
    head = data[:4096]
    match = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    declared = match.group(1).decode("ascii", "replace").lower() if match else None
    if declared in _LATIN1_NAMES:
        return _decode_cp1252(data)
    if declared:
        try:
            codec = codecs.lookup(declared).name
            return data.decode(codec)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown declaration ("UNICODE-1-1-UTF-8" on old EUR-Lex pages): guess instead
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _decode_cp1252(data)


def _decode_cp1252(data: bytes) -> str:
    """Decode as cp1252; latin-1 takes the five bytes cp1252 leaves undefined, so it never fails."""
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _parse(text: str, name: str) -> lxml.html.HtmlElement:
    """Parse decoded HTML (or XHTML) into an lxml tree."""
    # lxml refuses str input that still carries an XML encoding declaration.
    text = _XML_DECLARATION.sub("", text, count=1)
    try:
        return lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        raise SourceReadError(f"{name}: cannot parse the HTML ({exc})") from exc


@dataclass
class _Page:
    """A parsed page plus what the caller told us about it."""

    root: lxml.html.HtmlElement
    source: str
    name: str
    url: str | None
    language: str | None


# --------------------------------------------------------------------------------------------------
# Turning elements into lines of text

_WHITESPACE = re.compile(r"\s+")
_MARK = "\x00"
"""Starts a marker line that a renderer puts among the text lines (control characters are removed from input)."""
_BLOCK_TAGS = frozenset(
    "address article aside blockquote body caption center dd details dir div dl dt fieldset figcaption figure "
    "form h1 h2 h3 h4 h5 h6 hr html legend li main menu ol p pre section summary table tbody tfoot thead tr "
    "txt_te ul".split()
)
_SKIP_TAGS = frozenset("script style noscript template head title meta link svg iframe object button select".split())


def _clean(text: str) -> str:
    """Collapse whitespace, NBSP included, to single spaces."""
    return _WHITESPACE.sub(" ", text).strip()


def _element_text(el: lxml.html.HtmlElement) -> str:
    """The visible text of one element on a single line."""
    return _clean(" ".join(_TextRenderer().render(el)))


class _TextRenderer:
    """Renders an element tree as plain text lines: block elements and ``<br>`` end a line."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._parts: list[str] = []
        self._stopped = False

    def render(self, el: lxml.html.HtmlElement) -> list[str]:
        """Render ``el`` and everything inside it; returns the lines collected so far."""
        self.walk(el)
        self.end_line()
        self.lines = _join_labels(self.lines)
        return self.lines

    def end_line(self) -> None:
        """Close the line being built (empty lines are dropped)."""
        if self._parts:
            line = _clean("".join(self._parts))
            self._parts.clear()
            if line:
                self.lines.append(line)

    def add(self, text: str | None) -> None:
        """Append inline text to the current line."""
        if text and not self._stopped:
            self._parts.append(text)

    def mark(self, value: str) -> None:
        """Insert a marker line (see ``_MARK``) at the current position."""
        self.end_line()
        self.lines.append(_MARK + value)

    def stop(self) -> None:
        """Ignore everything after this point."""
        self.end_line()
        self._stopped = True

    def handle(self, el: lxml.html.HtmlElement, tag: str) -> bool:
        """Hook for subclasses: return True when ``el`` was fully handled (its tail is still added)."""
        return False

    def walk(self, el: lxml.html.HtmlElement) -> None:
        """Render one element and its children (not its tail)."""
        if self._stopped or not isinstance(el.tag, str):
            return  # comments and processing instructions: their tail is added by the parent
        tag = el.tag.lower()
        if tag in _SKIP_TAGS or self.handle(el, tag):
            return
        if tag == "br":
            self.end_line()
            return
        if tag == "table":
            self._table(el)
            return
        block = tag in _BLOCK_TAGS
        if block:
            self.end_line()
        if tag == "li":
            parent = el.getparent()
            self.add("- " if parent is None or parent.tag != "ol" else f"{parent.index(el) + 1}. ")
        self.add(el.text)
        for child in el:
            self.walk(child)
            self.add(child.tail)
        if block:
            self.end_line()
        elif tag in ("td", "th"):
            self.add(" ")

    def _table(self, table: lxml.html.HtmlElement) -> None:
        """Render a table row by row; a row with a short label cell ("(a)", "1.") becomes "(a) text"."""
        self.end_line()
        for row in table.xpath("./tr | ./thead/tr | ./tbody/tr | ./tfoot/tr"):
            cells = [lines for lines in (self._cell(cell) for cell in row.xpath("./td | ./th")) if lines]
            if not cells:
                continue
            labels = cells[:-1]
            if labels and all(len(c) == 1 and _CELL_LABEL.fullmatch(c[0]) for c in labels):
                last = cells[-1]
                self.lines.append(" ".join(c[0] for c in labels) + " " + last[0])
                self.lines.extend(last[1:])
            elif len(cells) > 1 and all(len(c) == 1 and not c[0].startswith(_MARK) for c in cells):
                self.lines.append(" | ".join(c[0] for c in cells))
            else:
                for c in cells:
                    self.lines.extend(c)

    def _cell(self, cell: lxml.html.HtmlElement) -> list[str]:
        """Render one table cell into its own lines, keeping the renderer's hooks and state."""
        saved_lines, saved_parts = self.lines, self._parts
        self.lines, self._parts = [], []
        try:
            self.walk(cell)
            self.end_line()
            return self.lines
        finally:
            self.lines, self._parts = saved_lines, saved_parts


# A point label printed apart from its text: in its own table cell, or its own line (consolidated EUR-Lex).
_LONE_LABEL = re.compile(r"(?:\(?[0-9]{1,3}[a-z]?[.)°]|\(?[a-z]{1,2}\)|\([ivxlc]{1,6}\)|[—–•-])")
_CELL_LABEL = re.compile(r"\(?(?:\d{1,3}(?:\.\d{1,3})*|[a-z]{1,2}|[ivxlc]{1,6}|[A-Z])[.)°]?\)?|[—–•-]")


def _join_labels(lines: list[str]) -> list[str]:
    """Join a lone point label ("1.", "(a)", "—") to the line after it, as printed on the page."""
    joined: list[str] = []
    for line in lines:
        if joined and _LONE_LABEL.fullmatch(joined[-1]) and not line.startswith(_MARK):
            joined[-1] = f"{joined[-1]} {line}"
        else:
            joined.append(line)
    return joined


def _split_marks(lines: Iterable[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Split rendered lines at marker lines: (lines before the first marker, [(marker, lines after it)])."""
    before: list[str] = []
    segments: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith(_MARK):
            segments.append((line[1:], []))
        elif segments:
            segments[-1][1].append(line)
        else:
            before.append(line)
    return before, segments


# --------------------------------------------------------------------------------------------------
# Shared helpers: headings, dates, language

# Structure levels, outermost first; Justel and EUR-Lex words in Dutch, French, German and English.
_LEVEL_WORDS = {
    "deel": 0, "partie": 0, "part": 0, "teil": 0,
    "boek": 1, "livre": 1, "buch": 1,
    "titel": 2, "titre": 2, "title": 2,
    "hoofdstuk": 3, "chapitre": 3, "chapter": 3, "kapitel": 3,
    "afdeling": 4, "section": 4, "abschnitt": 4,
    "onderafdeling": 5, "sous-section": 5, "subsection": 5, "sub-section": 5, "unterabschnitt": 5,
}  # fmt: skip
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)?")


def _heading_level(text: str) -> int | None:
    """The structure level named by a heading's first or second word ("VOORAFGAANDE TITEL"), if any."""
    for word in _WORD.findall(text)[:2]:
        level = _LEVEL_WORDS.get(word.lower())
        if level is not None:
            return level
    return None


def _push_heading(stack: list[tuple[int, str]], level: int, text: str) -> None:
    """Put a heading on the stack, replacing headings of the same or a lower level."""
    while stack and stack[-1][0] >= level:
        stack.pop()
    stack.append((level, text))


def _iso_from_dmy(day: str, month: str, year: str) -> str | None:
    """An ISO date from day, month and year strings, or None when they do not form a date."""
    d, m, y = int(day), int(month), int(year)
    if 1 <= d <= 31 and 1 <= m <= 12 and 1000 <= y <= 9999:
        return f"{y:04d}-{m:02d}-{d:02d}"
    return None


_STOPWORDS = {
    "nl": frozenset("het een van zijn niet wordt worden voor met dat bij door deze naar ook".split()),
    "fr": frozenset("le la les des du une est dans par pour qui sont au aux cette ou".split()),
    "en": frozenset("the of and to is that for by with shall be this which are".split()),
    "de": frozenset("der das und ist von zu mit nicht wird eine dem des auf sich".split()),
}
_TOKEN = re.compile(r"[^\W\d_]+")


def _guess_language(texts: Iterable[str]) -> str | None:
    """Guess nl, fr, en or de from common function words in the first few thousand words."""
    counts = dict.fromkeys(_STOPWORDS, 0)
    seen = 0
    for text in texts:
        for token in _TOKEN.findall(text.lower()):
            for lang, words in _STOPWORDS.items():
                if token in words:
                    counts[lang] += 1
            seen += 1
        if seen > 5000:
            break
    best = max(counts, key=lambda lang: counts[lang])
    return best if counts[best] >= 3 else None


def _normalise_language(value: str | None) -> str | None:
    """The two-letter code of "NL", "nl-BE" or "fr_FR"; None for empty values."""
    if not value or not value.strip():
        return None
    return re.split(r"[-_]", value.strip())[0].lower() or None


def _class_names(el: lxml.html.HtmlElement) -> list[str]:
    """The element's CSS classes."""
    return (el.get("class") or "").split()


def _has_class(name: str) -> str:
    """XPath predicate body that tests for one CSS class."""
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


# --------------------------------------------------------------------------------------------------
# Justel consolidated legislation

_LNK_NAME = re.compile(r"LNK\d+")
# An old-style inline amendment note: "<W 1999-05-04/60, art. 5; Inwerkingtreding : 02-07-1999>".
_INLINE_NOTE = re.compile(r"<([^<>]*?(?:\d{4}-\d{2}-\d{2}/\d+|\d{2}-\d{2}-\d{4})[^<>]*)>")
# Justel itself sometimes truncates a note: "<W 1995-..., art. 7; Inwerkingtreding : 20-05-1995 Text" lacks its
# ">", and "text.. 21, 018; Inwerkingtreding : 11-08-1996>" or "(abrogé) -03-1987, art. 97>" lack their start.
# Both are amendment data, not text.
_UNCLOSED_NOTE = re.compile(r"<([^<>]*?(?:Inwerkingtreding|En vigueur)\s*:\s*\d{2}-\d{2}-\d{4})")
_HEADLESS_NOTE = re.compile(
    r"(?<=[.;)])(?:(?:[\d/.,; -]|art\.)*(?:Inwerkingtreding|En vigueur)\s*:\s*\d{2}-\d{2}-\d{4}[^<>]*"
    r"|\s*-?\d[\d/.,; -]*(?:art\.\s*\d+[\d/.,; -]*)*)>"
)
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+(?=[.,;:](?:\s|$))")
_NOTE_SEPARATOR = re.compile(r"-{5,}")
_FOOTNOTE = re.compile(r"\((\d+)\)\s*<(.*)>\s*$")
_FOOTNOTE_START = re.compile(r"\(\d+\)")
_JUSTEL_ARTICLE_HEAD = re.compile(r"(?:Art\.|Artikel|Article)\s*[^\s.]+\.?")
_ARTICLE_HEAD_THEN_PARAGRAPH = re.compile(r"((?:Art\.|Artikel|Article)\s*[^\s.]+\.?)\s+(§\s*\d.*)")
_CONSOLIDATED_UNTIL = re.compile(
    r"(?:tekstbijwerking\s+tot|mise\s+(?:à|&agrave;|a)\s+jour\s+au|Textaktualisierung\s+bis)\s*:?\s*"
    r"(?:<[^>]*>\s*)*(\d{1,2})-(\d{1,2})-(\d{4})",
    re.IGNORECASE,
)
_JUSTEL_ELI = re.compile(r"https?://www\.ejustice\.just\.fgov\.be/eli/[^\s<>\"']+")
_NUMAC = re.compile(r"\d{10}")
_DATED_TITLE = re.compile(r"^\d{1,2}(?:er)?\s+\S+\s+\d{4}\.?\s+-\s+\S")


def _is_justel(root: lxml.html.HtmlElement) -> bool:
    """Justel pages mark every article with an ``<A NAME='Art.N'>`` anchor."""
    return bool(root.xpath("//a[starts-with(@name, 'Art.')]"))


class _JustelRenderer(_TextRenderer):
    """Marks article and heading anchors and drops the red ``[1 ... ]1`` amendment markers."""

    def handle(self, el: lxml.html.HtmlElement, tag: str) -> bool:
        if tag == "a":
            name = el.get("name") or ""
            if name.startswith("Art."):
                self.mark("A" + name)
            elif _LNK_NAME.fullmatch(name):
                self.mark("H" + name)
            return False
        if tag == "sup" and el.text_content().strip().isdigit():
            # "[<sup>1</sup> text ]<sup>1</sup>": the bracket belongs to the marker, the text stays.
            if self._drop_bracket() or el.xpath(".//font[@color] | .//span[@style]"):
                return True
        return False

    def _drop_bracket(self) -> bool:
        """Remove a "[" or "]" that directly precedes an amendment marker; True when one was removed."""
        for i in range(len(self._parts) - 1, -1, -1):
            part = self._parts[i].rstrip(" ")
            if not part:
                continue
            if part[-1] in "[]":
                self._parts[i] = part[:-1]
                return True
            return False
        return False


def _load_justel(page: _Page) -> LoadedDocument:
    """Read a Justel page: one section per article, headings from the LNK structure anchors."""
    root = page.root
    anchors = root.xpath("//a[starts-with(@name, 'Art.')]")
    boxes = root.xpath("//div[@id='list-title-3']")
    container = boxes[0] if boxes else _common_ancestor(anchors[0], anchors[-1])
    _, segments = _split_marks(_JustelRenderer().render(container))

    headings: list[tuple[int, str]] = []
    sections: list[Section] = []
    for marker, lines in segments:
        kind, anchor = marker[0], marker[1:]
        if kind == "H":
            text = _justel_heading(lines[0] if lines else "")
            if text:
                level = _heading_level(text)
                # An untyped heading ("BIJZONDERE BEPALINGEN.") is taken as a sibling of the previous one.
                _push_heading(headings, level if level is not None else (headings[-1][0] if headings else 9), text)
            continue
        article = _justel_article(anchor, lines, tuple(text for _, text in headings))
        if article.text:
            sections.append(article)
    if not sections:
        raise SourceReadError(f"{page.name}: Justel page whose article anchors hold no text")

    eli = _justel_eli(root, page.source)
    numac = _justel_numac(root, eli)
    effective = None
    match = _CONSOLIDATED_UNTIL.search(page.source)
    if match:
        effective = _iso_from_dmy(*match.groups())
    language = page.language or _guess_language(s.text for s in sections)
    return LoadedDocument(
        doc_id=numac or doc_id_from_name(page.name),
        title=_justel_title(root) or doc_id_from_name(page.name),
        sections=tuple(sections),
        url=eli or page.url,
        effective_date=effective,
        language=language,
    )


def _common_ancestor(first: lxml.html.HtmlElement, last: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    """The nearest element that contains both anchors (and so every article in between)."""
    # lxml returns the same proxy object for a node while it is referenced, so identity tests are safe.
    last_ancestors = set(last.iterancestors())
    for ancestor in first.iterancestors():
        if ancestor in last_ancestors:
            return ancestor
    return first.getroottree().getroot()


def _justel_heading(line: str) -> str:
    """A structure heading without its inline amendment note and trailing dot."""
    text = _clean(_INLINE_NOTE.sub(" ", line))
    return text.rstrip(". ").strip() if text not in {".", ""} else ""


def _justel_article(anchor: str, lines: list[str], heading_path: tuple[str, ...]) -> Section:
    """One article: "Art. N." heads the text; footnotes and inline amendment notes go to ``notes``."""
    number = anchor[len("Art.") :].rstrip(".").lower()  # "Art.136Quinquies" occurs
    body = lines
    notes: list[str] = []
    for i, line in enumerate(lines):
        if _NOTE_SEPARATOR.fullmatch(line):
            body = lines[:i]
            footnotes = _justel_footnotes(lines[i + 1 :])
            break
    else:
        footnotes = []
    text_lines: list[str] = []
    for line in body:
        cleaned = line
        for pattern in (_INLINE_NOTE, _UNCLOSED_NOTE):
            notes.extend(_clean(match.group(1)) for match in pattern.finditer(cleaned))
            cleaned = pattern.sub(" ", cleaned)
        cleaned = _HEADLESS_NOTE.sub("", cleaned)
        if cleaned != line:
            cleaned = _SPACE_BEFORE_PUNCTUATION.sub("", cleaned)
        cleaned = _clean(cleaned)
        if cleaned:
            text_lines.append(cleaned)
    if len(text_lines) == 1 and notes and _JUSTEL_ARTICLE_HEAD.fullmatch(text_lines[0]):
        # A repealed article is only "Art. 281. <Opgeheven bij W ...>": keep that fact readable in the text.
        text_lines[0] = f"{text_lines[0]} {notes[0]}"
    if text_lines:
        # "Art. 97. § 1. ..." -> two lines, so that "§ 1." starts a line like every other paragraph.
        split = _ARTICLE_HEAD_THEN_PARAGRAPH.fullmatch(text_lines[0])
        if split:
            text_lines[0:1] = [split.group(1), split.group(2)]
    return Section(
        text="\n".join(text_lines),
        label=f"art. {number}",
        heading_path=heading_path,
        anchor=anchor,
        is_article=True,
        notes=tuple(dict.fromkeys(notes + footnotes)),  # one amending act often touches several places
    )


def _justel_footnotes(lines: list[str]) -> list[str]:
    """Footnotes after the "----------" line: "(1) hersteld bij W 2014-02-11/12, art. 49, ..."."""
    notes: list[str] = []
    for line in lines:
        if notes and not _FOOTNOTE_START.match(line):
            notes[-1] = f"{notes[-1]} {line}"  # a footnote that wrapped onto a second line
        else:
            notes.append(line)
    cleaned = []
    for note in notes:
        match = _FOOTNOTE.match(note)
        cleaned.append(f"({match.group(1)}) {_clean(match.group(2))}" if match else note)
    return cleaned


def _justel_title(root: lxml.html.HtmlElement) -> str | None:
    """The act's title from the 2024 title box or the legacy "Titel"/"Titre" table."""
    for p in root.xpath(f"//p[{_has_class('list-item--title')}]"):
        text = _element_text(p)
        if text:
            return text
    for table in root.xpath("//a[@name='titre']/following::table[1]"):
        lines = _TextRenderer().render(table)
        for line in lines:
            if _DATED_TITLE.match(line):
                return line
        candidates = [line for line in lines if line.lower() not in {"titel", "titre"}]
        if candidates:
            return candidates[0]
    return None


def _justel_eli(root: lxml.html.HtmlElement, source: str) -> str | None:
    """The page's ELI link (2024: ``a#link-text``; legacy: plain text in the header table)."""
    hrefs = root.xpath("//a[@id='link-text']/@href")
    match = _JUSTEL_ELI.match(hrefs[0].strip()) if hrefs else None
    match = match or _JUSTEL_ELI.search(source)
    if not match:
        return None
    # Legacy pages print http:// links; the site only serves https today.
    return re.sub(r"^http://", "https://", match.group(0))


def _justel_numac(root: lxml.html.HtmlElement, eli: str | None) -> str | None:
    """The NUMAC: the title box tag (2024) or the last number of the ELI link."""
    for tag in root.xpath(f"//div[@id='list-title-1']//span[{_has_class('tag')}]"):
        value = _clean(tag.text_content())
        if _NUMAC.fullmatch(value):
            return value
    if eli:
        numbers = [part for part in eli.split("/") if _NUMAC.fullmatch(part)]
        if numbers:
            return numbers[-1]
    return None


# --------------------------------------------------------------------------------------------------
# Belgisch Staatsblad publication pages

_STAATSBLAD_ARTICLE = re.compile(r"(?:Artikel|Art\.|Article)\s+(\d+(?:/\d+)?[a-z]*)\.?(?=\s|$)")
_STAATSBLAD_PART = re.compile(r"\d{1,2}\)\s+\S")
_STAATSBLAD_CHROME = re.compile(
    r"(?:einde|begin|fin|début|Publicatie\s*:.*|Publication\s*:.*|Beeld van de publicatie|Image de la publication)",
    re.IGNORECASE,
)
_EJUSTICE = "https://www.ejustice.just.fgov.be"


def _is_staatsblad(root: lxml.html.HtmlElement) -> bool:
    """Staatsblad pages carry a hidden ``urlpdf`` input, or the Staatsblad title plus the ``hit0`` anchor."""
    if root.xpath("//input[@name='urlpdf']"):
        return True
    title = " ".join(root.xpath("//title/text()")).lower()
    return ("staatsblad" in title or "moniteur belge" in title) and bool(root.xpath("//a[@name='hit0']"))


class _StaatsbladRenderer(_TextRenderer):
    """Marks the publication title (``<H3><CENTER><U>``) and stops at the ``<A name="end">`` anchor."""

    def handle(self, el: lxml.html.HtmlElement, tag: str) -> bool:
        if tag == "h3" and el.xpath(".//u"):
            self.mark("T" + _element_text(el))
            return True
        if tag == "a" and (el.get("name") or "").lower() == "end":
            self.mark("E")
            self.stop()
            return True
        return False


def _load_staatsblad(page: _Page) -> LoadedDocument:
    """Read a Staatsblad publication: an optional intro and one section per "Artikel N." / "Art. N."."""
    body = page.root.find("body")
    lines = _StaatsbladRenderer().render(body if body is not None else page.root)
    before, segments = _split_marks(lines)
    markers = [marker[0] for marker, _ in segments]
    if "E" not in markers:
        raise SourceReadError(
            f"{page.name}: Belgisch Staatsblad page without publication text "
            "(no end-of-text marker; the server probably returned an empty result)"
        )
    title = ""
    content: list[str] = []
    if "T" in markers:
        for marker, segment in segments:
            if marker[0] == "T":
                title, content = marker[1:], segment
    else:
        content = [line for line in before if not _STAATSBLAD_CHROME.fullmatch(line)]
    if not content:
        raise SourceReadError(f"{page.name}: Belgisch Staatsblad page without publication text")

    sections: list[Section] = []
    current_label: str | None = None
    current: list[str] = []
    for line in content:
        match = _STAATSBLAD_ARTICLE.match(line)
        # "2) Bij Koninklijk besluit ..." opens the next decision of a grouped publication.
        if match or (_STAATSBLAD_PART.match(line) and current_label is not None):
            if current:
                sections.append(_staatsblad_section(current_label, current))
            current_label, current = (f"art. {match.group(1)}" if match else None), [line]
        else:
            current.append(line)
    if current:
        sections.append(_staatsblad_section(current_label, current))

    if not title:
        title = next((line for line in content if len(line.split()) >= 3), content[0])[:200]
    url = page.url
    if url is None:
        pdf = [value.strip() for value in page.root.xpath("//input[@name='urlpdf']/@value")]
        if pdf and pdf[0].startswith("/mopdf/"):
            url = _EJUSTICE + pdf[0]
    return LoadedDocument(
        doc_id=doc_id_from_name(page.name),
        title=title,
        sections=tuple(sections),
        url=url,
        language=page.language or _guess_language(content),
    )


def _staatsblad_section(label: str | None, lines: list[str]) -> Section:
    """A Staatsblad article (or the text before the first article)."""
    return Section(text="\n".join(lines), label=label, is_article=label is not None)


# --------------------------------------------------------------------------------------------------
# EUR-Lex (Official Journal renderings old and new, consolidated texts)

# CSS class -> block kind. Older renderings use the names without the "oj-" prefix.
_EU_KINDS = {
    "doc-ti": "doc_title", "title-doc-first": "doc_title", "title-doc-last": "doc_title",
    "ti-section-1": "heading", "title-division-1": "heading",
    "ti-section-2": "heading_title", "title-division-2": "heading_title",
    "ti-art": "article", "title-article-norm": "article",
    "sti-art": "article_title", "stitle-article-norm": "article_title",
    "title-annex-1": "annex",
    "final": "final",
    "reference": "reference",
    "note": "skip", "footnote": "skip", "modref": "skip", "arrow": "skip", "disclaimer": "skip",
    "hd-date": "skip", "hd-lg": "skip", "hd-ti": "skip", "hd-oj": "skip", "hd-modifiers": "skip",
    "hd-toc-1": "skip", "hd-toc-2": "skip", "hd-toc-3": "skip", "title-toc": "skip", "toc-item": "skip",
    "toc-1": "skip", "toc-2": "skip", "title-doc-oj-reference": "skip", "separator": "skip", "separator-annex": "skip",
    "separator-short": "skip", "doc-sep": "skip", "doc-end": "skip", "title-fam-member-star": "skip",
}  # fmt: skip
# Consolidated texts mark amended passages "►M2 new text ◄" and sources "▼B"; readers do not need them.
_EU_ARROWS = re.compile(r"[▼►]\s?[A-Z]{1,2}\d*\b|◄")
_EU_CONTEXT_ID = re.compile(r"(?:art|rct|anx)_[^.\s]+")
_EU_ARTICLE = re.compile(
    r"(?:Article|Artikel|Art\.|Articolo|Artículo|Artigo)\s+(\d+\s?[a-z]{0,12})\b\.?(?:\s.*)?", re.IGNORECASE
)
_EU_BARE_ARTICLE = re.compile(r"(?:Article|Artikel|Articolo|Artículo|Artigo)\s+\d+\s?[a-z]{0,12}")
_EU_ANNEX = re.compile(r"(?i:ANNEX|BIJLAGE|ANNEXE|ANHANG|ALLEGATO|ANEXO)(?:\s+([IVXLC]+|\d+)[a-z]?)?\b.*")
_EU_BARE_ANNEX = re.compile(r"(?:ANNEX|BIJLAGE|ANNEXE|ANHANG|ALLEGATO|ANEXO)(?:\s+(?:[IVXLC]+|\d+)[a-z]?)?")
_EU_BARE_HEADING = re.compile(
    r"(?i:PART|TITLE|CHAPTER|SECTION|DEEL|TITEL|HOOFDSTUK|AFDELING|PARTIE|TITRE|CHAPITRE|TEIL|KAPITEL|ABSCHNITT)"
    r"\s+(?:[IVXLC]+|\d+[a-z]?|[A-Z]{3,})"
)
_EU_RECITAL = re.compile(r"\((\d+)\)\s+\S")
_EU_FINAL = re.compile(
    r"(?:This (?:Regulation|Directive|Decision) shall be binding|Deze (?:verordening|richtlijn|beschikking|besluit)"
    r" is verbindend|Done at |Gedaan te |Fait à |Geschehen zu )",
    re.IGNORECASE,
)
_EU_EEA = re.compile(r"\((?:Text with EEA relevance|Voor de EER relevante tekst|Texte présentant de l'intérêt pour "
                     r"l'EEE|Text von Bedeutung für den EWR)\)", re.IGNORECASE)  # fmt: skip
_EU_CONSOLIDATED = re.compile(r"(\d{4}[A-Z]\d{4})\s+—\s+[A-Z]{2}\s+—\s+(\d{2})\.(\d{2})\.(\d{4})")
_CELEX = re.compile(r"CELEX(?::|%3A)([0-9][0-9A-Z()]+)", re.IGNORECASE)
_EU_ELI = re.compile(r"/eli/(reg|dir|dec)(?:_impl|_del)?/(\d{4})/(\d+)/")
_ELI_TYPE_LETTER = {"reg": "R", "dir": "L", "dec": "D"}


def _is_eurlex(root: lxml.html.HtmlElement) -> bool:
    """EUR-Lex pages use the Official Journal classes, or (before 2011) carry a CELEX identifier."""
    classes = " or ".join(
        _has_class(name) for name in ("oj-ti-art", "ti-art", "title-article-norm", "oj-doc-ti", "doc-ti")
    )
    if root.xpath(f"//p[{classes}]"):
        return True
    return bool(root.xpath("//meta[@name='DC.identifier' and contains(@content, 'CELEX')]"))


@dataclass
class _Block:
    """One unit of a EUR-Lex page in reading order: its kind, its text lines and the enclosing ELI id."""

    kind: str
    lines: list[str]
    context: str | None

    @property
    def text(self) -> str:
        """All lines on one line."""
        return " ".join(self.lines)


class _EurLexRenderer(_TextRenderer):
    """Drops footnote calls "(1)" from EUR-Lex text; the notes themselves are not indexed."""

    def handle(self, el: lxml.html.HtmlElement, tag: str) -> bool:
        if tag == "a" and (el.get("id") or "").startswith(("ntc", "src.")):
            if self._parts:
                self._parts[-1] = self._parts[-1].rstrip()  # "2018/1725 (4), and" -> "2018/1725, and"
            return True
        return False


def _eu_kind(el: lxml.html.HtmlElement, tag: str) -> str | None:
    """The block kind of an element from its class, or from its text for the classless pre-2011 pages."""
    classes = _class_names(el)
    for name in classes:
        kind = _EU_KINDS.get(name.removeprefix("oj-"))
        if kind:
            return kind
    if tag == "hr":
        return "skip"
    if tag == "p" and not classes:
        text = _clean(el.text_content())
        if len(text) <= 60:
            if _EU_BARE_ARTICLE.fullmatch(text):
                return "article"
            if _EU_BARE_ANNEX.fullmatch(text):
                return "annex"
            if _EU_BARE_HEADING.fullmatch(text):
                return "heading"
    return None


def _eu_blocks(root: lxml.html.HtmlElement) -> list[_Block]:
    """Linearise the page into blocks: classified paragraphs, and the text between them."""
    kinds: dict[lxml.html.HtmlElement, str] = {}
    holds_structure: set[lxml.html.HtmlElement] = set()
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        kind = _eu_kind(el, el.tag.lower())
        if kind or _EU_CONTEXT_ID.fullmatch(el.get("id") or ""):
            if kind:
                kinds[el] = kind
            for ancestor in el.iterancestors():
                if ancestor in holds_structure:
                    break
                holds_structure.add(ancestor)
    blocks: list[_Block] = []

    def clean(lines: list[str]) -> list[str]:
        return [line for line in (_clean(_EU_ARROWS.sub(" ", line)) for line in lines) if line]

    def text_block(text: str | None, context: str | None) -> None:
        lines = clean([text]) if text and text.strip() else []
        if lines:
            blocks.append(_Block("text", lines, context))

    def visit(el: lxml.html.HtmlElement, context: str | None) -> None:
        if not isinstance(el.tag, str) or el.tag.lower() in _SKIP_TAGS:
            return
        own_id = el.get("id") or ""
        if _EU_CONTEXT_ID.fullmatch(own_id):
            context = own_id
        kind = kinds.get(el)
        if kind:
            blocks.append(_Block(kind, [] if kind == "skip" else clean([_element_text(el)]), context))
            return
        if el not in holds_structure:
            lines = clean(_EurLexRenderer().render(el))
            if lines:
                blocks.append(_Block("text", lines, context))
            return
        text_block(el.text, context)
        for child in el:
            visit(child, context)
            text_block(child.tail, context)

    visit(root, None)
    return blocks


@dataclass
class _Draft:
    """A section being collected."""

    label: str | None
    anchor: str | None = None
    is_article: bool = False
    heading_path: tuple[str, ...] = ()
    lines: list[str] = field(default_factory=list)

    def build(self) -> Section:
        """The finished section."""
        return Section(
            text="\n".join(self.lines),
            label=self.label,
            heading_path=self.heading_path,
            anchor=self.anchor,
            is_article=self.is_article,
        )


def _load_eurlex(page: _Page) -> LoadedDocument | None:
    """Read a EUR-Lex act: articles under their chapter headings, recitals, annexes; None if none found."""
    root = page.root
    containers = root.xpath("//*[@id='TexteOnly'] | //*[@id='document1'] | //*[@id='docHtml']")
    body = root.find("body")
    top = containers[0] if containers else (body if body is not None else root)

    title_parts: list[str] = []
    headings: list[tuple[int, str]] = []
    heading_open = False
    mode = "front"  # front -> preamble -> enacting -> final; annex at any time
    sections: list[Section] = []
    preamble = _Draft(label="aanhef")
    preamble_at: int | None = None
    current: _Draft | None = None
    effective: str | None = None
    consolidated_id: str | None = None

    def flush() -> None:
        nonlocal current
        if current is not None and current.lines:
            sections.append(current.build())
        current = None

    for block in _eu_blocks(top):
        kind, text = block.kind, block.text
        if kind == "skip" or (not block.lines and kind != "final"):
            continue
        if kind == "reference":
            match = _EU_CONSOLIDATED.search(text)
            if match:
                consolidated_id = f"0{match.group(1)}-{match.group(4)}{match.group(3)}{match.group(2)}"
                effective = _iso_from_dmy(match.group(2), match.group(3), match.group(4))
            continue
        annex = _EU_ANNEX.fullmatch(text) if kind in ("annex", "doc_title") and text else None
        if annex and (kind == "annex" or mode != "front" or title_parts):
            flush()
            mode, heading_open = "annex", False
            number = annex.group(1)
            anchor = block.context if block.context and block.context.startswith("anx_") else None
            current = _Draft(label=f"bijlage {number}" if number else "bijlage", anchor=anchor, lines=[text])
            continue
        if mode == "annex":
            if current is not None:
                current.lines.extend(block.lines)
            continue
        if kind == "doc_title":
            # Consolidated texts repeat the title above the preamble; only the first one is the title.
            if mode == "front" and not _EU_EEA.fullmatch(text):
                title_parts.append(text)
            continue
        if kind == "final":
            flush()
            mode = "final"
            continue
        if kind == "heading":
            flush()
            mode, heading_open = "enacting", True
            level = _heading_level(text)
            _push_heading(headings, level if level is not None else 9, text)
            continue
        if heading_open and headings and (
            kind == "heading_title" or (kind == "text" and len(block.lines) == 1 and len(text) <= 150)
        ):
            # "CHAPTER I" + "General provisions" -> "CHAPTER I - General provisions"
            level, heading = headings[-1]
            headings[-1] = (level, f"{heading} - {text}")
            heading_open = False
            continue
        heading_open = False
        if kind == "heading_title":
            continue  # a second title line, or a title without its heading: not article text
        if kind == "article":
            flush()
            mode = "enacting"
            match = _EU_ARTICLE.fullmatch(text)
            label = f"art. {match.group(1).replace(' ', '')}" if match else text.lower()
            anchor = block.context if block.context and block.context.startswith("art_") else None
            current = _Draft(label=label, anchor=anchor, is_article=True, heading_path=tuple(h for _, h in headings))
            current.lines.append(text)
            continue
        # Running text: a recital, the preamble, or the body of the current article.
        if mode == "final":
            continue
        if block.context and block.context.startswith("rct_"):
            if current is None or current.anchor != block.context:
                flush()
                current = _Draft(label=f"overweging {block.context[4:]}", anchor=block.context)
            current.lines.extend(block.lines)
            mode = "preamble"
            continue
        if mode in ("front", "preamble"):
            if mode == "front" and not title_parts and not containers:
                continue  # site chrome before the act's title
            mode = "preamble"
            recital = _EU_RECITAL.match(block.lines[0])
            if recital:
                flush()
                current = _Draft(label=f"overweging {recital.group(1)}", lines=list(block.lines))
                flush()  # older renderings: one block per recital
                continue
            flush()
            if preamble_at is None:
                preamble_at = len(sections)
            preamble.lines.extend(block.lines)
            continue
        if mode == "enacting" and current is not None and current.is_article:
            if block.context is None and _EU_FINAL.match(text):
                flush()
                mode = "final"
                continue
            current.lines.extend(block.lines)
    flush()
    if preamble.lines and preamble_at is not None:
        sections.insert(preamble_at, preamble.build())
    if not any(s.is_article or (s.label or "").startswith(("overweging", "bijlage")) for s in sections):
        return None

    title = _clean(" ".join(title_parts)) or _eu_meta(root, "DC.description") or _eu_page_title(root)
    return LoadedDocument(
        doc_id=consolidated_id or _eu_celex(root, page.url) or doc_id_from_name(page.name),
        title=title or doc_id_from_name(page.name),
        sections=tuple(sections),
        url=_eu_canonical_eli(root) or page.url,
        effective_date=effective,
        language=page.language or _eu_language(root) or _guess_language(s.text for s in sections),
    )


def _eu_meta(root: lxml.html.HtmlElement, name: str) -> str | None:
    """The content of ``<meta name=...>``, cleaned."""
    values = [_clean(v) for v in root.xpath(f"//meta[@name='{name}']/@content")]
    return next((v for v in values if v), None)


def _eu_page_title(root: lxml.html.HtmlElement) -> str | None:
    """The ``<title>`` text unless it is a file name such as "L_2022152EN.01000101.xml"."""
    text = _clean(" ".join(root.xpath("//title//text()")))
    return text if text and not text.lower().endswith(".xml") else None


def _eu_canonical_eli(root: lxml.html.HtmlElement) -> str | None:
    """The canonical ELI link (``<link rel="canonical" href=".../eli/...">``)."""
    for href in root.xpath("//link[@rel='canonical']/@href"):
        if "/eli/" in href:
            return href.strip()
    return None


def _eu_celex(root: lxml.html.HtmlElement, url: str | None) -> str | None:
    """The CELEX number from the page metadata or URL, or derived from the ELI (reg 2022/868 -> 32022R0868)."""
    for value in [*root.xpath("//meta[@name='DC.identifier']/@content"), url or ""]:
        match = _CELEX.search(value)
        if match:
            return match.group(1)
    eli = _eu_canonical_eli(root)
    match = _EU_ELI.search(eli or "")
    if match:
        kind, year, number = match.groups()
        return f"3{year}{_ELI_TYPE_LETTER[kind]}{int(number):04d}"
    return None


def _eu_language(root: lxml.html.HtmlElement) -> str | None:
    """The language EUR-Lex states in its metadata or page header."""
    for value in (
        _eu_meta(root, "WT.z_usr_lan"),
        _eu_meta(root, "DC.language"),
        next(iter(root.xpath(f"//p[{_has_class('oj-hd-lg')} or {_has_class('hd-lg')}]//text()")), None),
        root.get("lang"),
    ):
        language = _normalise_language(value)
        if language:
            return language
    return None


# --------------------------------------------------------------------------------------------------
# Generic HTML

_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})


class _GenericRenderer(_TextRenderer):
    """Marks ``h1``-``h6`` headings with their level, text and anchor."""

    def handle(self, el: lxml.html.HtmlElement, tag: str) -> bool:
        if tag not in _HEADING_TAGS:
            return False
        text = _element_text(el)
        if text:
            self.mark(f"{tag[1]}\x1f{_heading_anchor(el)}\x1f{text}")
        return True


def _heading_anchor(heading: lxml.html.HtmlElement) -> str:
    """The fragment that jumps to a heading: its id, an id/name inside it, or its section's id."""
    if heading.get("id"):
        return heading.get("id")
    for inner in heading.xpath(".//*[@id] | .//a[@name]"):
        return inner.get("id") or inner.get("name")
    parent = heading.getparent()
    if parent is not None and parent.get("id") and len(parent) and parent[0] is heading:
        return parent.get("id")
    return ""


def _load_generic(page: _Page) -> LoadedDocument:
    """Read any HTML page: drop page chrome, start a section at every heading."""
    root = page.root
    body = root.find("body")
    body = body if body is not None else root
    chrome = body.xpath(
        ".//script | .//style | .//nav | .//noscript | .//template | .//*[@role='navigation']"
        # <header>/<footer> inside the content are part of it (HTML5 article headers hold the h1).
        " | .//header[not(ancestor::main or ancestor::article)] | .//footer[not(ancestor::main or ancestor::article)]"
    )
    for el in chrome:
        if el.getparent() is not None:
            el.drop_tree()
    mains = body.xpath(".//main | .//*[@role='main']")
    content = mains[0] if len(mains) == 1 else body
    before, segments = _split_marks(_GenericRenderer().render(content))

    sections: list[Section] = []
    if before:
        sections.append(Section(text="\n".join(before)))
    stack: list[tuple[int, str]] = []
    first_h1: str | None = None
    for marker, lines in segments:
        level_text, anchor, heading = marker.split("\x1f", 2)
        level = int(level_text)
        if level == 1 and first_h1 is None:
            first_h1 = heading
        while stack and stack[-1][0] >= level:
            stack.pop()
        path = tuple(text for _, text in stack)
        stack.append((level, heading))
        if lines:
            sections.append(
                Section(text="\n".join([heading, *lines]), label=heading, heading_path=path, anchor=anchor or None)
            )
    if not sections:
        raise SourceReadError(f"{page.name}: no readable text found in the HTML page")

    title = _clean(" ".join(root.xpath("//head/title//text()"))) or first_h1 or doc_id_from_name(page.name)
    language = page.language or _normalise_language(root.get("lang")) or _guess_language(s.text for s in sections)
    return LoadedDocument(
        doc_id=doc_id_from_name(page.name),
        title=title,
        sections=tuple(sections),
        url=page.url,
        language=language,
    )
