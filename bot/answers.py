"""The extractive answer as officers read it: the unit that answers best, quoted, then the others worth a look.

The counterpart of ``retrieval.generative.GenerativeComposer``; the helpdesk uses the generative one when it is
configured and gives an answer, this one otherwise. Which unit leads and which sentences are quoted is decided in
``retrieval.answer``; this module only words it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.texts import SEE_ALSO, according_to, according_to_article, according_to_section
from retrieval.answer import compose
from retrieval.types import SearchHit


class ExtractiveComposer:
    """Quotes from the sources; offline, and never says anything they do not."""

    def compose(self, question: str, hits: list[SearchHit], *, probabilities: Sequence[float] = (),
                context: str = "") -> tuple[str, list[SearchHit]]:
        """(text with [n] markers, the hits cited in order): "Volgens <bron> [1]:", the quote, "Zie ook" lines."""
        extracted = compose(question, hits, probabilities=probabilities, context=context)
        cited = list(extracted.sources)
        body = f"{lead(cited[0])} [1]:\n\n{extracted.quote}"
        if len(cited) > 1:
            body += f"\n\n{SEE_ALSO}\n" + "\n".join(f"[{n}] {reference(hit, beside=cited[0])}"
                                                  for n, hit in enumerate(cited[1:], 2))
        return body, cited


def lead(hit: SearchHit) -> str:
    """What the quote is introduced with: the article of a law, or the section of a note."""
    first = hit.chunk
    if first.label and first.kind == "legislation":
        if _names(first.title, first.label):  # "Wet ... Artikel 10": saying "Artikel 10 van" again reads wrong
            return according_to(first.title)
        return according_to_article(first.label, first.title)  # the article, not the part of it that matched
    label = hit.passage.label or first.label
    # A guidance section is named by its heading, often the question it answers.
    return according_to_section(label, first.title) if label else according_to(first.title)


def reference(hit: SearchHit, *, beside: SearchHit | None = None) -> str:
    """A "zie ook" line: what the source is called, not a quote from it. A part of the document the lead line
    (``beside``) named already is called by its label alone ("Artikel 7"); the sources under the reply name it
    in full, with its link."""
    label = hit.passage.label or hit.chunk.label
    if label and beside is not None and _document(hit) == _document(beside):
        return label
    return f"{label} — {hit.chunk.title}" if label and not _names(hit.chunk.title, label) else hit.chunk.title


def _document(hit: SearchHit) -> tuple[str, str]:
    """The source and the title without the article it may end with: "Wet ... Artikel 6" and "Wet ... Artikel 7"
    are parts of one law."""
    title, label = hit.chunk.title.rstrip(" ."), (hit.chunk.label or "").strip()
    if _names(title, label):
        title = title[: len(title) - len(label)]
    return hit.chunk.source_id, " ".join(title.split()).casefold()


def _names(title: str, label: str) -> bool:
    """Whether a title already ends with the label as a word of its own (sources with one record per article are
    titled that way); a label "17" is not named by a title ending in "2017"."""
    label = label.strip()
    return bool(label) and re.search(rf"(?<!\w){re.escape(label)}$", title.rstrip(" ."), re.IGNORECASE) is not None
