"""Does a retrieved unit answer the question? Features of a (question, hit) pair, and the judge that weighs them.

Similarity alone cannot tell "this section answers you" from "this section shares a procurement word with
you": "Wie moet de offerte ondertekenen?" is close to every passage about offers. The features below ask what an
officer would check: are the question's key terms in the unit (weighted by how rare they are in the corpus, so
"ondertekenen" counts for more than "offerte"), does the unit's heading ask the same thing, and when the question
asks for an amount, a period or a number, does the unit contain one. The weights are learned
(`vraagbaak routing train`, docs/EVALUATION.md) and stored per embedding model; this module only computes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from retrieval.lexical import analyse, fold
from retrieval.terminology import groups, translations
from retrieval.types import Chunk, SearchHit

# Question words and the generic words of any procurement question carry no topic.
_QUESTION_WORDS = frozenset(analyse(
    "wat wie welke welk waar wanneer hoe hoeveel waarom mag moet kan kunnen zijn is wordt worden gelden geldt "
    "moeten mogen nodig iemand iets vraag vragen vraagt nieuw nieuwe onze gemeente stad bestuur lokaal lokale "
    "eigenlijk graag precies best juist gewoon even dan daarvoor daarbij hierover soort "
    "quoi qui quel quelle quels quelles quand comment combien pourquoi est peut peuvent doit doivent faut notre "
    "nos commune ville une des les pour dans sur avec"))
_FRENCH_WORDS = frozenset(analyse(
    "un le la du au aux et ou par sans en il elle ils elles on je tu nous vous se ce cet cette ces que qu jusqu "
    "sont etre puis dois devons pouvons peux mon ma mes votre vos son sa ses leur leurs ne pas plus tout tous "
    "toute toutes autre autres deja si lors entre apres avant existe"))
"""French function words, no topic in a French question (the corpus is Dutch: each would count as a topic word no
source covers). Several are Dutch words too ("pas", "mes", "plus"), so they are left out only of a French
question."""
_FRENCH_MARKERS = frozenset(
    "le la une du est que qu pour dans avec sur quel quelle quels quelles peut puis dois doit faut comment "
    "combien pourquoi quand nous notre vous il elle ils elles cette ces ou au aux sont ne un par sans leur "
    "leurs votre".split())
"""Words that tell a French question: two different ones (folded, not stemmed) and it is one. Not "et", "les",
"des" or "pas", which Dutch writes too ("et cetera", "de les", "des te beter", "pas later")."""
_WORD = re.compile(r"[^\W\d_]+")

_YEAR = re.compile(r"\b(19[5-9]\d|20\d\d)\b")
_COUNT_WORD = (r"(?:twee|drie|vier|vijf|zes|zeven|acht|negen|tien|elf|twaalf|vijftien|twintig|dertig|"
               r"veertig|vijftig|zestig|honderd|deux|trois|quatre|cinq|six|dix|quinze|trente)")
"""Written numbers above one: "een" / "un" are articles far more often than numbers."""
_NUMBER_WORD = rf"(?:een|un|une|{_COUNT_WORD})"
"""Written numbers where "een" can only mean one: before a unit ("een jaar") or a noun counted."""


@dataclass(frozen=True)
class AnswerType:
    """A kind of fact a question asks for, and how to recognise it in a unit."""

    name: str
    asked: re.Pattern[str]
    present: re.Pattern[str]
    any_number: bool = False
    """``present`` takes any number: then article numbers and dates do not count ("art. 40", "17 juni 2016" state
    no limit)."""


ANSWER_TYPES = (
    AnswerType(
        "amount",
        re.compile(r"\b(hoeveel (euro|kost|bedraagt)|hoe hoog|\w*drempel\w*|\w*bedrag\w*|"
                   r"combien (co[uû]te|d'euros)|quel montant|montants?|seuils?)\b"),
        # The digit next to the currency is enough ("30.000 euro"): matching the whole number would make a long
        # table of numbers quadratic to search.
        re.compile(r"\d\s*+(?:euro|eur\b|€)|€\s*+\d"),
    ),
    AnswerType(
        "period",
        re.compile(r"\b(hoe ?lang|welke termijn|binnen (welke|hoeveel)|hoeveel (dagen|weken|maanden|jaar|jaren)|"
                   r"termijn\w*|deadline|tegen wanneer|combien de (jours|temps|mois)|quel d[ée]lai|d[ée]lai)\b"),
        re.compile(rf"\b(\d+|{_NUMBER_WORD})\s*(kalender|werk)?(dagen|dag|weken|week|maanden|maand|jaar|jaren|"
                   r"jours|mois|ans|semaines)\b"),
    ),
    AnswerType(
        "percentage",
        re.compile(r"\b(welk percentage|hoeveel procent|percentage|pourcentage|quel pourcentage)\b"),
        re.compile(r"\d\s*(%|procent|percent|pour cent)"),
    ),
    AnswerType(
        "limit",
        re.compile(r"\b(maximaal|maximum\w*|minimaal|minimum\w*|hoogstens|ten hoogste|ten minste|minstens|"
                   r"au maximum|au minimum|maximale|minimale)\b"),
        re.compile(rf"\b(\d+|{_COUNT_WORD})\b"),
        any_number=True,
    ),
    AnswerType(
        "who",
        re.compile(r"^\W*wie\b|\bwie (moet|mag|kan|beslist|tekent|ondertekent|is bevoegd|keurt)|\bwelk orgaan\b|"
                   r"\b(gemeenteraad|college) of (de |het )?(gemeenteraad|college)\b|^\W*qui\b"),
        re.compile(r"\b(gemeenteraad|college|burgemeester|schepen\w*|raad|directeur|leidend ambtenaar|"
                   r"aanbestedende (overheid|dienst)|inschrijver|kandidaat|opdrachtnemer|minister|jury|"
                   r"conseil|coll[eè]ge)\b"),
    ),
    AnswerType(
        "date",
        re.compile(r"\b(tot wanneer|vanaf wanneer|sinds wanneer|welke datum|op welke datum|jusqu'[àa] quand|"
                   r"[àa] partir de quand)\b"),
        re.compile(r"\b\d{1,2} (januari|februari|maart|april|mei|juni|juli|augustus|september|oktober|november|"
                   r"december|janvier|f[ée]vrier|mars|avril|mai|juin|juillet|ao[uû]t|septembre|octobre|"
                   r"novembre|d[ée]cembre)\b|\b(19|20)\d\d\b"),
    ),
    AnswerType(
        "count",
        re.compile(r"\bhoeveel (kandidaten|offertes|inschrijvers|inschrijvingen|ondernemingen|deelnemers|partners|"
                   r"bedrijven|leveranciers|firma'?s|opdrachtnemers)\b|\bcombien de (candidats|offres|"
                   r"soumissionnaires|entreprises|participants)\b|\b(minimaal|minstens) hoeveel\b"),
        re.compile(rf"\b(\d+|{_NUMBER_WORD})\s+(\w+\s+)?(kandidaten|offertes|inschrijvers|inschrijvingen|"
                   r"ondernemingen|deelnemers|partners|bedrijven|leveranciers|opdrachtnemers|ondernemers|"
                   r"gegadigden|candidats|offres|soumissionnaires)\b|\b(minstens|minimaal|ten minste|tenminste) "
                   rf"(\d+|{_NUMBER_WORD})\b"),
        any_number=True,
    ),
)
_MONTH = (r"(?:januari|februari|maart|april|mei|juni|juli|augustus|september|oktober|november|december|janvier|"
          r"fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|decembre)")
_REFERENCE = re.compile(rf"\b(?:artt?\.?|artikels?|articles?|lid|leden)\s*\d[\w./:-]*|§\s*\d+"
                        rf"|\b\d{{1,2}}\s+{_MONTH}(?:\s+\d{{4}})?\b|\b(?:19|20)\d\d\b")
"""Numbers that are no answer to "hoeveel" or "maximaal": references to an article or its paragraphs, dates and
years (in folded text)."""

FEATURES = ("dense", "dense_recip_rank", "lexical_recip_rank", "relative_score", "recip_rank", "coverage",
            "heading_coverage", "sentence_coverage", "plain_coverage", "missing_idf", "type_missing", "year_missing",
            "log_terms")
"""Columns of ``features``; the routing model stores its weights in this order."""
DENSE_FEATURES = frozenset({"dense", "dense_recip_rank"})
"""Columns that depend on the embedding model (dropped by the model-independent default)."""


@dataclass(frozen=True)
class TermStats:
    """Document frequencies of analysed terms over the served units."""

    n_docs: int
    df: Mapping[str, int]

    @classmethod
    def from_chunks(cls, chunks: Iterable[Chunk]) -> "TermStats":
        """Count, per analysed term, the chunks that contain it."""
        df: dict[str, int] = {}
        n = 0
        for chunk in chunks:
            n += 1
            for term in set(analyse(chunk.embedding_text())):
                df[term] = df.get(term, 0) + 1
        return cls(n_docs=n, df=df)

    def idf(self, term: str) -> float:
        """BM25's idf; a term the corpus never uses gets the highest weight."""
        df = self.df.get(term, 0)
        return math.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5))

    @property
    def max_idf(self) -> float:
        """The idf of a term no unit contains."""
        return math.log(1.0 + (self.n_docs + 0.5) / 0.5)


