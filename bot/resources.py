"""Templates and practice cases: recognising a request for them, and turning their chunks into offers and lines.

Officers ask for these by name ("Heb je een sjabloon voor ...", "voorbeelden van PCP bij gemeenten"), so the
requests are recognised by words, not by the intent model; what comes back is retrieved like any other source, but
only among templates or cases, filtered on the procedure and kind of local government the question names.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

from bot.messages import FileOffer
from bot.texts import expired_note, not_yet_valid_note, template_note
from escalation.attachments import ALLOWED_TYPES
from retrieval.lexical import analyse
from retrieval.types import Chunk, SearchHit

_TEMPLATE_REQUEST = re.compile(
    r"\b(?:sjablo[o]?n(?:en)?|templates?|modellen|modeldocument(?:en)?|model(?:brief|nota|bestek|document)"
    r"|(?:een|het|jullie|jouw)\s+model\s+(?:van|voor)|voorbeeld(?:bestek|document|tekst|brief|nota|formulier)(?:en)?"
    r"|voorbeeld(?:en)?\s+(?:van\s+(?:een|het)\s+)?\w{0,30}?(?:bestek|aankondiging|brief|nota|formulier|checklist"
    r"|beslissing)\w{0,20}"
    r"|invuldocument|checklist)\b", re.IGNORECASE)
_CASE_REQUEST = re.compile(
    r"\b(?:praktijkvoorbeeld(?:en)?|praktijkervaring(?:en)?|voorbeelden\s+(?:van|uit|bij)|ervaringen?\s+(?:van|met)"
    r"|welke\s+(?:steden|gemeenten|besturen|lokale\s+besturen|ocmw'?s)|wie\s+(?:deed|heeft|gebruikte)\s+(?:al|ooit)"
    r"|andere\s+(?:steden|gemeenten|besturen)\s+(?:die|met)|(?:steden|gemeenten|besturen)\s+die\s+al)\b",
    re.IGNORECASE)
_RULE_QUESTION = re.compile(r"\b(?:mag|mogen|moet|moeten|verplicht|toegelaten|toegestaan|wettelijk|rechtsgeldig)\b",
                            re.IGNORECASE)
PROCEDURE_WORDS = {
    "pcp": r"pcp|pre-?commerci[eë]le?\s+(?:aankoop|aankopen|aanbesteding|opdracht)|precommercieel",
    "innovatiepartnerschap": r"innovatiepartnerschap(?:pen)?",
    "concurrentiegerichte-dialoog": r"concurrentiegerichte\s+dialoog|competitieve\s+dialoog",
    "mededingingsprocedure-met-onderhandeling": r"mededingingsprocedure(?:\s+met\s+onderhandeling)?",
    "onderhandelingsprocedure-zonder-bekendmaking": r"onderhandelingsprocedure\s+zonder|zonder\s+(?:voorafgaande\s+)?"
                                                     r"bekendmaking",
    "marktconsultatie": r"marktconsultatie(?:s)?|marktverkenning|marktbevraging",
    "open-of-niet-openbaar": r"(?:niet-)?openbare\s+procedure",
}
_PROCEDURES = {name: re.compile(rf"\b(?:{words})\b", re.IGNORECASE) for name, words in PROCEDURE_WORDS.items()}
_BESTUUR = {"gemeente": r"gemeenten?", "stad": r"steden|stad", "ocmw": r"ocmw'?s?", "intercommunale":
            r"intercommunales?", "politiezone": r"politiezones?", "provincie": r"provincies?"}
_BESTUUR_RE = {kind: re.compile(rf"\b(?:{words})\b", re.IGNORECASE) for kind, words in _BESTUUR.items()}
_REQUEST_WORDS = set(analyse("sjabloon sjablonen template model modellen voorbeeld voorbeelden praktijkvoorbeeld "
                             "praktijkvoorbeelden heb hebben jullie je jij er een het voor van bij welke wie "
                             "gemeenten steden besturen deed deden al ooit document bestand downloaden"))
_CONTENT_TYPES = {**ALLOWED_TYPES, ".md": "text/markdown"}


def wants_template(question: str) -> bool:
    """The officer asks for a template or model document (and not, in the same breath, what a rule allows:
    "Is een checklist verplicht ...?" is answered from the sources, with the template alongside)."""
    return bool(_TEMPLATE_REQUEST.search(question)) and not _RULE_QUESTION.search(question)


def wants_cases(question: str) -> bool:
    """The officer asks what other local governments did (and no rule question with it)."""
    return bool(_CASE_REQUEST.search(question)) and not _RULE_QUESTION.search(question)


def procedures_named(question: str) -> set[str]:
    """The procedures a question names (slugs as in the catalogue and the case records)."""
    return {name for name, pattern in _PROCEDURES.items() if pattern.search(question)}


def bestuur_types_named(question: str) -> set[str]:
    """Kinds of local government a question names ("bij gemeenten", "welke steden")."""
    return {kind for kind, pattern in _BESTUUR_RE.items() if pattern.search(question)}


def topic_words(question: str) -> set[str]:
    """The question's content words (stemmed), without the words that only make it a request."""
    return set(analyse(question)) - _REQUEST_WORDS


def relevant(hit: SearchHit, words: set[str]) -> bool:
    """A template or case shares a content word with the question (or the question has none left)."""
    if not words:
        return True
    own = set(analyse(" ".join([hit.chunk.title, hit.chunk.get("description") or "", hit.chunk.get("subject") or "",
                                *(c.text for c in (hit.unit or (hit.chunk,)))])))
    return bool(words & own)


def matches_case_filters(chunk: Chunk, procedures: set[str], besturen: set[str]) -> bool:
    """A case of one of the named procedures and kinds of local government (none named: any)."""
    if procedures and chunk.get("procedure") not in procedures:
        return False
    # "steden" and "gemeenten" are both municipalities to an officer: a city is a gemeente too.
    wanted = besturen | ({"stad", "gemeente"} if besturen & {"stad", "gemeente"} else set())
    return not wanted or chunk.get("type_bestuur") in wanted


def template_offer(chunk: Chunk) -> FileOffer | None:
    """The template file of a template chunk, when it is still where the index found it."""
    path = Path(chunk.get("file") or "")
    if chunk.kind != "template" or not chunk.get("file") or not path.is_file():
        return None
    name = chunk.get("file_name") or path.name
    content_type = _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return FileOffer(ref=f"template:{chunk.unit_id}", name=name, content_type=content_type,
                     size=path.stat().st_size, path=path, note=template_note(chunk.get("version")))


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in blocks (a changed template is not the one the index describes)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def validity_note(chunk: Chunk, today: dt.date) -> str | None:
    """A Dutch warning when the chunk's document is not valid today (expired, or not yet in force)."""
    until, since = chunk.get("valid_until"), chunk.get("valid_from")
    if until and until < today.isoformat():
        return expired_note(chunk.title, _nl_date(until))
    if since and since > today.isoformat():
        return not_yet_valid_note(chunk.title, _nl_date(since))
    return None


def _nl_date(iso: str) -> str:
    year, month, day = iso.split("-")
    return f"{int(day)}-{int(month)}-{year}"
