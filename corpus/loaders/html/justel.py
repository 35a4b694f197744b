"""Justel consolidated legislation, in the 2024 design and the older table design.

One section per ``<A NAME='Art.N'>`` article, with the structure headings (BOEK, TITEL, HOOFDSTUK, ...) from the
``LNK`` anchors as heading path, amendment markers ``[1 ... ]1`` removed and the amendment notes kept apart.
"""

from __future__ import annotations

import re

import lxml.html

from corpus.documents import LoadedDocument, Section
from corpus.errors import SourceReadError
from corpus.loaders.html.page import Page, guess_language, heading_level, iso_from_dmy, push_heading
from corpus.loaders.html.rendering import TextRenderer, clean, element_text, has_class, split_marks
from corpus.loaders.text import doc_id_from_name

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
_ARTICLE_HEAD = re.compile(r"(?:Art\.|Artikel|Article)\s*[^\s.]+\.?")
_ARTICLE_HEAD_THEN_PARAGRAPH = re.compile(r"((?:Art\.|Artikel|Article)\s*[^\s.]+\.?)\s+(§\s*\d.*)")
_CONSOLIDATED_UNTIL = re.compile(
    r"(?:tekstbijwerking\s+tot|mise\s+(?:à|&agrave;|a)\s+jour\s+au|Textaktualisierung\s+bis)\s*:?\s*"
    r"(?:<[^>]*>\s*)*(\d{1,2})-(\d{1,2})-(\d{4})",
    re.IGNORECASE,
)
_JUSTEL_ELI = re.compile(r"https?://www\.ejustice\.just\.fgov\.be/eli/[^\s<>\"']+")
_NUMAC = re.compile(r"\d{10}")
_DATED_TITLE = re.compile(r"^\d{1,2}(?:er)?\s+\S+\s+\d{4}\.?\s+-\s+\S")


def is_justel(root: lxml.html.HtmlElement) -> bool:
    """Justel pages mark every article with an ``<A NAME='Art.N'>`` anchor."""
    return bool(root.xpath("//a[starts-with(@name, 'Art.')]"))


class _JustelRenderer(TextRenderer):
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


def load_justel(page: Page) -> LoadedDocument:
    """Read a Justel page: one section per article, headings from the LNK structure anchors."""
    root = page.root
    anchors = root.xpath("//a[starts-with(@name, 'Art.')]")
    boxes = root.xpath("//div[@id='list-title-3']")
    container = boxes[0] if boxes else _common_ancestor(anchors[0], anchors[-1])
    _, segments = split_marks(_JustelRenderer().render(container))

    headings: list[tuple[int, str]] = []
    sections: list[Section] = []
    for marker, lines in segments:
        kind, anchor = marker[0], marker[1:]
        if kind == "H":
            text = _heading(lines[0] if lines else "")
            if text:
                level = heading_level(text)
                # An untyped heading ("BIJZONDERE BEPALINGEN.") is taken as a sibling of the previous one.
                push_heading(headings, level if level is not None else (headings[-1][0] if headings else 9), text)
            continue
        article = _article(anchor, lines, tuple(text for _, text in headings))
        if article.text:
            sections.append(article)
    if not sections:
        raise SourceReadError(f"{page.name}: Justel page whose article anchors hold no text")

    eli = _eli(root, page.source)
    numac = _numac(root, eli)
    effective = None
    match = _CONSOLIDATED_UNTIL.search(page.source)
    if match:
        effective = iso_from_dmy(*match.groups())
    language = page.language or guess_language(s.text for s in sections)
    return LoadedDocument(
        doc_id=numac or doc_id_from_name(page.name),
        title=_title(root) or doc_id_from_name(page.name),
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


def _heading(line: str) -> str:
    """A structure heading without its inline amendment note and trailing dot."""
    text = clean(_INLINE_NOTE.sub(" ", line))
    return text.rstrip(". ").strip() if text not in {".", ""} else ""


def _article(anchor: str, lines: list[str], heading_path: tuple[str, ...]) -> Section:
    """One article: "Art. N." heads the text; footnotes and inline amendment notes go to ``notes``."""
    number = anchor[len("Art.") :].rstrip(".").lower()  # "Art.136Quinquies" occurs
    body = lines
    notes: list[str] = []
    for i, line in enumerate(lines):
        if _NOTE_SEPARATOR.fullmatch(line):
            body = lines[:i]
            footnotes = _footnotes(lines[i + 1 :])
            break
    else:
        footnotes = []
    text_lines: list[str] = []
    for line in body:
        cleaned = line
        for pattern in (_INLINE_NOTE, _UNCLOSED_NOTE):
            notes.extend(clean(match.group(1)) for match in pattern.finditer(cleaned))
            cleaned = pattern.sub(" ", cleaned)
        cleaned = _HEADLESS_NOTE.sub("", cleaned)
        if cleaned != line:
            cleaned = _SPACE_BEFORE_PUNCTUATION.sub("", cleaned)
        cleaned = clean(cleaned)
        if cleaned:
            text_lines.append(cleaned)
    if len(text_lines) == 1 and notes and _ARTICLE_HEAD.fullmatch(text_lines[0]):
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


def _footnotes(lines: list[str]) -> list[str]:
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
        cleaned.append(f"({match.group(1)}) {clean(match.group(2))}" if match else note)
    return cleaned


def _title(root: lxml.html.HtmlElement) -> str | None:
    """The act's title from the 2024 title box or the legacy "Titel"/"Titre" table."""
    for p in root.xpath(f"//p[{has_class('list-item--title')}]"):
        text = element_text(p)
        if text:
            return text
    for table in root.xpath("//a[@name='titre']/following::table[1]"):
        lines = TextRenderer().render(table)
        for line in lines:
            if _DATED_TITLE.match(line):
                return line
        candidates = [line for line in lines if line.lower() not in {"titel", "titre"}]
        if candidates:
            return candidates[0]
    return None


def _eli(root: lxml.html.HtmlElement, source: str) -> str | None:
    """The page's ELI link (2024: ``a#link-text``; legacy: plain text in the header table)."""
    hrefs = root.xpath("//a[@id='link-text']/@href")
    match = _JUSTEL_ELI.match(hrefs[0].strip()) if hrefs else None
    match = match or _JUSTEL_ELI.search(source)
    if not match:
        return None
    # Legacy pages print http:// links; the site only serves https today.
    return re.sub(r"^http://", "https://", match.group(0))


def _numac(root: lxml.html.HtmlElement, eli: str | None) -> str | None:
    """The NUMAC: the title box tag (2024) or the last number of the ELI link."""
    for tag in root.xpath(f"//div[@id='list-title-1']//span[{has_class('tag')}]"):
        value = clean(tag.text_content())
        if _NUMAC.fullmatch(value):
            return value
    if eli:
        numbers = [part for part in eli.split("/") if _NUMAC.fullmatch(part)]
        if numbers:
            return numbers[-1]
    return None
