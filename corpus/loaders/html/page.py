"""The parsed page every HTML reader gets, and what the readers share to describe it: heading levels, dates,
language."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import lxml.html


@dataclass
class Page:
    """A parsed page plus what the caller told us about it."""

    root: lxml.html.HtmlElement
    source: str
    name: str
    url: str | None
    language: str | None


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


def heading_level(text: str) -> int | None:
    """The structure level named by a heading's first or second word ("VOORAFGAANDE TITEL"), if any."""
    for word in _WORD.findall(text)[:2]:
        level = _LEVEL_WORDS.get(word.lower())
        if level is not None:
            return level
    return None


def push_heading(stack: list[tuple[int, str]], level: int, text: str) -> None:
    """Put a heading on the stack, replacing headings of the same or a lower level."""
    while stack and stack[-1][0] >= level:
        stack.pop()
    stack.append((level, text))


def iso_from_dmy(day: str, month: str, year: str) -> str | None:
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


def guess_language(texts: Iterable[str]) -> str | None:
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


def normalise_language(value: str | None) -> str | None:
    """The two-letter code of "NL", "nl-BE" or "fr_FR"; None for empty values."""
    if not value or not value.strip():
        return None
    return re.split(r"[-_]", value.strip())[0].lower() or None
