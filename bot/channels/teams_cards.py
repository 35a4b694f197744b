"""Teams message content as plain JSON: Adaptive Cards (1.5) for replies, and Teams' AI citation entities.

No SDK import: the Teams adapter wraps these dicts in its SDK's types, so a replacement SDK can reuse them as they are.

Citation entity shape (Teams "bot messages with AI-generated content"): one ``https://schema.org/Message`` entity
per activity; each ``Claim`` has ``position`` (the [n] marker) and an ``appearance`` ``DigitalDocument`` with
``name`` (max 80 characters), ``abstract`` (max 160) and an optional ``url`` that makes the name a link.

TextBlocks render a Markdown subset, so every text that is not ours (corpus quotes, model output, an expert's answer,
titles, file names) goes through ``markdown_text`` / ``_inline``; the only links in a card are the ones built here
(web citations, signed download links). A local source is named by its title and label, never by its path.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from bot.messages import Action, ActionKind, Citation, Press, Reply
from bot.texts import (EXPERT_HEADING, FILES_HEADING, NO_LINK, SOURCES_HEADING, TOOLTIP_ASK_EXPERT,
                       TOOLTIP_NOT_USEFUL, TOOLTIP_USEFUL, expert_answer_text, link_valid_until)
from escalation.delivery import ExpertAnswer

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.5"
SUBMIT_KEY = "vb"
"""Key in Action.Submit data that marks our own buttons (Teams echoes the data back as the message ``value``)."""

NAME_MAX = 80
ABSTRACT_MAX = 160
_TOOLTIPS = {
    ActionKind.FEEDBACK_UP: TOOLTIP_USEFUL,
    ActionKind.FEEDBACK_DOWN: TOOLTIP_NOT_USEFUL,
    ActionKind.ASK_EXPERT: TOOLTIP_ASK_EXPERT,
}


@dataclass(frozen=True)
class LinkedFile:
    """A file as a card shows it: a signed download link (None when the server has no public address)."""

    name: str
    size_text: str
    note: str | None
    url: str | None
    valid_until: str | None = None
    """Dutch date the link stops working ("15-12-2026")."""

    def markdown(self) -> str:
        """One line: the name as a link, size and note, until when the link works."""
        about = ", ".join(p for p in (self.size_text, self.note) if p)
        if not self.url:
            return f"{_inline(self.name)} ({_inline(about)}): {NO_LINK}."
        until = link_valid_until(self.valid_until) if self.valid_until else ""
        return f"[{_link_text(self.name)}]({_link_url(self.url)}) ({_inline(about)}){until}"

    def plain(self) -> str:
        """The line for clients without cards."""
        about = ", ".join(p for p in (self.size_text, self.note) if p)
        return f"{self.name} ({about}): {self.url or NO_LINK}"


def choice_card(reply: Reply) -> dict[str, Any]:
    """A step of a guided walk: the question, and one button per choice stacked (Teams shows at most a few side by
    side)."""
    card = _card(_text_blocks(reply.text), fallback=reply.text)
    card["actions"] = [submit_action(a) for a in reply.actions if a.kind is ActionKind.CHOICE]
    return card


def needs_card(reply: Reply) -> bool:
    """Replies with sources, files or buttons become a card; everything else is a plain message."""
    return bool(reply.citations or reply.actions or reply.files)


def answer_card(reply: Reply, files: list[LinkedFile] | None = None) -> dict[str, Any]:
    """The reply as an Adaptive Card: answer text with [n] markers, numbered sources with links, the files it
    hands out (``files``: the reply's files with their links), buttons."""
    body = _text_blocks(reply.text)
    if reply.citations:
        body.append({"type": "TextBlock", "text": SOURCES_HEADING, "weight": "Bolder", "wrap": True,
                     "spacing": "Medium", "separator": True})
        body.extend({"type": "TextBlock", "text": source_markdown(c), "wrap": True, "spacing": "Small"}
                    for c in reply.citations)
    body.extend(file_blocks(files or []))
    card = _card(body, fallback=fallback_text(reply, files))
    if reply.actions:
        card["actions"] = [submit_action(a) for a in reply.actions]
    return card


def expert_answer_card(answer: ExpertAnswer, files: list[LinkedFile] | None = None) -> dict[str, Any]:
    """An expert's answer pushed into the conversation later, under a header saying it comes from the expert
    pool, with the expert's attachments as download links."""
    header = {"type": "TextBlock", "text": EXPERT_HEADING, "weight": "Bolder", "size": "Medium",
              "color": "Accent", "wrap": True}
    body = [{"type": "Container", "style": "emphasis", "items": [header]},
            *_text_blocks(expert_answer_text(answer, heading=False)), *file_blocks(files or [])]
    # The fallback has no header: there the text keeps its own heading.
    return _card(body, fallback=expert_answer_text(answer) + _plain_files(files))


def file_blocks(files: list[LinkedFile]) -> list[dict[str, Any]]:
    """A "Bestanden" section with one line per file (nothing when there are none)."""
    if not files:
        return []
    return [{"type": "TextBlock", "text": FILES_HEADING, "weight": "Bolder", "wrap": True, "spacing": "Medium",
             "separator": True},
            *({"type": "TextBlock", "text": f.markdown(), "wrap": True, "spacing": "Small"} for f in files)]


def _plain_files(files: list[LinkedFile] | None) -> str:
    return f"\n\n{FILES_HEADING}:\n" + "\n".join(f.plain() for f in files) if files else ""


def submit_action(action: Action) -> dict[str, Any]:
    """An Action.Submit whose data comes back as the ``value`` of a message activity."""
    if action.kind is ActionKind.CHOICE:
        return {"type": "Action.Submit", "title": action.label,
                "data": {SUBMIT_KEY: "choice", "command": action.command, "reply_id": action.reply_id}}
    if action.kind is ActionKind.ASK_EXPERT:
        data: dict[str, Any] = {SUBMIT_KEY: "expert", "reply_id": action.reply_id}
    else:
        data = {SUBMIT_KEY: "feedback", "up": action.kind is ActionKind.FEEDBACK_UP, "reply_id": action.reply_id}
    return {"type": "Action.Submit", "title": action.label, "tooltip": _TOOLTIPS[action.kind], "data": data}


def parse_submit(value: Any) -> Press | None:
    """The press a submitted card's ``value`` stands for (the inverse of ``submit_action``); None for anything else
    (an old card, or data that is not ours)."""
    if not isinstance(value, dict):
        return None
    kind, reply_id = value.get(SUBMIT_KEY), str(value.get("reply_id") or "")
    if kind == "feedback" and re.fullmatch(r"[0-9a-f]{1,40}", reply_id):
        up = value.get("up") in (True, "true", 1, "1")
        return Press(ActionKind.FEEDBACK_UP if up else ActionKind.FEEDBACK_DOWN, reply_id)
    if kind == "expert":
        return Press(ActionKind.ASK_EXPERT, reply_id if re.fullmatch(r"[0-9a-f]{1,40}", reply_id) else None)
    command = str(value.get("command") or "")
    if kind == "choice" and re.fullmatch(r"/procedure [a-z0-9_-]{1,40}(?: [0-9]{1,2})?", command):
        return Press(ActionKind.CHOICE, command=command)
    return None


def citation_entity(reply: Reply) -> dict[str, Any] | None:
    """Teams' native citations for the reply's [n] markers, or None when nothing is cited."""
    if not reply.citations:
        return None
    claims = []
    for c in reply.citations:
        appearance: dict[str, Any] = {"@type": "DigitalDocument", "name": _cut(c.title, NAME_MAX),
                                      "abstract": _cut(_abstract(c), ABSTRACT_MAX)}
        if _is_web(c.url):
            appearance["url"] = c.url
        claims.append({"@type": "Claim", "position": c.n, "appearance": appearance})
    return {"type": "https://schema.org/Message", "@type": "Message", "@context": "https://schema.org", "@id": "",
            "citation": claims}


def fallback_text(reply: Reply, files: list[LinkedFile] | None = None) -> str:
    """The reply as plain text, with its sources and files, for clients that cannot show cards (and notifications)."""
    text = reply.text
    if reply.citations:
        text += f"\n\n{SOURCES_HEADING}:\n" + "\n".join(source_plain(c) for c in reply.citations)
    return text + _plain_files(files)


def source_plain(c: Citation) -> str:
    """One source line in plain text: marker, title, label, date, and the address only of a web source (a local
    source's path is the maintainer's disk, not something to show an officer)."""
    parts = [c.title, c.label, c.date_text, c.url if _is_web(c.url) else None]
    return f"[{c.n}] " + " — ".join(p for p in parts if p)


def source_markdown(c: Citation) -> str:
    """One source line: the marker, the title (a link for web sources), the label and the effective date."""
    name = " — ".join(p for p in (c.title, c.label) if p)
    shown = f"[{_link_text(name)}]({_link_url(c.url)})" if _is_web(c.url) else _inline(name)
    when = f" ({c.date_text})" if c.date_text else ""
    return f"[{c.n}] {shown}{when}"


# -- Markdown in TextBlocks -----------------------------------------------------------------------------------
# A TextBlock renders a CommonMark subset (bold, italic, lists, links), and some Teams clients also link raw URLs.
# Text that is not ours must read the same and format nothing (docs/TEAMS.md, "Markdown in cards"):
# - Links and blocks are broken with an invisible U+2060 WORD JOINER, which no renderer takes for markup, so this
#   holds even in a client that ignores backslash escapes: between "]" and "(" (links, images); after "<" before a
#   letter, "/", "!" or "?" (autolinks, HTML); after "scheme:" before "//" and after "www" (raw URLs); and in front
#   of a line that would start a block or define a link: "#", ">", "- ", "+ ", "* ", "1. ", "1) ", "---", "[x]:".
# - Inline formatting can only be escaped: a CommonMark backslash before "*", "`", "~", "_" (not inside a word,
#   where "_" cannot emphasise: model_2024.docx stays as it is), "&" of an entity, and a backslash before
#   punctuation. Prose without these characters carries no backslash at all.
# Bare domain names and e-mail addresses are left alone: a client that links them shows where they lead.

WORD_JOINER = "\u2060"
_BLOCK_START = re.compile(r"#|>|[-+*](?:\s|$)|\d{1,9}[.)](?:\s|$)|-{3,}|\[[^\]]*\]:")
_URL_SCHEME = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}:(?=//)")
_WWW = re.compile(r"(?<![\w.])(www)(?=\.)", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_TAG_OR_AUTOLINK = re.compile(r"[A-Za-z/!?]")
_PUNCTUATION = frozenset(string.punctuation)


def markdown_text(line: str) -> str:
    """One line of untrusted text for a TextBlock: shown as written, without links or formatting."""
    line = line.strip()  # indentation would make a code block; a TextBlock shows none anyway
    return (WORD_JOINER if _BLOCK_START.match(line) else "") + _inline(line)


def _inline(text: str) -> str:
    """Untrusted text inside a line (a title, a file name): escaped as the comment above says."""
    text = " ".join(text.split())  # a line break inside a title or file name would start a new Markdown line
    out = []
    for i, ch in enumerate(text):
        before = text[i - 1] if i else ""
        after = text[i + 1] if i + 1 < len(text) else ""
        if (ch in "*`~" or (ch == "\\" and after in _PUNCTUATION) or (ch == "&" and _ENTITY.match(text, i))
                or (ch == "_" and not (before.isalnum() and after.isalnum()))):
            out.append("\\" + ch)
        elif (ch == "]" and after == "(") or (ch == "<" and _TAG_OR_AUTOLINK.match(after)):
            out.append(ch + WORD_JOINER)
        else:
            out.append(ch)
    escaped = _URL_SCHEME.sub(lambda m: m.group(0) + WORD_JOINER, "".join(out))
    return _WWW.sub(lambda m: m.group(1) + WORD_JOINER, escaped)


def _card(body: list[dict[str, Any]], *, fallback: str) -> dict[str, Any]:
    return {"type": "AdaptiveCard", "$schema": CARD_SCHEMA, "version": CARD_VERSION, "msteams": {"width": "Full"},
            "fallbackText": fallback, "body": body}


def _text_blocks(text: str) -> list[dict[str, Any]]:
    # One TextBlock per line: Teams' card markdown does not reliably turn a single newline into a line break.
    blocks: list[dict[str, Any]] = []
    new_paragraph = False
    for line in text.splitlines():
        if not line.strip():
            new_paragraph = True
            continue
        block: dict[str, Any] = {"type": "TextBlock", "text": markdown_text(line), "wrap": True}
        if blocks:
            block["spacing"] = "Medium" if new_paragraph else "Small"
        blocks.append(block)
        new_paragraph = False
    return blocks


def _abstract(c: Citation) -> str:
    parts = [c.label, c.date_text]
    return " — ".join(p for p in parts if p) or c.title


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _is_web(url: str | None) -> bool:
    return bool(url) and url.lower().startswith(("https://", "http://"))


def _link_text(text: str) -> str:
    # Brackets inside a markdown link text would end the link early; the rest is escaped like any untrusted text.
    return _inline(text.replace("[", "(").replace("]", ")"))


def _link_url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
