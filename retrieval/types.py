"""Data that crosses the retrieval boundary: indexable chunks and ranked hits."""

from __future__ import annotations

from dataclasses import asdict, dataclass


MODES = ("hybrid", "bm25", "dense")
"""How a search may rank: both rankings fused, or one of them alone."""
QUOTED_KINDS = ("legislation", "guidance", "faq")
"""Source kinds whose text answers questions. Templates (model texts with blanks) and practice cases (what one
local government did) are handed out when asked for; they are never quoted as an answer, nor counted in the term
statistics that weigh the evidence for one."""


@dataclass(frozen=True)
class Chunk:
    """A piece of a source small enough to embed, with everything needed to cite it."""

    id: str
    """Stable id ``source:doc:unit:n``; doubles as the citation key."""
    source_id: str
    doc_id: str
    unit_id: str
    """The citable unit the chunk belongs to (an article or a record); results are one per unit."""
    title: str
    kind: str
    text: str
    content_hash: str
    label: str | None = None
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    url: str | None = None
    effective_date: str | None = None
    language: str | None = None
    position: int = 0
    """Order of the chunk within its source; used to prefer the first of two twin articles."""
    meta: tuple[tuple[str, str], ...] = ()
    """Structured fields of the document, for filtering and for handing out files: a template's file, version
    and procedures; a practice case's local government, year and procedure (sorted pairs, strings only)."""

    def get(self, key: str) -> str | None:
        """One ``meta`` field, or None."""
        return next((value for k, value in self.meta if k == key), None)

    def embedding_text(self) -> str:
        """The text that is embedded and ranked: document, headings and label give the chunk context."""
        head = [self.title, *self.heading_path]
        if self.label and self.label.lower() not in self.text[:80].lower():
            head.append(self.label)
        return "\n".join([*(h for h in head if h), self.text])

    def to_record(self) -> dict:
        """A JSON-friendly dict (tuples become lists)."""
        record = asdict(self)
        record["heading_path"] = list(self.heading_path)
        record["meta"] = [list(pair) for pair in self.meta]
        if not self.meta:
            del record["meta"]  # generations written before meta existed read back the same
        return record

    @classmethod
    def from_record(cls, record: dict) -> "Chunk":
        """Inverse of ``to_record``."""
        data = dict(record)
        data["heading_path"] = tuple(data.get("heading_path") or ())
        data["meta"] = tuple((str(k), str(v)) for k, v in data.get("meta") or ())
        return cls(**data)


@dataclass(frozen=True)
class SearchHit:
    """One ranked result: a citable unit (article, record, section) with its fused score."""

    chunk: Chunk
    """The unit's first chunk: what a citation names (document, article, link)."""
    score: float
    matched: Chunk | None = None
    """The unit's chunk that matched the query best (the passage to quote); defaults to ``chunk``."""
    doc_ids: tuple[str, ...] = ()
    """Every document id inside the unit (several rows of a record file can make one article)."""
    lexical_rank: int | None = None
    dense_rank: int | None = None
    dense_score: float | None = None
    twins: tuple[str, ...] = ()
    """Unit ids of near-identical units folded into this hit (e.g. the same rule repeated elsewhere)."""
    unit: tuple[Chunk, ...] = ()
    """Every chunk of the unit in order (an article's paragraphs); empty means just ``chunk``."""

    @property
    def passage(self) -> Chunk:
        """The chunk to quote from."""
        return self.matched or self.chunk
