"""Telegram rendering: replies as Telegram HTML messages within its limits, and the payload of a button.

Pure functions of neutral types (no I/O, no python-telegram-bot): tested without Telegram, like ``teams_cards.py``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from bot.messages import ActionKind, Citation, FileOffer, Reply
from bot.texts import SOURCES_HEADING, file_gone

MAX_MESSAGE_CHARS = 4096
"""Telegram's limit per message; we count the HTML source in UTF-16 units, which is never less than Telegram does."""
MAX_CALLBACK_BYTES = 64


# -- messages ---------------------------------------------------------------------------------------------------

def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def render_reply(reply: Reply, *, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """A reply as Telegram HTML messages: escaped text, then the numbered sources in an expandable blockquote."""
    blocks = _text_blocks(reply.text, limit)
    if reply.citations:
        blocks.extend(_source_blocks(reply.citations, limit))
    return _pack(blocks, limit, "\n\n")


def render_text(text: str, *, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """A plain Dutch text (an expert answer) as Telegram HTML messages, its first paragraph in bold.

    Telegram counts a message after parsing the HTML, so a text of up to ``limit`` characters is one message
    however many ``&`` or ``<`` it escapes to: an expert answer then reaches the chat whole or not at all.
    """
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    if paragraphs and utf16_len("\n\n".join(paragraphs)) <= limit:
        escaped = [_escape(p) for p in paragraphs]
        escaped[0] = f"<b>{escaped[0]}</b>"
        return ["\n\n".join(escaped)]
    blocks = _text_blocks(text, limit)
    if blocks and utf16_len(blocks[0]) + 7 <= limit:
        blocks[0] = f"<b>{blocks[0]}</b>"
    return _pack(blocks, limit, "\n\n")


def render_plain(text: str, *, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """A plain text (one of the channel's own) as escaped Telegram HTML messages, cut between paragraphs first."""
    return _pack(_text_blocks(text, limit), limit, "\n\n")


def source_line(citation: Citation) -> str:
    """One source as HTML: a link when the source is on the web, escaped text otherwise."""
    name = " — ".join(p for p in (citation.title, citation.label) if p)
    url = citation.url or ""
    if re.match(r"^https?://", url, re.IGNORECASE):
        shown = f'<a href="{html.escape(url, quote=True)}">{html.escape(name, quote=False)}</a>'
    else:
        shown = html.escape(name, quote=False)
    date = f", {html.escape(citation.date_text, quote=False)}" if citation.date_text else ""
    return f"[{citation.n}] {shown}{date}"


def render_file_caption(offer: FileOffer) -> str:
    """The caption of a document as HTML: its note and size."""
    return html.escape(f"{offer.note} ({offer.size_text})" if offer.note else offer.size_text)


def render_file_gone(offer: FileOffer) -> str:
    """The message sent instead of a file that is no longer on disk, as HTML."""
    return html.escape(file_gone(offer.name))


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _text_blocks(text: str, limit: int) -> list[str]:
    """Escaped paragraphs, each within ``limit``; a paragraph too long is cut at lines, a line too long at spaces."""
    blocks: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        paragraph = paragraph.strip("\n")
        if not paragraph.strip():
            continue
        escaped = _escape(paragraph)
        if utf16_len(escaped) <= limit:
            blocks.append(escaped)
            continue
        lines: list[str] = []
        for line in paragraph.split("\n"):
            lines.extend(_cut_line(line, limit))
        blocks.extend(_pack(lines, limit, "\n"))
    return blocks


def _cut_line(line: str, limit: int) -> list[str]:
    """A line as escaped pieces within ``limit``, cut in the plain text (never inside an entity), at a space if any."""
    pieces = []
    rest = line
    while rest:
        if utf16_len(_escape(rest)) <= limit:
            pieces.append(_escape(rest))
            break
        low, high = 1, len(rest)  # the longest prefix whose escaped form fits
        while low < high:
            mid = (low + high + 1) // 2
            if utf16_len(_escape(rest[:mid])) <= limit:
                low = mid
            else:
                high = mid - 1
        cut = low
        space = rest.rfind(" ", 0, cut)
        if space > cut // 2:
            cut = space
        pieces.append(_escape(rest[:cut].rstrip()))
        rest = rest[cut:].lstrip()
    return pieces


def _source_blocks(citations: tuple[Citation, ...], limit: int) -> list[str]:
    head, open_, close = f"<b>{SOURCES_HEADING}</b>\n", "<blockquote expandable>", "</blockquote>"
    overhead = utf16_len(head + open_ + close)
    lines = []
    for citation in citations:
        line = source_line(citation)
        if utf16_len(line) + overhead > limit:  # a source name of thousands of characters: show it without a link
            line = _cut_line(f"[{citation.n}] {citation.title}", limit - overhead)[0]
        lines.append(line)
    groups = _pack(lines, limit - overhead, "\n")
    return [(head if i == 0 else "") + open_ + group + close for i, group in enumerate(groups)]


def _pack(blocks: list[str], limit: int, sep: str) -> list[str]:
    """Join self-contained HTML blocks into as few messages as fit; a block is never split."""
    parts: list[str] = []
    current = ""
    for block in blocks:
        candidate = block if not current else current + sep + block
        if utf16_len(candidate) <= limit:
            current = candidate
        else:
            if current:
                parts.append(current)
            current = block
    if current:
        parts.append(current)
    return parts


# -- buttons ----------------------------------------------------------------------------------------------------

def callback_data(kind: ActionKind, reply_id: str, command: str | None = None, owner: int | None = None) -> str:
    """The button payload: ids only, so it fits Telegram's 64 bytes and survives a restart. A choice in a guided
    walk carries its command ("/procedure markt 2" as "pr:markt 2"), in a group with the walker's user id first
    ("pr:1001:markt 2"): a colleague's press must not answer, nor take away, another officer's buttons."""
    if kind is ActionKind.CHOICE:
        data = "pr:" + (f"{owner}:" if owner is not None else "") + (command or "").removeprefix("/procedure ")
    else:
        prefix = {ActionKind.FEEDBACK_UP: "fb:+:", ActionKind.FEEDBACK_DOWN: "fb:-:", ActionKind.ASK_EXPERT: "ex:"}
        data = prefix[kind] + reply_id
    if len(data.encode()) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data too long for Telegram: {len(data.encode())} bytes")
    return data


@dataclass(frozen=True)
class ButtonPress:
    """What a button's callback data stands for: a vote or "Vraag een expert" on a reply, or a walk's choice."""

    kind: ActionKind
    reply_id: str | None = None
    command: str | None = None
    """The text a CHOICE sends back, as if typed ("/procedure markt 2")."""
    owner: int | None = None
    """The officer whose walk it is, for a CHOICE in a group."""


def parse_callback_data(data: str | None) -> ButtonPress | None:
    """The press a payload of ``callback_data`` stands for; None for anything else (an old or forged button)."""
    choice = re.fullmatch(r"pr:(?:(?P<owner>[0-9]{1,20}):)?(?P<command>[a-z0-9_-]{1,40}(?: [0-9]{1,2})?)",
                          data or "")
    if choice is not None:
        owner = int(choice["owner"]) if choice["owner"] is not None else None
        return ButtonPress(ActionKind.CHOICE, command=f"/procedure {choice['command']}", owner=owner)
    match = re.fullmatch(r"(fb:(?P<vote>[+-])|ex):(?P<reply>[0-9a-f]{1,40})", data or "")
    if match is None:
        return None
    kind = {"+": ActionKind.FEEDBACK_UP, "-": ActionKind.FEEDBACK_DOWN, None: ActionKind.ASK_EXPERT}[match["vote"]]
    return ButtonPress(kind, reply_id=match["reply"])


def is_expert_button(data: str | None) -> bool:
    """Whether a button's payload is a "Vraag een expert" (the button that stays after a vote)."""
    return (data or "").startswith("ex:")


def keyboard_rows(reply: Reply, *, owner: int | None = None) -> list[list[tuple[str, str]]]:
    """The buttons under a reply as rows of (label, callback data): 👍 / 👎 on one row and "Vraag een expert"
    below, for the actions the reply offers; the choices of a guided walk one per row (bound to ``owner`` in a
    group). No rows: no keyboard."""
    feedback = [(a.label, callback_data(a.kind, a.reply_id)) for a in reply.actions
                if a.kind in (ActionKind.FEEDBACK_UP, ActionKind.FEEDBACK_DOWN)]
    expert = [(a.label, callback_data(a.kind, a.reply_id)) for a in reply.actions if a.kind is ActionKind.ASK_EXPERT]
    choices = [[(a.label, callback_data(a.kind, a.reply_id, a.command, owner))]
               for a in reply.actions if a.kind is ActionKind.CHOICE]
    return [row for row in (feedback, expert) if row] + choices
