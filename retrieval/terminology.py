"""Query expansion over equivalent procurement terms (Flemish practice vs. statute wording)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml

from retrieval.lexical import analyse


@lru_cache(maxsize=1)
def _groups() -> tuple[tuple[tuple[str, ...], ...], ...]:
    text = resources.files("retrieval").joinpath("data/terminology.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    # Each term is compared as its analysed (stemmed) token sequence.
    return tuple(tuple(tuple(analyse(term)) for term in group) for group in data.get("groups", []))


def expand(tokens: list[str]) -> list[str]:
    """Analysed query tokens plus the tokens of every equivalent of a term they contain."""
    extra: list[str] = []
    for group in _groups():
        if any(_contains(tokens, term) for term in group if term):
            for term in group:
                if term and not _contains(tokens, term):
                    extra.extend(t for t in term if t not in tokens and t not in extra)
    return tokens + extra


def _contains(tokens: list[str], term: tuple[str, ...]) -> bool:
    n = len(term)
    return any(tuple(tokens[i : i + n]) == term for i in range(len(tokens) - n + 1))