def topic_tokens(question: str) -> list[str]:
    """The question's analysed words that say what it is about, in order, without repeats."""
    skip = _QUESTION_WORDS | _FRENCH_WORDS if is_french(question) else _QUESTION_WORDS
    return list(dict.fromkeys(t for t in analyse(question) if t not in skip))


def is_french(question: str) -> bool:
    """Whether the question is written in French (two different French function words)."""
    return len(set(_WORD.findall(fold(question))) & _FRENCH_MARKERS) >= 2


@lru_cache(maxsize=1)
def _equivalents() -> tuple[tuple[tuple[str, ...], ...], ...]:
    return tuple(tuple(term for term in group if term) for group in groups())


@lru_cache(maxsize=1)
def _french_topics() -> tuple[tuple[tuple[str, ...], tuple[tuple[str, ...], ...]], ...]:
    """The French entries as topic words, with their Dutch terms: "cahier des charges" is "cahier charges" once
    function words are out, as it is in a question's topic words."""
    out = []
    for source, dutch in translations():
        topic = tuple(t for t in source if t not in _QUESTION_WORDS and t not in _FRENCH_WORDS)
        if topic:
            out.append((topic, dutch))
    return tuple(out)


@lru_cache(maxsize=4096)
def _relevant(wanted: frozenset[str]) -> tuple[tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]], ...]:
    """(terms of the question a group or a French entry holds, the terms that cover them) for one set of wanted
    words, worked out once: a claim or a question is compared with many passage windows."""
    out = []
    for group in _equivalents():
        present = tuple(term for term in group if set(term) <= wanted)
        if present:
            out.append((present, group))
    for topic, dutch in _french_topics():
        if set(topic) <= wanted:
            out.append(((topic,), dutch))
    return tuple(out)


