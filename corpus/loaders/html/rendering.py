"""Turning lxml elements into lines of text, shared by every HTML reader.

A reader subclasses ``TextRenderer`` and overrides ``handle`` to drop markup or to put marker lines
(``MARK`` + a value) among the text lines; ``split_marks`` then cuts the lines at those markers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import lxml.html

_WHITESPACE = re.compile(r"\s+")
MARK = "\x00"
"""Starts a marker line that a renderer puts among the text lines (control characters are removed from input)."""
_BLOCK_TAGS = frozenset(
    "address article aside blockquote body caption center dd details dir div dl dt fieldset figcaption figure "
    "form h1 h2 h3 h4 h5 h6 hr html legend li main menu ol p pre section summary table tbody tfoot thead tr "
    "txt_te ul".split()
)
SKIP_TAGS = frozenset("script style noscript template head title meta link svg iframe object button select".split())


def clean(text: str) -> str:
    """Collapse whitespace, NBSP included, to single spaces."""
    return _WHITESPACE.sub(" ", text).strip()


def element_text(el: lxml.html.HtmlElement) -> str:
    """The visible text of one element on a single line."""
    return clean(" ".join(TextRenderer().render(el)))


class TextRenderer:
    """Renders an element tree as plain text lines: block elements and ``<br>`` end a line."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._parts: list[str] = []
        self._stopped = False

    def render(self, el: lxml.html.HtmlElement) -> list[str]:
        """Render ``el`` and everything inside it; returns the lines collected so far."""
        self.walk(el)
        self.end_line()
        self.lines = _join_labels(self.lines)
        return self.lines

    def end_line(self) -> None:
        """Close the line being built (empty lines are dropped)."""
        if self._parts:
            line = clean("".join(self._parts))
            self._parts.clear()
            if line:
                self.lines.append(line)

    def add(self, text: str | None) -> None:
        """Append inline text to the current line."""
        if text and not self._stopped:
            self._parts.append(text)

    def mark(self, value: str) -> None:
        """Insert a marker line (see ``MARK``) at the current position."""
        self.end_line()
        self.lines.append(MARK + value)

    def stop(self) -> None:
        """Ignore everything after this point."""
        self.end_line()
        self._stopped = True

    def handle(self, el: lxml.html.HtmlElement, tag: str) -> bool:
        """Hook for subclasses: return True when ``el`` was fully handled (its tail is still added)."""
        return False

    def walk(self, el: lxml.html.HtmlElement) -> None:
        """Render one element and its children (not its tail)."""
        if self._stopped or not isinstance(el.tag, str):
            return  # comments and processing instructions: their tail is added by the parent
        tag = el.tag.lower()
        if tag in SKIP_TAGS or self.handle(el, tag):
            return
        if tag == "br":
            self.end_line()
            return
        if tag == "table":
            self._table(el)
            return
        block = tag in _BLOCK_TAGS
        if block:
            self.end_line()
        if tag == "li":
            parent = el.getparent()
            self.add("- " if parent is None or parent.tag != "ol" else f"{parent.index(el) + 1}. ")
        self.add(el.text)
        for child in el:
            self.walk(child)
            self.add(child.tail)
        if block:
            self.end_line()
        elif tag in ("td", "th"):
            self.add(" ")

    def _table(self, table: lxml.html.HtmlElement) -> None:
        """Render a table row by row; a row with a short label cell ("(a)", "1.") becomes "(a) text"."""
        self.end_line()
        for row in table.xpath("./tr | ./thead/tr | ./tbody/tr | ./tfoot/tr"):
            cells = [lines for lines in (self._cell(cell) for cell in row.xpath("./td | ./th")) if lines]
            if not cells:
                continue
            labels = cells[:-1]
            if labels and all(len(c) == 1 and _CELL_LABEL.fullmatch(c[0]) for c in labels):
                last = cells[-1]
                self.lines.append(" ".join(c[0] for c in labels) + " " + last[0])
                self.lines.extend(last[1:])
            elif len(cells) > 1 and all(len(c) == 1 and not c[0].startswith(MARK) for c in cells):
                self.lines.append(" | ".join(c[0] for c in cells))
            else:
                for c in cells:
                    self.lines.extend(c)

    def _cell(self, cell: lxml.html.HtmlElement) -> list[str]:
        """Render one table cell into its own lines, keeping the renderer's hooks and state."""
        saved_lines, saved_parts = self.lines, self._parts
        self.lines, self._parts = [], []
        try:
            self.walk(cell)
            self.end_line()
            return self.lines
        finally:
            self.lines, self._parts = saved_lines, saved_parts


# A point label printed apart from its text: in its own table cell, or its own line (consolidated EUR-Lex).
_LONE_LABEL = re.compile(r"(?:\(?[0-9]{1,3}[a-z]?[.)°]|\(?[a-z]{1,2}\)|\([ivxlc]{1,6}\)|[—–•-])")
_CELL_LABEL = re.compile(r"\(?(?:\d{1,3}(?:\.\d{1,3})*|[a-z]{1,2}|[ivxlc]{1,6}|[A-Z])[.)°]?\)?|[—–•-]")


def _join_labels(lines: list[str]) -> list[str]:
    """Join a lone point label ("1.", "(a)", "—") to the line after it, as printed on the page."""
    joined: list[str] = []
    for line in lines:
        if joined and _LONE_LABEL.fullmatch(joined[-1]) and not line.startswith(MARK):
            joined[-1] = f"{joined[-1]} {line}"
        else:
            joined.append(line)
    return joined


def split_marks(lines: Iterable[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Split rendered lines at marker lines: (lines before the first marker, [(marker, lines after it)])."""
    before: list[str] = []
    segments: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith(MARK):
            segments.append((line[1:], []))
        elif segments:
            segments[-1][1].append(line)
        else:
            before.append(line)
    return before, segments


def class_names(el: lxml.html.HtmlElement) -> list[str]:
    """The element's CSS classes."""
    return (el.get("class") or "").split()


def has_class(name: str) -> str:
    """XPath predicate body that tests for one CSS class."""
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"
