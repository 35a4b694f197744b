"""Loaders for Markdown notes and plain-text documents.

Both formats are split into headed sections. Markdown headings are explicit (ATX
``#`` lines); plain-text headings are guessed with conservative rules so that a
position paper or a guidance note exported to ``.txt`` keeps its structure.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

import yaml

from corpus.documents import LoadedDocument, Section
from corpus.errors import SourceReadError

_KNOWN_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".pdf", ".xml", ".csv", ".jsonl", ".json", ".html", ".htm"}


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a corpus file has no use for them, and nested aliases ("billion laughs")
    make a kilobyte expand to gigabytes when the values are read."""

    def compose_node(self, parent, index):  # noqa: D102 - PyYAML's hook
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not allowed in corpus files")
        return super().compose_node(parent, index)


def load_yaml(text: str):
    """Parse a corpus YAML document safely (no tags beyond plain data, no aliases); raises yaml.YAMLError."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


def doc_id_from_name(name: str) -> str:
    """The document id for a single-document source: its name without a known file extension."""
    path = PurePosixPath(name)
    if path.suffix.lower() in _KNOWN_SUFFIXES:
        return str(path.with_suffix(""))
    return name


def decode_bytes(data: bytes, *, name: str, what: str = "a text file",
                 eight_bit: Callable[[bytes], str] | None = None) -> str:
    """Decode text bytes: UTF-16 with a BOM, else ``eight_bit`` (default UTF-8, else cp1252); reject binary data."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Windows tools ("Unicode" in Notepad) write UTF-16 with a BOM; its NUL bytes are not binary noise.
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise SourceReadError(f"{name}: cannot decode UTF-16 text ({exc.reason})") from exc
    if b"\x00" in data:
        raise SourceReadError(f"{name}: looks like a binary file (contains NUL bytes), not {what}")
    return (eight_bit or _decode_8bit)(data)


