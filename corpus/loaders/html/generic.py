"""Any other HTML page (guidance pages, notes): page chrome dropped, a section at every ``h1``-``h6`` heading."""

from __future__ import annotations

import lxml.html

from corpus.documents import LoadedDocument, Section
from corpus.errors import SourceReadError
from corpus.loaders.html.page import Page, guess_language, normalise_language
from corpus.loaders.html.rendering import TextRenderer, clean, element_text, split_marks
from corpus.loaders.text import doc_id_from_name

_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})


class _GenericRenderer(TextRenderer):
    """Marks ``h1``-``h6`` headings with their level, text and anchor."""

    def handle(self, el: lxml.html.HtmlElement, tag: str) -> bool:
        if tag not in _HEADING_TAGS:
            return False
        text = element_text(el)
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


def load_generic(page: Page) -> LoadedDocument:
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
    before, segments = split_marks(_GenericRenderer().render(content))

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

    title = clean(" ".join(root.xpath("//head/title//text()"))) or first_h1 or doc_id_from_name(page.name)
    language = page.language or normalise_language(root.get("lang")) or guess_language(s.text for s in sections)
    return LoadedDocument(
        doc_id=doc_id_from_name(page.name),
        title=title,
        sections=tuple(sections),
        url=page.url,
        language=language,
    )
