"""Loader for Dutch BWB "toestand" XML, the consolidated laws published by wetten.overheid.nl.

The XML nests structural elements (boek, deel, hoofdstuk, afdeling, paragraaf, ...) each with a
``kop`` (label, nr, titel) around ``artikel`` elements made of ``al`` paragraphs, numbered ``lid``
elements and ``lijst``/``li`` lists. Every element also carries ``meta-data`` (publication history,
JCI references) which is bookkeeping, not law text, and is left out.
"""

from __future__ import annotations

import re

from lxml import etree

from corpus.documents import LoadedDocument, Section
from corpus.errors import SourceReadError

_SKIP = {"meta-data", "kop", "noot", "lidnr", "li.nr"}
_CONTAINERS = {"lijst", "tabel", "table", "tgroup", "thead", "tbody", "al-groep"}
_WHITESPACE = re.compile(r"\s+")
_BASE_URL = "https://wetten.overheid.nl"


def _parse(data: bytes, *, name: str) -> etree._Element:
    """Parse the XML without touching the network or expanding entities (the input is untrusted)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise SourceReadError(f"{name}: not well-formed XML ({exc})") from exc
    if root is None:
        raise SourceReadError(f"{name}: empty XML document")
    return root


def _inline(element: etree._Element) -> str:
    """The running text of an element, without meta-data and footnotes, on one line."""
    parts: list[str] = [element.text or ""]
    for child in element:
        if not isinstance(child.tag, str):
            parts.append(child.tail or "")
            continue
        if child.tag not in ("meta-data", "noot"):
            parts.append(_inline(child))
        parts.append(child.tail or "")
    return _WHITESPACE.sub(" ", "".join(parts)).strip()


def _kop(element: etree._Element) -> str:
    """A heading from a ``kop``: "Hoofdstuk 2.3 De procedures", "§ 2.1.1.1 Toepassingsbereik ..."."""
    kop = element.find("kop")
    if kop is None:
        return ""
    parts = [_inline(kop.find(tag)) for tag in ("label", "nr", "titel") if kop.find(tag) is not None]
    return " ".join(part for part in parts if part)


def _blocks(element: etree._Element, lines: list[str], notes: list[str]) -> None:
    """Append the text lines of an article body: one line per al, per lid and per list item."""
    for child in element:
        if not isinstance(child.tag, str):
            continue
        tag = child.tag
        if tag == "noot":
            notes.append(_inline(child))
        elif tag in _SKIP:
            pass
        elif tag in ("lid", "li"):
            # The number ("1" of a lid, "a." of a list item) opens the item's first line: "1. De ...".
            number_element = child.find("lidnr" if tag == "lid" else "li.nr")
            number = _inline(number_element) if number_element is not None else ""
            if tag == "lid" and number and not number.endswith("."):
                number += "."
            start = len(lines)
            _blocks(child, lines, notes)
            if number and len(lines) > start:
                lines[start] = f"{number} {lines[start]}"
        elif tag == "row":
            cells = (_inline(entry) for entry in child if isinstance(entry.tag, str))
            lines.append(" | ".join(cell for cell in cells if cell))
        elif tag in _CONTAINERS:
            _blocks(child, lines, notes)
        else:
            text = _inline(child)
            if text:
                lines.append(text)
        if child.tail and child.tail.strip():
            # Loose text between blocks is rare in BWB files but is law text all the same.
            lines.append(_WHITESPACE.sub(" ", child.tail).strip())


def _anchor(artikel: etree._Element, nr: str) -> str | None:
    """The fragment wetten.overheid.nl gives an article.

    The site's HTML ids are the element's ``bwb-ng-variabel-deel`` path with the leading slash dropped
    and the other slashes turned into underscores ("/Deel2/Hoofdstuk2.2/Artikel2.31a" becomes
    "#Deel2_Hoofdstuk2.2_Artikel2.31a", the form seen in links such as
    ".../BWBR0005290/2024-01-01/#Boek7_Titeldeel12_Afdeling1_Artikel757a"). Without that attribute the
    best guess is "Artikel<nr>".
    """
    path = artikel.get("bwb-ng-variabel-deel")
    if path:
        return path.strip("/").replace("/", "_")
    return f"Artikel{nr}" if nr else None


def _label(artikel: etree._Element) -> tuple[str, str, str]:
    """(citation label "art. 2.31a", heading "Artikel 2.31a", number "2.31a") of an article."""
    kop = artikel.find("kop")
    nr = _inline(kop.find("nr")) if kop is not None and kop.find("nr") is not None else ""
    heading = (artikel.get("label") or "").strip()
    if not heading:
        word = _inline(kop.find("label")) if kop is not None and kop.find("label") is not None else "Artikel"
        heading = f"{word} {nr}".strip()
    match = re.match(r"(?i)^artikel\s+(.+)$", heading)
    if match:
        nr = nr or match.group(1)
        return f"art. {match.group(1)}", heading, nr
    return heading, heading, nr


def _expired(element: etree._Element) -> bool:
    """Whether the element or a structural ancestor is marked as no longer in force."""
    node: etree._Element | None = element
    while node is not None:
        if node.get("status") == "vervallen":
            return True
        node = node.getparent()
    return False


def load_bwb_xml(data: bytes, *, name: str, url: str | None = None) -> list[LoadedDocument]:
    """Load a BWB toestand XML file as one document with one section per article in force."""
    root = _parse(data, name=name)
    toestand = root if root.tag == "toestand" else root.find(".//toestand")
    if toestand is None and root.find(".//wetgeving") is None:
        raise SourceReadError(f"{name}: not a BWB toestand XML (root element <{root.tag}>)")
    info = toestand if toestand is not None else root

    bwb_id = info.get("bwb-id")
    effective_date = info.get("inwerkingtreding")
    title_element = root.find(".//citeertitel")
    if title_element is None or not _inline(title_element):
        title_element = root.find(".//intitule")
    title = _inline(title_element) if title_element is not None else ""

    sections: list[Section] = []
    expired: list[str] = []
    for artikel in root.iter("artikel"):
        if any(ancestor.tag == "artikel" for ancestor in artikel.iterancestors()):
            continue  # an article quoted inside an amending article belongs to that article's text
        label, heading, nr = _label(artikel)
        if _expired(artikel):
            expired.append(label)
            continue
        kop_title = ""
        kop = artikel.find("kop")
        if kop is not None and kop.find("titel") is not None:
            kop_title = _inline(kop.find("titel"))
        lines: list[str] = []
        notes: list[str] = []
        _blocks(artikel, lines, notes)
        body = "\n".join(line for line in lines if line.strip())
        if not body:
            continue
        path = tuple(
            heading_text
            for ancestor in reversed(list(artikel.iterancestors()))
            if ancestor.find("kop") is not None and (heading_text := _kop(ancestor))
        )
        first_line = f"{heading} {kop_title}".strip()
        sections.append(
            Section(
                text=f"{first_line}\n{body}",
                label=label,
                heading_path=path,
                anchor=_anchor(artikel, nr),
                is_article=True,
                notes=tuple(note for note in notes if note),
            )
        )

    if not sections:
        raise SourceReadError(f"{name}: no articles in force found in the BWB XML")
    warnings: tuple[str, ...] = ()
    if expired:
        # Expired ("vervallen") articles only say "Vervallen"; indexing them would add noise to search.
        listed = ", ".join(expired[:10]) + (", ..." if len(expired) > 10 else "")
        warnings = (f"{len(expired)} expired articles skipped ({listed})",)
    if url is None and bwb_id:
        url = f"{_BASE_URL}/{bwb_id}/{effective_date}" if effective_date else f"{_BASE_URL}/{bwb_id}"
    return [
        LoadedDocument(
            doc_id=bwb_id or name,
            title=title or name,
            sections=tuple(sections),
            url=url,
            effective_date=effective_date,
            language="nl",
            warnings=warnings,
        )
    ]
