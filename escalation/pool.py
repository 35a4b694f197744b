"""The expert pool: who answers which topics, the fallback address, and the service level."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from escalation.errors import PoolConfigError

TOPICS = ("pcp", "innovatiepartnerschap", "dialoog", "onderhandeling", "marktconsultatie", "drempels", "general")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")

# Words that place a question in a topic; the first topic whose words occur wins, else "general".
_TOPIC_WORDS = {
    "pcp": ("pcp", "precommerci", "pre-commerci", "onderzoek en ontwikkeling", "o&o"),
    "innovatiepartnerschap": ("innovatiepartnerschap", "partenariat d'innovation"),
    "dialoog": ("concurrentiegerichte dialoog", "dialogue compétitif", "dialoog"),
    "onderhandeling": ("onderhandel", "négoci"),
    "marktconsultatie": ("marktconsultatie", "marktverkenning", "consultation du marché"),
    "drempels": ("drempel", "raming", "aanvaarde factuur", "seuil", "europese bekendmaking"),
}


@dataclass(frozen=True)
class Expert:
    """A member of the pool."""

    name: str
    email: str
    topics: tuple[str, ...]


@dataclass(frozen=True)
class ExpertPool:
    """Experts, the fallback address and the SLA, read from a YAML file (docs/OPERATIONS.md)."""

    experts: tuple[Expert, ...]
    fallback: str
    sla_hours: float = 48.0
    working_hours: str | None = None

    def candidates(self, topic: str) -> list[Expert]:
        """Experts for a topic; experts for "general" when nobody covers it."""
        matching = [e for e in self.experts if topic in e.topics]
        return matching or [e for e in self.experts if "general" in e.topics]

    def is_member(self, address: str) -> bool:
        """True for the address of an expert or the fallback (who may answer tickets)."""
        address = address.strip().lower()
        return address == self.fallback or any(e.email == address for e in self.experts)


def classify_topic(question: str) -> str:
    """The pool topic of a question."""
    lower = question.lower()
    for topic, words in _TOPIC_WORDS.items():
        if any(w in lower for w in words):
            return topic
    return "general"


def load_pool(path: Path) -> ExpertPool:
    """Read and validate the pool file; problems name the field."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise PoolConfigError(f"expert pool file not found: {path} (VRAAGBAAK_EXPERTS_FILE)") from None
    except yaml.YAMLError as exc:
        raise PoolConfigError(f"expert pool file {path} is not valid YAML: {exc}") from None
    fallback = str(data.get("fallback") or "").strip().lower()
    if not _EMAIL.match(fallback):
        raise PoolConfigError(f"{path}: 'fallback' must be an email address")
    experts = []
    for n, item in enumerate(data.get("experts") or [], 1):
        if not isinstance(item, dict) or not item.get("name") or not item.get("email"):
            raise PoolConfigError(f"{path}: expert #{n} needs a name and an email")
        email = str(item["email"]).strip().lower()
        if not _EMAIL.match(email):
            raise PoolConfigError(f"{path}: expert {item['name']!r} has an invalid email address")
        topics = tuple(str(t).strip().lower() for t in item.get("topics") or ["general"])
        unknown = sorted(set(topics) - set(TOPICS))
        if unknown:
            raise PoolConfigError(f"{path}: expert {item['name']!r} has unknown topics {unknown}; use {list(TOPICS)}")
        experts.append(Expert(name=str(item["name"]), email=email, topics=topics))
    try:
        sla = float(data.get("sla_hours", 48))
    except (TypeError, ValueError):
        raise PoolConfigError(f"{path}: 'sla_hours' must be a number") from None
    return ExpertPool(experts=tuple(experts), fallback=fallback, sla_hours=sla,
                      working_hours=data.get("working_hours"))