def _decode_8bit(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            # cp1252 leaves five bytes undefined; latin-1 maps every byte, so old files still load.
            return data.decode("latin-1")


def decode_text(data: bytes, *, name: str) -> str:
    """Decode text bytes (UTF-8 with or without BOM, UTF-16 with BOM, else cp1252) with Unix newlines."""
    text = decode_bytes(data, name=name)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise SourceReadError(f"{name}: empty document (no text)")
    return text


_DMY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")


def iso_date(value: object) -> str | None:
    """An ISO date string (YYYY-MM-DD) from a date, an ISO date/datetime string or a Dutch dd-mm-yyyy date."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raw = str(value).strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw[:10]).isoformat()
    except ValueError:
        pass
    match = _DMY.match(raw)
    if match:
        day, month, year = (int(part) for part in match.groups())
        try:
            return dt.date(year, month, day).isoformat()
        except ValueError:
            return None
    return None


def _tidy(text: str) -> str:
    """Strip trailing spaces and collapse runs of blank lines so section texts are compact."""
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# ---------------------------------------------------------------------------
# Markdown

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|\*|`)(?=\S)(.+?)(?<=\S)\1")
# Underscores only emphasise at word edges: "model_id" in a heading is a name, not emphasis.
_UNDERSCORE_EMPHASIS = re.compile(r"(?<!\w)(__|_)(?=\S)(.+?)(?<=\S)\1(?!\w)")


def _plain_heading(raw: str) -> str:
    """Heading text as rendered: links reduced to their text, emphasis and code markers dropped."""
    text = _LINK.sub(r"\1", raw)
    previous = None
    while previous != text:
        previous, text = text, _UNDERSCORE_EMPHASIS.sub(r"\2", _EMPHASIS.sub(r"\2", text))
    return text.strip()


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercased, punctuation dropped, spaces turned into hyphens."""
    slug = unicodedata.normalize("NFC", heading).strip().lower()
    slug = re.sub(r"[^\w\- ]", "", slug)
    return slug.replace(" ", "-")


def _split_front_matter(text: str, *, name: str) -> tuple[dict, str]:
    """Separate a leading YAML front matter block (--- ... ---) from the Markdown body."""
    if not text.startswith("---\n"):
        return {}, text
    lines = text.split("\n")
    for index in range(1, len(lines)):
        if lines[index].strip() in ("---", "..."):
            block = "\n".join(lines[1:index])
            try:
                meta = load_yaml(block) if block.strip() else {}
            except yaml.YAMLError as exc:
                raise SourceReadError(f"{name}: invalid YAML front matter ({exc})") from exc
            if meta is None:
                meta = {}
            if not isinstance(meta, dict):
                # A thematic break followed by prose is not front matter; leave the text alone.
                return {}, text
            return meta, "\n".join(lines[index + 1 :])
    return {}, text


@dataclass
class _Open:
    """A section being collected: its heading (if any), where it sits and its body lines."""

    heading: str | None
    level: int
    path: tuple[str, ...]
    anchor: str | None
    body: list[str]


def _finish(sections: list[Section], current: _Open) -> None:
    """Turn a collected section into a Section, dropping headings that carry no text of their own."""
    body = _tidy("\n".join(current.body))
    if not body:
        # A heading directly followed by a sub-heading still reaches the index through heading_path.
        return
    text = f"{current.heading}\n\n{body}" if current.heading else body
    sections.append(Section(text=text, label=current.heading, heading_path=current.path, anchor=current.anchor))


def load_markdown(data: bytes, *, name: str, url: str | None = None, title: str | None = None) -> list[LoadedDocument]:
    """Load a Markdown note as one document with one section per ATX heading."""
    text = decode_text(data, name=name)
    meta, body = _split_front_matter(text, name=name)
    warnings: list[str] = []

    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    slugs: dict[str, int] = {}
    first_h1: str | None = None
    current = _Open(heading=None, level=0, path=(), anchor=None, body=[])
    fence: str | None = None
    for line in body.split("\n"):
        fence_match = _FENCE.match(line)
        if fence is not None:
            if fence_match and fence_match.group(1)[0] == fence[0] and len(fence_match.group(1)) >= len(fence):
                fence = None
            current.body.append(line)
            continue
        if fence_match:
            fence = fence_match.group(1)
            current.body.append(line)
            continue
        heading_match = _ATX.match(line)
        if not heading_match:
            current.body.append(line)
            continue
        level = len(heading_match.group(1))
        heading = _plain_heading(heading_match.group(2) or "")
        if not heading:
            current.body.append(line)
            continue
        _finish(sections, current)
        if level == 1 and first_h1 is None:
            first_h1 = heading
        while stack and stack[-1][0] >= level:
            stack.pop()
        slug = github_slug(heading)
        # GitHub numbers repeated slugs: "kosten", "kosten-1", "kosten-2".
        seen = slugs.get(slug, 0)
        slugs[slug] = seen + 1
        anchor = slug if seen == 0 else f"{slug}-{seen}"
        current = _Open(heading=heading, level=level, path=tuple(h for _, h in stack), anchor=anchor, body=[])
        stack.append((level, heading))
    _finish(sections, current)

    if not sections:
        raise SourceReadError(f"{name}: Markdown document has no text besides headings or front matter")

    meta_title = str(meta["title"]).strip() if meta.get("title") else None
    date_value = meta.get("geldig_op", meta.get("effective_date"))
    effective_date = iso_date(date_value)
    if date_value is not None and effective_date is None:
        warnings.append(f"front matter date {date_value!r} is not a date (expected YYYY-MM-DD); ignored")
    language = meta.get("language") or meta.get("taal")
    window = {}
    for key, names in (("valid_from", ("geldig_vanaf", "valid_from")), ("valid_until", ("geldig_tot", "valid_until"))):
        value = next((meta[n] for n in names if meta.get(n) is not None), None)
        if value is not None:
            window[key] = iso_date(value)
            if window[key] is None:
                warnings.append(f"front matter {key} {value!r} is not a date (expected YYYY-MM-DD); ignored")
                del window[key]
    return [
        LoadedDocument(
            doc_id=doc_id_from_name(name),
            title=meta_title or first_h1 or title or name,
            sections=tuple(sections),
            url=str(meta["url"]).strip() if meta.get("url") else url,
            effective_date=effective_date,
            language=str(language) if language else None,
            warnings=tuple(warnings),
            meta=tuple(window.items()),
        )
    ]


# ---------------------------------------------------------------------------
# Plain text

_FOOTNOTE = re.compile(r"^\(\d+\)")
_BULLET = re.compile(r"^[-*•–·]\s")
_NUMBER_ONLY = re.compile(r"^(\d{1,2}(?:\.\d{1,2})*)([.)]?)$")
_NUMBERED = re.compile(r"^(\d{1,2}(?:\.\d{1,2})*)([.)]?)\s+(\S.*)$")
_MAX_HEADING = 100
_NOTE_REF = re.compile(r"\s*(?:\(\d+\)|\[\d+\])$")
_NUMBER_PREFIX = re.compile(r"^\d{1,2}(?:\.\d{1,2})*[.)]?\s+")


def _title_like(line: str) -> bool:
    """A line short enough to be a heading and not reading like a sentence, a lead-in or a list item."""
    bare = _NOTE_REF.sub("", line)  # "... bestaat. (1)" is a sentence with a footnote reference
    return (
        0 < len(line) <= _MAX_HEADING
        and not bare.endswith((".", ",", ";", ":"))
        and ". " not in _NUMBER_PREFIX.sub("", bare)
        and not _BULLET.match(line)
        and not _FOOTNOTE.match(line)
    )


def _starts_paragraph(line: str) -> bool:
    """Whether a line reads as the start of a paragraph or list, which is what follows a real heading."""
    first = line[0]
    return first.isupper() or first.isdigit() or first in "-*•–·\"'‘“("


def _numbering_style(number: str, closer: str) -> str:
    """The heading style of a number: "1." and "1)" and "1.2" are different levels of a document."""
    return f"num{number.count('.') + 1}{')' if closer == ')' else ''}"


def _plain_headings(blocks: list[list[str]], start: int) -> dict[int, tuple[str, str, int]]:
    """Find heading blocks from ``start`` on: index -> (heading text, style, blocks consumed)."""
    found: dict[int, tuple[str, str, int]] = {}
    index = start
    while index < len(blocks):
        block = blocks[index]
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        if len(block) != 1 or _FOOTNOTE.match(block[0]):
            index += 1
            continue
        line = block[0]
        only_number = _NUMBER_ONLY.match(line)
        if only_number:
            number, closer = only_number.groups()
            # "2." alone on a line with the title on the next non-blank line, as some exports lay it out.
            if (closer or "." in number) and following and len(following) == 1 and _title_like(following[0]):
                if following[0][0].isupper():
                    found[index] = (f"{number}{closer} {following[0]}", _numbering_style(number, closer), 2)
                    index += 2
                    continue
        elif (numbered := _NUMBERED.match(line)) is not None:
            number, closer, rest = numbered.groups()
            # A bare "12 gemeenten ..." is prose; headings carry "1." / "1)" / "1.2".
            if (closer or "." in number) and _title_like(line) and rest[0].isupper() and following is not None:
                found[index] = (line, _numbering_style(number, closer), 1)
        elif (
            _title_like(line)
            and line[0].isupper()
            and following is not None
            and _starts_paragraph(following[0])
            # Two short lines in a row are a title and subtitle, not a heading without text.
            and not (len(following) == 1 and _title_like(following[0]))
        ):
            found[index] = (line, "plain", 1)
        index += 1
    return found


def load_text(data: bytes, *, name: str, url: str | None = None, title: str | None = None) -> list[LoadedDocument]:
    """Load a plain-text document as one document, split at lines that look like headings."""
    text = decode_text(data, name=name)
    blocks: list[list[str]] = [[]]
    for raw in text.split("\n"):
        line = raw.strip()
        if line:
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    if not blocks[-1]:
        blocks.pop()

    # A short first line that is not a numbered heading is the document's own title: it stays in the
    # opening section and never becomes a heading, or every later section would nest under it.
    first = blocks[0][0]
    is_title_line = len(blocks[0]) == 1 and _title_like(first) and not _NUMBERED.match(first)
    title_line = first if is_title_line and not _NUMBER_ONLY.match(first) else None
    headings = _plain_headings(blocks, start=1 if title_line else 0)

    # Levels follow the order in which heading styles first appear, as reStructuredText does:
    # in "1. Aanleiding ... Europa ... 1) Steunpunt" the numbered style is the outer level.
    levels: dict[str, int] = {}
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    current = _Open(heading=None, level=0, path=(), anchor=None, body=[])
    index = 0
    while index < len(blocks):
        if index in headings:
            heading, style, consumed = headings[index]
            _finish(sections, current)
            level = levels.setdefault(style, len(levels) + 1)
            while stack and stack[-1][0] >= level:
                stack.pop()
            current = _Open(heading=heading, level=level, path=tuple(h for _, h in stack), anchor=None, body=[])
            stack.append((level, heading))
            index += consumed
            continue
        current.body.append("\n".join(blocks[index]))
        current.body.append("")
        index += 1
    _finish(sections, current)

    return [
        LoadedDocument(
            doc_id=doc_id_from_name(name),
            title=title or title_line or name,
            sections=tuple(sections),
            url=url,
        )
    ]