def covered(wanted: Sequence[str], have: AbstractSet[str]) -> set[str]:
    """The wanted terms present in ``have``, directly or through an equivalent term of the terminology (a French
    term through its Dutch ones)."""
    found = {t for t in wanted if t in have}
    for present, equivalents in _relevant(frozenset(wanted)):
        if any(set(term) <= have for term in equivalents):
            for term in present:
                found.update(term)
    return found


def asked_types(question: str) -> list[AnswerType]:
    """The kinds of fact (amount, period, percentage, limit, who, date, count) the question asks for."""
    folded = fold(question)
    return [t for t in ANSWER_TYPES if t.asked.search(folded)]


def _heading_text(chunk: Chunk) -> str:
    return " ".join([*chunk.heading_path, chunk.label or ""])


_SENTENCE = re.compile(r"(?<=[.;:!?])\s+|\n+")
_TEXT_CACHE = 4096
"""Units whose analysed forms are kept: a ranker reads the same candidates for many questions."""


@lru_cache(maxsize=_TEXT_CACHE)
def _token_set(text: str) -> frozenset[str]:
    return frozenset(analyse(text))


@lru_cache(maxsize=_TEXT_CACHE)
def _sentence_sets(text: str) -> tuple[frozenset[str], ...]:
    return tuple(frozenset(analyse(s)) for s in _SENTENCE.split(text) if s.strip())


@lru_cache(maxsize=_TEXT_CACHE)
def _folded(text: str) -> str:
    return fold(text)


