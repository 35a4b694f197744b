"""EUR-Lex acts: Official Journal renderings old and new, and consolidated texts.

The page is first linearised into blocks (classified paragraphs and the text between them); ``_ActReader`` then
reads those blocks in order into articles under their chapter headings, recitals, the preamble and annexes.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import lxml.html

from corpus.documents import LoadedDocument, Section
from corpus.loaders.html.page import Page, guess_language, heading_level, iso_from_dmy, normalise_language, push_heading
from corpus.loaders.html.rendering import SKIP_TAGS, TextRenderer, class_names, clean, element_text, has_class
from corpus.loaders.text import doc_id_from_name

# CSS class -> block kind. Older renderings use the names without the "oj-" prefix.
_KINDS = {
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
_ARROWS = re.compile(r"[▼►]\s?[A-Z]{1,2}\d*\b|◄")
_CONTEXT_ID = re.compile(r"(?:art|rct|anx)_[^.\s]+")
_ARTICLE = re.compile(
    r"(?:Article|Artikel|Art\.|Articolo|Artículo|Artigo)\s+(\d+\s?[a-z]{0,12})\b\.?(?:\s.*)?", re.IGNORECASE
)
_BARE_ARTICLE = re.compile(r"(?:Article|Artikel|Articolo|Artículo|Artigo)\s+\d+\s?[a-z]{0,12}")
_ANNEX = re.compile(r"(?i:ANNEX|BIJLAGE|ANNEXE|ANHANG|ALLEGATO|ANEXO)(?:\s+([IVXLC]+|\d+)[a-z]?)?\b.*")
_BARE_ANNEX = re.compile(r"(?:ANNEX|BIJLAGE|ANNEXE|ANHANG|ALLEGATO|ANEXO)(?:\s+(?:[IVXLC]+|\d+)[a-z]?)?")
_BARE_HEADING = re.compile(
    r"(?i:PART|TITLE|CHAPTER|SECTION|DEEL|TITEL|HOOFDSTUK|AFDELING|PARTIE|TITRE|CHAPITRE|TEIL|KAPITEL|ABSCHNITT)"
    r"\s+(?:[IVXLC]+|\d+[a-z]?|[A-Z]{3,})"
)
_RECITAL = re.compile(r"\((\d+)\)\s+\S")
_FINAL = re.compile(
    r"(?:This (?:Regulation|Directive|Decision) shall be binding|Deze (?:verordening|richtlijn|beschikking|besluit)"
    r" is verbindend|Done at |Gedaan te |Fait à |Geschehen zu )",
    re.IGNORECASE,
)
_EEA = re.compile(r"\((?:Text with EEA relevance|Voor de EER relevante tekst|Texte présentant de l'intérêt pour "
                  r"l'EEE|Text von Bedeutung für den EWR)\)", re.IGNORECASE)  # fmt: skip
_CONSOLIDATED = re.compile(r"(\d{4}[A-Z]\d{4})\s+—\s+[A-Z]{2}\s+—\s+(\d{2})\.(\d{2})\.(\d{4})")
_CELEX = re.compile(r"CELEX(?::|%3A)([0-9][0-9A-Z()]+)", re.IGNORECASE)
_ELI = re.compile(r"/eli/(reg|dir|dec)(?:_impl|_del)?/(\d{4})/(\d+)/")
_ELI_TYPE_LETTER = {"reg": "R", "dir": "L", "dec": "D"}


def is_eurlex(root: lxml.html.HtmlElement) -> bool:
    """EUR-Lex pages use the Official Journal classes, or (before 2011) carry a CELEX identifier."""
    classes = " or ".join(
        has_class(name) for name in ("oj-ti-art", "ti-art", "title-article-norm", "oj-doc-ti", "doc-ti")
    )
    if root.xpath(f"//p[{classes}]"):
        return True
    return bool(root.xpath("//meta[@name='DC.identifier' and contains(@content, 'CELEX')]"))


# --------------------------------------------------------------------------------------------------
# The page as blocks in reading order


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


class _EurLexRenderer(TextRenderer):
    """Drops footnote calls "(1)" from EUR-Lex text; the notes themselves are not indexed."""

    def handle(self, el: lxml.html.HtmlElement, tag: str) -> bool:
        if tag == "a" and (el.get("id") or "").startswith(("ntc", "src.")):
            if self._parts:
                self._parts[-1] = self._parts[-1].rstrip()  # "2018/1725 (4), and" -> "2018/1725, and"
            return True
        return False


def _kind(el: lxml.html.HtmlElement, tag: str) -> str | None:
    """The block kind of an element from its class, or from its text for the classless pre-2011 pages."""
    classes = class_names(el)
    for name in classes:
        kind = _KINDS.get(name.removeprefix("oj-"))
        if kind:
            return kind
    if tag == "hr":
        return "skip"
    if tag == "p" and not classes:
        text = clean(el.text_content())
        if len(text) <= 60:
            if _BARE_ARTICLE.fullmatch(text):
                return "article"
            if _BARE_ANNEX.fullmatch(text):
                return "annex"
            if _BARE_HEADING.fullmatch(text):
                return "heading"
    return None


def _blocks(root: lxml.html.HtmlElement) -> list[_Block]:
    """Linearise the page into blocks: classified paragraphs, and the text between them."""
    kinds: dict[lxml.html.HtmlElement, str] = {}
    holds_structure: set[lxml.html.HtmlElement] = set()
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        kind = _kind(el, el.tag.lower())
        if kind or _CONTEXT_ID.fullmatch(el.get("id") or ""):
            if kind:
                kinds[el] = kind
            for ancestor in el.iterancestors():
                if ancestor in holds_structure:
                    break
                holds_structure.add(ancestor)
    blocks: list[_Block] = []

    def text_block(text: str | None, context: str | None) -> None:
        lines = _clean_lines([text]) if text and text.strip() else []
        if lines:
            blocks.append(_Block("text", lines, context))

    def visit(el: lxml.html.HtmlElement, context: str | None) -> None:
        if not isinstance(el.tag, str) or el.tag.lower() in SKIP_TAGS:
            return
        own_id = el.get("id") or ""
        if _CONTEXT_ID.fullmatch(own_id):
            context = own_id
        kind = kinds.get(el)
        if kind:
            blocks.append(_Block(kind, [] if kind == "skip" else _clean_lines([element_text(el)]), context))
            return
        if el not in holds_structure:
            lines = _clean_lines(_EurLexRenderer().render(el))
            if lines:
                blocks.append(_Block("text", lines, context))
            return
        text_block(el.text, context)
        for child in el:
            visit(child, context)
            text_block(child.tail, context)

    visit(root, None)
    return blocks


def _clean_lines(lines: Iterable[str]) -> list[str]:
    """Lines without consolidation arrows and surplus whitespace; empty ones dropped."""
    return [line for line in (clean(_ARROWS.sub(" ", line)) for line in lines) if line]


# --------------------------------------------------------------------------------------------------
# Blocks to sections


class _Part(enum.Enum):
    """The part of the act the reader is in: front -> preamble -> enacting terms -> final; annexes at any time."""

    FRONT = "front"
    PREAMBLE = "preamble"
    ENACTING = "enacting"
    FINAL = "final"
    ANNEX = "annex"


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


class _ActReader:
    """Reads an act's blocks in order into sections, plus the title and consolidation facts found on the way."""

    def __init__(self, *, in_container: bool) -> None:
        # Outside a known act container the blocks before the title are site chrome.
        self._in_container = in_container
        self.part = _Part.FRONT
        self.title_parts: list[str] = []
        self.consolidated_id: str | None = None
        self.effective: str | None = None
        self.sections: list[Section] = []
        self._headings: list[tuple[int, str]] = []
        self._heading_open = False  # a heading ("CHAPTER I") whose title line may follow
        self._preamble = _Draft(label="aanhef")
        self._preamble_at: int | None = None  # where the preamble goes among the sections
        self._current: _Draft | None = None

    def read(self, blocks: Iterable[_Block]) -> list[Section]:
        """Read every block; returns the sections in reading order, the preamble before its first recital."""
        for block in blocks:
            self._read(block)
        self._close()
        if self._preamble.lines and self._preamble_at is not None:
            self.sections.insert(self._preamble_at, self._preamble.build())
        return self.sections

    def _close(self) -> None:
        """Finish the section being collected (a section without lines is dropped)."""
        if self._current is not None and self._current.lines:
            self.sections.append(self._current.build())
        self._current = None

    def _open(self, draft: _Draft) -> None:
        """Finish the current section and start collecting ``draft``."""
        self._close()
        self._current = draft

    def _read(self, block: _Block) -> None:
        """Read one block; the order of the checks is what tells titles, headings, articles and text apart."""
        kind, text = block.kind, block.text
        if kind == "skip" or (not block.lines and kind != "final"):
            return
        if kind == "reference":
            self._read_reference(text)
            return
        annex = _ANNEX.fullmatch(text) if kind in ("annex", "doc_title") and text else None
        if annex and (kind == "annex" or self.part is not _Part.FRONT or self.title_parts):
            self._start_annex(annex.group(1), block)
            return
        if self.part is _Part.ANNEX:
            if self._current is not None:
                self._current.lines.extend(block.lines)
            return
        if kind == "doc_title":
            # Consolidated texts repeat the title above the preamble; only the first one is the title.
            if self.part is _Part.FRONT and not _EEA.fullmatch(text):
                self.title_parts.append(text)
            return
        if kind == "final":
            self._close()
            self.part = _Part.FINAL
            return
        if kind == "heading":
            self._start_heading(text)
            return
        if self._heading_open and self._headings and (
            kind == "heading_title" or (kind == "text" and len(block.lines) == 1 and len(text) <= 150)
        ):
            # "CHAPTER I" + "General provisions" -> "CHAPTER I - General provisions"
            level, heading = self._headings[-1]
            self._headings[-1] = (level, f"{heading} - {text}")
            self._heading_open = False
            return
        self._heading_open = False
        if kind == "heading_title":
            return  # a second title line, or a title without its heading: not article text
        if kind == "article":
            self._start_article(block)
            return
        self._read_running_text(block)

    def _read_reference(self, text: str) -> None:
        """A consolidated text's reference line ("02002L0058 — NL — 19.12.2009") gives its id and date."""
        match = _CONSOLIDATED.search(text)
        if match:
            self.consolidated_id = f"0{match.group(1)}-{match.group(4)}{match.group(3)}{match.group(2)}"
            self.effective = iso_from_dmy(match.group(2), match.group(3), match.group(4))

    def _start_annex(self, number: str | None, block: _Block) -> None:
        """An annex collects every following block until the next annex."""
        anchor = block.context if block.context and block.context.startswith("anx_") else None
        self._open(_Draft(label=f"bijlage {number}" if number else "bijlage", anchor=anchor, lines=[block.text]))
        self.part, self._heading_open = _Part.ANNEX, False

    def _start_heading(self, text: str) -> None:
        """A structure heading of the enacting terms; its title may follow as the next block."""
        self._close()
        self.part, self._heading_open = _Part.ENACTING, True
        level = heading_level(text)
        push_heading(self._headings, level if level is not None else 9, text)

    def _start_article(self, block: _Block) -> None:
        """An article heading ("Article 5") opens an article under the current headings."""
        self._close()
        self.part = _Part.ENACTING
        match = _ARTICLE.fullmatch(block.text)
        label = f"art. {match.group(1).replace(' ', '')}" if match else block.text.lower()
        anchor = block.context if block.context and block.context.startswith("art_") else None
        self._current = _Draft(
            label=label, anchor=anchor, is_article=True, heading_path=tuple(h for _, h in self._headings)
        )
        self._current.lines.append(block.text)

    def _read_running_text(self, block: _Block) -> None:
        """Running text: a recital, the preamble, or the body of the current article."""
        if self.part is _Part.FINAL:
            return
        if block.context and block.context.startswith("rct_"):
            if self._current is None or self._current.anchor != block.context:
                self._open(_Draft(label=f"overweging {block.context[4:]}", anchor=block.context))
            self._current.lines.extend(block.lines)
            self.part = _Part.PREAMBLE
            return
        if self.part in (_Part.FRONT, _Part.PREAMBLE):
            self._read_preamble(block)
            return
        if self.part is _Part.ENACTING and self._current is not None and self._current.is_article:
            if block.context is None and _FINAL.match(block.text):
                self._close()
                self.part = _Part.FINAL
                return
            self._current.lines.extend(block.lines)

    def _read_preamble(self, block: _Block) -> None:
        """Text before the enacting terms: a numbered recital of an older rendering, or the preamble itself."""
        if self.part is _Part.FRONT and not self.title_parts and not self._in_container:
            return  # site chrome before the act's title
        self.part = _Part.PREAMBLE
        recital = _RECITAL.match(block.lines[0])
        if recital:
            # Older renderings: one block per recital, so it is finished at once.
            self._open(_Draft(label=f"overweging {recital.group(1)}", lines=list(block.lines)))
            self._close()
            return
        self._close()
        if self._preamble_at is None:
            self._preamble_at = len(self.sections)
        self._preamble.lines.extend(block.lines)


