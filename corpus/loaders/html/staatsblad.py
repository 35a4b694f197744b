"""Belgisch Staatsblad / Moniteur belge publication pages: the publication text, split at "Artikel N." lines."""

from __future__ import annotations

import re

import lxml.html

from corpus.documents import LoadedDocument, Section
from corpus.errors import SourceReadError
from corpus.loaders.html.page import Page, guess_language
from corpus.loaders.html.rendering import TextRenderer, element_text, split_marks
from corpus.loaders.text import doc_id_from_name

_ARTICLE = re.compile(r"(?:Artikel|Art\.|Article)\s+(\d+(?:/\d+)?[a-z]*)\.?(?=\s|$)")
_PART = re.compile(r"\d{1,2}\)\s+\S")
_CHROME = re.compile(
    r"(?:einde|begin|fin|début|Publicatie\s*:.*|Publication\s*:.*|Beeld van de publicatie|Image de la publication)",
    re.IGNORECASE,
)
_EJUSTICE = "https://www.ejustice.just.fgov.be"


def is_staatsblad(root: lxml.html.HtmlElement) -> bool:
    """Staatsblad pages carry a hidden ``urlpdf`` input, or the Staatsblad title plus the ``hit0`` anchor."""
    if root.xpath("//input[@name='urlpdf']"):
        return True
    title = " ".join(root.xpath("//title/text()")).lower()
    return ("staatsblad" in title or "moniteur belge" in title) and bool(root.xpath("//a[@name='hit0']"))


class _StaatsbladRenderer(TextRenderer):
    """Marks the publication title (``<H3><CENTER><U>``) and stops at the ``<A name="end">`` anchor."""

    def handle(self, el: lxml.html.HtmlElement, tag: str) -> bool:
        if tag == "h3" and el.xpath(".//u"):
            self.mark("T" + element_text(el))
            return True
        if tag == "a" and (el.get("name") or "").lower() == "end":
            self.mark("E")
            self.stop()
            return True
        return False


def load_staatsblad(page: Page) -> LoadedDocument:
    """Read a Staatsblad publication: an optional intro and one section per "Artikel N." / "Art. N."."""
    body = page.root.find("body")
    lines = _StaatsbladRenderer().render(body if body is not None else page.root)
    before, segments = split_marks(lines)
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
        content = [line for line in before if not _CHROME.fullmatch(line)]
    if not content:
        raise SourceReadError(f"{page.name}: Belgisch Staatsblad page without publication text")

    sections: list[Section] = []
    current_label: str | None = None
    current: list[str] = []
    for line in content:
        match = _ARTICLE.match(line)
        # "2) Bij Koninklijk besluit ..." opens the next decision of a grouped publication.
        if match or (_PART.match(line) and current_label is not None):
            if current:
                sections.append(_section(current_label, current))
            current_label, current = (f"art. {match.group(1)}" if match else None), [line]
        else:
            current.append(line)
    if current:
        sections.append(_section(current_label, current))

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
        language=page.language or guess_language(content),
    )


def _section(label: str | None, lines: list[str]) -> Section:
    """A Staatsblad article (or the text before the first article)."""
    return Section(text="\n".join(lines), label=label, is_article=label is not None)
