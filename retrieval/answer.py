"""Extractive answers: the sentences of the retrieved passages that best match the question, each tagged [n].

Fully offline and unable to invent anything: every sentence shown is quoted from a retrieved chunk,
and every [n] points at the hit it was quoted from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.lexical import analyse
from retrieval.types import SearchHit

MAX_SOURCES = 3
MAX_SENTENCES_PER_SOURCE = 2
MAX_QUOTES = 4
MAX_QUOTE_CHARS = 420
RELATIVE_SCORE_FLOOR = 0.6
"""A hit is quoted only when its score is at least this share of the best hit's."""

_SPLIT = re.compile(r"(?<=[.;:!?])\s+(?=[A-Z0-9\u00c0-\u017f(\"'«])|\n+")
_ABBREVIATION = re.compile(r"\b(art|artt|nr|bv|vb|vgl|o\.a|m\.a\.w|z\.n|bijv|resp|blz|p|al|lid|jo|excl|incl|ca|min|max)\.$",
                           re.IGNORECASE)
_MARKDOWN = re.compile(r"[*_`]+")
_HEADING_LINE = re.compile(r"^(#+\s|art(ikel|\.)\s*[\w./]+\.?$|art\.\s*[\w./]+\s*\(vervolg\)$)", re.IGNORECASE)


@dataclass(frozen=True)
class Quote:
    """A sentence quoted from a source; ``source`` is the 1-based number of that source."""

    text: str
    source: int


@dataclass(frozen=True)
class ExtractiveAnswer:
    """Quotes and the hits they cite, in citation order."""

    quotes: tuple[Quote, ...]
    sources: tuple[SearchHit, ...]


def sentences(text: str, *, headings: Sequence[str] = ()) -> list[str]:
    """Sentences and list points of a passage, without headings (``headings`` included) or markup."""
    skip = {h.strip().lower() for h in headings if h}
    # Drop heading lines whole before splitting, or "Valt PCP onder de wet? (art. 32)" leaves half a heading.
    body = "\n".join(line for line in text.splitlines() if line.strip().lstrip("#").strip().lower() not in skip)
    pieces: list[str] = []
    for part in _SPLIT.split(body):
        # "art. 40" or "nr. 3" is not the end of a sentence: glue the pieces back together.
        if pieces and _ABBREVIATION.search(pieces[-1]) and part:
            pieces[-1] += " " + part
        else:
            pieces.append(part)
    out = []
    for part in pieces:
        part = _MARKDOWN.sub("", part).strip(" -•\t")
        if len(part) < 25 or _HEADING_LINE.match(part) or part.lower() in skip:
            continue
        out.append(part)
    return out


def _score(sentence: str, query_weights: dict[str, float]) -> float:
    tokens = set(analyse(sentence))
    if not tokens:
        return 0.0
    overlap = sum(w for t, w in query_weights.items() if t in tokens)
    # Prefer sentences dense in query terms over long ones that happen to contain them.
    return overlap / math.sqrt(max(len(tokens), 8))


def _trim(sentence: str) -> str:
    if len(sentence) <= MAX_QUOTE_CHARS:
        return sentence
    cut = sentence[:MAX_QUOTE_CHARS].rsplit(" ", 1)[0]
    return cut + " …"


def extract(question: str, hits: Sequence[SearchHit], *, context: str = "") -> ExtractiveAnswer:
    """Pick the best sentences of the top hits for ``question`` (``context`` adds earlier turns' words)."""
    if not hits:
        return ExtractiveAnswer((), ())
    query_tokens = analyse(question)
    weights = {t: 1.0 for t in query_tokens}
    for t in analyse(context):
        weights.setdefault(t, 0.3)
    top = hits[0].score or 1.0
    kept = [h for h in hits[:MAX_SOURCES] if h.score >= RELATIVE_SCORE_FLOOR * top] or [hits[0]]
    quotes: list[Quote] = []
    sources: list[SearchHit] = []
    for hit in kept:
        budget = MAX_QUOTES - len(quotes)
        if budget <= 0:
            break
        passage = hit.passage
        candidates = sentences(passage.text, headings=[passage.label or "", *passage.heading_path, passage.title])
        if not candidates:
            continue
        ranked = sorted(range(len(candidates)), key=lambda i: -_score(candidates[i], weights))
        # The best source may give two sentences, the others one: the answer stays short.
        per_source = MAX_SENTENCES_PER_SOURCE if not sources else 1
        chosen = sorted(ranked[: min(per_source, budget)])
        # A second sentence is only worth showing when it also speaks to the question.
        if len(chosen) > 1 and _score(candidates[ranked[1]], weights) == 0:
            chosen = [ranked[0]]
        sources.append(hit)
        n = len(sources)
        quotes.extend(Quote(_trim(candidates[i]), n) for i in chosen)
    return ExtractiveAnswer(tuple(quotes), tuple(sources))
