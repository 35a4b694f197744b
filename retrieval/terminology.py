"""Query expansion over equivalent procurement terms (Flemish practice vs. statute wording)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from retrieval.lexical import analyse, fold
from retrieval.types import Chunk


@lru_cache(maxsize=1)
def _terminology() -> dict:
    text = resources.files("retrieval").joinpath("data/terminology.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


@lru_cache(maxsize=1)
def groups() -> tuple[tuple[tuple[str, ...], ...], ...]:
    """The terminology groups, each term as its analysed (stemmed) token sequence."""
    return tuple(tuple(tuple(analyse(term)) for term in group) for group in _terminology().get("groups", []))


@lru_cache(maxsize=1)
def translations() -> tuple[tuple[tuple[str, ...], tuple[tuple[str, ...], ...]], ...]:
    """(French term, its Dutch terms) as analysed token sequences, one way: the Dutch terms include every term of
    the groups they belong to, so a French question searches what the Dutch one would."""
    out = []
    for entry in _terminology().get("french", []):
        source, *targets = (tuple(analyse(term)) for term in entry)
        dutch = [t for t in targets if t]
        for group in groups():
            if any(t in group for t in dutch):
                dutch.extend(term for term in group if term and term not in dutch)
        if source and dutch:
            out.append((source, tuple(dutch)))
    return tuple(out)


def expand(tokens: list[str]) -> list[str]:
    """Analysed query tokens plus the tokens of every equivalent of a term they contain (and of the Dutch terms of
    a French one)."""
    extra: list[str] = []

    def add(terms) -> None:
        for term in terms:
            if term and not _contains(tokens, term):
                extra.extend(t for t in term if t not in tokens and t not in extra)

    for group in groups():
        if any(_contains(tokens, term) for term in group if term):
            add(group)
    for source, dutch in translations():
        if _contains(tokens, source):
            add(dutch)
    return tokens + extra


def _contains(tokens: list[str], term: tuple[str, ...]) -> bool:
    n = len(term)
    return any(tuple(tokens[i : i + n]) == term for i in range(len(tokens) - n + 1))



@dataclass(frozen=True)
class SpecialRegimes:
    """Parts of a law that apply only in special cases (``retrieval/data/regimes.yaml``)."""

    factor: float
    regimes: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...]
    """(heading phrases, pattern of the words that name the regime) per regime."""

    def named_in(self, query: str) -> frozenset[int]:
        """The regimes the query names."""
        folded = fold(query)
        return frozenset(i for i, (_, named) in enumerate(self.regimes) if named.search(folded))

    def factor_for(self, chunk: Chunk, named: frozenset[int]) -> float:
        """The score factor of a unit: below 1 when it sits in a regime the query does not name."""
        top = fold(chunk.heading_path[0]) if chunk.heading_path else ""
        for i, (headings, _) in enumerate(self.regimes):
            if i not in named and any(h in top for h in headings):
                return self.factor
        return 1.0


@lru_cache(maxsize=1)
def special_regimes() -> SpecialRegimes:
    """The bundled special regimes."""
    text = resources.files("retrieval").joinpath("data/regimes.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    regimes = []
    for regime in data.get("regimes", []):
        words = "|".join(re.escape(fold(w)) for w in regime["named_by"])
        regimes.append((tuple(fold(h) for h in regime["headings"]), re.compile(rf"\b({words})")))
    return SpecialRegimes(factor=float(data.get("factor", 1.0)), regimes=tuple(regimes))
