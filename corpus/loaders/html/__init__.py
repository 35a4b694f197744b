"""Loader for HTML pages: Justel legislation, Belgisch Staatsblad, EUR-Lex acts and generic guidance pages.

``load_html`` recognises the page kind and reads it with the matching rules:

* Justel consolidated legislation (the 2024 design and the older table design): one section per
  ``<A NAME='Art.N'>`` article, with the structure headings (BOEK, TITEL, HOOFDSTUK, ...) as heading path,
  amendment markers ``[1 ... ]1`` removed and the amendment footnotes kept apart as notes (``justel``);
* Belgisch Staatsblad publication pages: the publication text, split at "Artikel N." / "Art. N." lines
  (``staatsblad``);
* EUR-Lex Official Journal and consolidated texts: articles, recitals and annexes as separate sections
  (``eurlex``);
* anything else: sections start at ``h1``-``h6`` headings (``generic``).

Bytes become text and a tree in ``decoding``; ``rendering`` and ``page`` hold what the readers share.
lxml is used only inside this package; callers get plain ``LoadedDocument`` values.
"""

from __future__ import annotations

import logging

from corpus.documents import LoadedDocument
from corpus.loaders.html.decoding import decode_page, parse_page
from corpus.loaders.html.eurlex import is_eurlex, load_eurlex
from corpus.loaders.html.generic import load_generic
from corpus.loaders.html.justel import is_justel, load_justel
from corpus.loaders.html.page import Page
from corpus.loaders.html.staatsblad import is_staatsblad, load_staatsblad

logger = logging.getLogger(__name__)

__all__ = ["load_html"]


def load_html(
    data: bytes, *, name: str, url: str | None = None, language: str | None = None
) -> list[LoadedDocument]:
    """Read one HTML page into documents, choosing the Justel, Staatsblad, EUR-Lex or generic reader."""
    text = decode_page(data, name)
    root = parse_page(text, name)
    page = Page(root=root, source=text, name=name, url=url, language=language)
    if is_justel(root):
        return [load_justel(page)]
    if is_staatsblad(root):
        return [load_staatsblad(page)]
    if is_eurlex(root):
        document = load_eurlex(page)
        if document is not None:
            return [document]
        logger.info("%s: looks like EUR-Lex but has no articles, recitals or annexes; reading it as plain HTML", name)
    return [load_generic(page)]