def load_eurlex(page: Page) -> LoadedDocument | None:
    """Read a EUR-Lex act: articles under their chapter headings, recitals, annexes; None if none found."""
    root = page.root
    containers = root.xpath("//*[@id='TexteOnly'] | //*[@id='document1'] | //*[@id='docHtml']")
    body = root.find("body")
    top = containers[0] if containers else (body if body is not None else root)
    reader = _ActReader(in_container=bool(containers))
    sections = reader.read(_blocks(top))
    if not any(s.is_article or (s.label or "").startswith(("overweging", "bijlage")) for s in sections):
        return None

    title = clean(" ".join(reader.title_parts)) or _meta(root, "DC.description") or _page_title(root)
    return LoadedDocument(
        doc_id=reader.consolidated_id or _celex(root, page.url) or doc_id_from_name(page.name),
        title=title or doc_id_from_name(page.name),
        sections=tuple(sections),
        url=_canonical_eli(root) or page.url,
        effective_date=reader.effective,
        language=page.language or _language(root) or guess_language(s.text for s in sections),
    )


# --------------------------------------------------------------------------------------------------
# Page metadata


def _meta(root: lxml.html.HtmlElement, name: str) -> str | None:
    """The content of ``<meta name=...>``, cleaned."""
    values = [clean(v) for v in root.xpath(f"//meta[@name='{name}']/@content")]
    return next((v for v in values if v), None)