@lru_cache(maxsize=_TEXT_CACHE)
def _without_references(folded: str) -> str:
    return _REFERENCE.sub(" ", folded)


def _sentence_coverage(wanted: Sequence[str], weights: Mapping[str, float], total: float, text: str) -> float:
    """The best idf-weighted coverage of the question's terms by one sentence of the unit (with its neighbour):
    an answer states the asked terms together, a near miss scatters them over a long section."""
    sentences = _sentence_sets(text)
    best = 0.0
    for i, sentence in enumerate(sentences):
        window = sentence | (sentences[i + 1] if i + 1 < len(sentences) else frozenset())
        best = max(best, sum(weights[t] for t in covered(wanted, window)) / total)
    return best


def features(question: str, hits: Sequence[SearchHit], stats: TermStats, *, depth: int = 3) -> np.ndarray:
    """One row of ``FEATURES`` per hit among the first ``depth``."""
    wanted = topic_tokens(question)
    weights = {t: stats.idf(t) for t in wanted}
    total = sum(weights.values()) or 1.0
    types = asked_types(question)
    years = set(_YEAR.findall(question))
    # The best fused score among the hits, wherever a ranker put it: relative_score stays within [0, 1].
    top_score = max((h.score for h in hits), default=1.0)
    top_score = top_score if top_score > 0 else 1.0
    # A hit outside the dense candidates is at most as similar as the least similar hit that has a score.
    known = [h.dense_score for h in hits[:depth] if h.dense_score is not None]
    dense_floor = min(known) if known else 0.0
    rows = []
    for rank, hit in enumerate(hits[:depth], 1):
        unit = hit.passage
        have = _token_set(unit.embedding_text())
        if hit.chunk is not unit:
            have |= _token_set(hit.chunk.embedding_text())
        covered_terms = covered(wanted, have)
        heading_covered = covered(wanted, _token_set(_heading_text(unit)))
        missing = [weights[t] for t in wanted if t not in covered_terms]
        folded = _folded(unit.text)
        type_missing = float(any(not t.present.search(_without_references(folded) if t.any_number else folded)
                                 for t in types))
        # "Welke drempels gelden in 2026?" is not answered by the 2024-2025 amounts.
        year_missing = float(bool(years - set(_YEAR.findall(unit.embedding_text()))))
        rows.append([
            dense_floor if hit.dense_score is None else hit.dense_score,
            1.0 / hit.dense_rank if hit.dense_rank else 0.0,
            1.0 / hit.lexical_rank if hit.lexical_rank else 0.0,
            hit.score / top_score,
            1.0 / rank,
            sum(weights[t] for t in covered_terms) / total if wanted else 0.0,
            sum(weights[t] for t in heading_covered) / total if wanted else 0.0,
            _sentence_coverage(wanted, weights, total, unit.text) if wanted else 0.0,
            len(covered_terms) / len(wanted) if wanted else 0.0,
            max(missing) / stats.max_idf if missing else 0.0,
            type_missing,
            year_missing,
            math.log1p(len(wanted)),
        ])
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))


@dataclass(frozen=True)
class EvidenceJudge:
    """A logistic model over ``FEATURES``: the probability that a hit answers the question."""

    columns: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float
    """A hit answers when its probability reaches this."""
    strict_threshold: float
    """The bar for a question the intent model thinks is off-topic (only a clear answer may overrule that)."""

    @classmethod
    def from_dict(cls, data: Mapping) -> "EvidenceJudge":
        """Read the ``evidence`` part of a routing model file."""
        unknown = set(data["columns"]) - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown evidence feature(s): {sorted(unknown)}")
        return cls(columns=tuple(data["columns"]), coef=tuple(data["coef"]), intercept=float(data["intercept"]),
                   mean=tuple(data["mean"]), scale=tuple(data["scale"]), threshold=float(data["threshold"]),
                   strict_threshold=float(data["strict_threshold"]))

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """P(answers) per row of ``features``."""
        if rows.shape[0] == 0:
            return np.zeros(0)
        index = [FEATURES.index(c) for c in self.columns]
        x = (rows[:, index] - np.array(self.mean)) / np.array(self.scale)
        z = x @ np.array(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))
