"""Neutral document model shared by every loader and the chunker.

A loader turns raw bytes into ``LoadedDocument`` objects made of ``Section``s. A
section is the smallest unit a loader can recognise: an article of a law, a
headed section of a guidance note, one record of a CSV file. The chunker decides
how sections become indexable chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Section:
    """One structural unit of a document (an article, a headed section, a record)."""

    text: str
    label: str | None = None
    """Citation label as a reader would write it: "art. 41", "Artikel 2.31a", a heading."""
    heading_path: tuple[str, ...] = ()
    """Headings above this unit, outermost first ("Deel 2", "Hoofdstuk 2.3", ...)."""
    anchor: str | None = None
    """URL fragment (without '#') that jumps to this unit in the source's page."""
    page: int | None = None
    """1-based page number for paged formats (PDF)."""
    is_article: bool = False
    """True when the unit is a legislative article; the chunker never merges those."""
    notes: tuple[str, ...] = ()
    """Footnotes or amendment notes kept apart from the text (Justel)."""


@dataclass(frozen=True)
class LoadedDocument:
    """A document as read from a source: its identity, link and ordered sections."""

    doc_id: str
    """Identifier unique within the source (a record id, a file stem, an ELI number)."""
    title: str
    sections: tuple[Section, ...]
    url: str | None = None
    """Link to the document itself; section anchors are appended to it."""
    effective_date: str | None = None
    """ISO date the text is valid on ("geldig op"), when known."""
    language: str | None = None
    warnings: tuple[str, ...] = field(default=())
    """Problems worth reporting that did not stop the load (e.g. pages without text)."""
    meta: tuple[tuple[str, str], ...] = ()
    """Structured fields every chunk of the document carries (``Chunk.meta``)."""