def _page_title(root: lxml.html.HtmlElement) -> str | None:
    """The ``<title>`` text unless it is a file name such as "L_2022152EN.01000101.xml"."""
    text = clean(" ".join(root.xpath("//title//text()")))
    return text if text and not text.lower().endswith(".xml") else None


def _canonical_eli(root: lxml.html.HtmlElement) -> str | None:
    """The canonical ELI link (``<link rel="canonical" href=".../eli/...">``)."""
    for href in root.xpath("//link[@rel='canonical']/@href"):
        if "/eli/" in href:
            return href.strip()
    return None


def _celex(root: lxml.html.HtmlElement, url: str | None) -> str | None:
    """The CELEX number from the page metadata or URL, or derived from the ELI (reg 2022/868 -> 32022R0868)."""
    for value in [*root.xpath("//meta[@name='DC.identifier']/@content"), url or ""]:
        match = _CELEX.search(value)
        if match:
            return match.group(1)
    eli = _canonical_eli(root)
    match = _ELI.search(eli or "")
    if match:
        kind, year, number = match.groups()
        return f"3{year}{_ELI_TYPE_LETTER[kind]}{int(number):04d}"
    return None


def _language(root: lxml.html.HtmlElement) -> str | None:
    """The language EUR-Lex states in its metadata or page header."""
    for value in (
        _meta(root, "WT.z_usr_lan"),
        _meta(root, "DC.language"),
        next(iter(root.xpath(f"//p[{has_class('oj-hd-lg')} or {has_class('hd-lg')}]//text()")), None),
        root.get("lang"),
    ):
        language = normalise_language(value)
        if language:
            return language
    return None
