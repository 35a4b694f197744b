"""Extractive answers: the unit that answers best, quoted as whole sentences in their order, and "zie ook" lines.

Fully offline and unable to invent anything: every word shown is quoted from a retrieved chunk, and every [n]
points at the hit it came from. A quote never starts or ends in the middle of a sentence; a sentence that
introduces a list keeps its list, and numbered paragraphs ("§ 1.", "1°", "a)") keep their numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.evidence import covered, topic_tokens
from retrieval.lexical import analyse
from retrieval.types import SearchHit

MAX_QUOTE_CHARS = 1200
"""About two screens on a phone (an article with a few paragraphs): longer units are cut at a block boundary, marked
with "…"."""
MAX_SEE_ALSO = 2
RELATIVE_SCORE_FLOOR = 0.6
"""Another hit is listed under "Zie ook" only when its score is at least this share of the best hit's."""

_LOWER_CASE_END = r"|(?<=[^\W\d_]{4}[.!?])\s+(?=[a-z])|(?<=\)[.!?])\s+(?=[a-z])"
_SPLIT = re.compile(r"(?<=[.;!?])\s+(?=[A-Z0-9\u00c0-\u017f(\"'«])" + _LOWER_CASE_END)
_SPLIT_FULL_STOPS = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\u00c0-\u017f(\"'«])" + _LOWER_CASE_END)
"""After ".", "!" or "?" (and ";"): before a capital, a digit or a quote; before a lower-case letter only after a
word of four letters or more or a closing bracket, so a text written in lower case (records exported that way)
still splits while "o.a. de" or "nr. 3" do not (abbreviations of four letters or more are glued back by
``_ABBREVIATION``)."""
_ABBREVIATION = re.compile(
    r"\b(art|artt|nr|bv|vb|vgl|o\.a|m\.a\.w|z\.n|bijv|resp|blz|p|al|lid|jo|excl|incl|ca|min|max"
    r"|stb|stcrt|trb|b\.s|k\.b)\.$", re.IGNORECASE)
"""Words a full stop does not end a sentence after; the last five are the official journals a statute cites
("Trb. 1981, 239", "Stb. 2012", "B.S. 14 juli 2016") and a royal decree ("K.B.")."""
_MARKDOWN = re.compile(r"\*\*|__|`")
_HEADING_LINE = re.compile(r"^(#+\s|art(ikel|\.)\s*[\w./]+\.?$|art\.\s*[\w./]+\s*\(vervolg\)$)", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^\s*(?:(?P<bullet>[-*•])\s+|(?:(?P<ordinal>\d+°\.?)|(?P<letter>[a-z][.)])"
                        r"|(?P<number>\d+[.)])|(?P<section>§\s*\d+\.?))\s+)")
_MARKER_KINDS = {"bullet": "•", "ordinal": "°", "letter": "a", "number": "1", "section": "§"}
"""The ``Block.marker`` of a list item, by the group of ``_LIST_ITEM`` its number or bullet matched."""
_BULLET = re.compile(r"^\s*[-*•]\s+")
_QUOTE_LINE = re.compile(r"^\s*>\s?")


@dataclass(frozen=True)
class Block:
    """A piece of a passage that is shown whole: a sentence, or a list item."""

    text: str
    paragraph: int
    """Blocks of one paragraph are joined with a space, others start a new line."""
    item: bool = False
    introduces: bool = False
    """A sentence ending in ":" that the next list items belong to."""
    marker: str = ""
    """An item's kind of number: "1" (1. 2.), "a" (a. b.), "°" (1° 2°), "§" or "•"."""


def blocks(text: str, *, headings: Sequence[str] = ()) -> list[Block]:
    """The passage as sentences and list items in their order, without headings or markup."""
    skip = {h.strip().lower() for h in headings if h}
    out: list[Block] = []
    for paragraph, raw in enumerate(text.splitlines()):
        line = _MARKDOWN.sub("", _QUOTE_LINE.sub("", raw)).strip()
        if not line or line.lstrip("#").strip().lower() in skip or _HEADING_LINE.match(line):
            continue
        numbered = _LIST_ITEM.match(line)
        if numbered:
            out.append(Block(_BULLET.sub("• ", line), paragraph, item=True, introduces=line.endswith(":"),
                             marker=_MARKER_KINDS[numbered.lastgroup]))
            continue
        continues = out and line[0].islower() and not out[-1].text.endswith((".", "!", "?", ":", ";"))
        if continues and out[-1].item:
            # The rest of a list point after a line break ("b. ... een inschrijving hebben ingediend,\nmits ..."):
            # it stays one point.
            last = out.pop()
            out.append(Block(f"{last.text} {line}", last.paragraph, item=True, introduces=line.endswith(":"),
                             marker=last.marker))
            continue
        sentences = split_sentences(line)
        if continues:
            # A line that goes on with the sentence before it (records split mid-sentence): one block.
            last = out.pop()
            sentences[0] = f"{last.text} {sentences[0]}"
            paragraph = last.paragraph
        for sentence in sentences:
            out.append(Block(sentence, paragraph, introduces=sentence.endswith(":")))
    return out


def split_sentences(line: str, *, semicolons: bool = True) -> list[str]:
    """The sentences of one line of text, in order; "art. 40" and the like do not end a sentence."""
    groups: list[list[str]] = []
    for part in (_SPLIT if semicolons else _SPLIT_FULL_STOPS).split(line):
        # "art. 40" or "nr. 3" is not the end of a sentence: glue the pieces back together (joined once at the end,
        # so a line of many abbreviations stays linear).
        if groups and _ends_with_abbreviation(groups[-1][-1]):
            groups[-1].append(part)
        else:
            groups.append([part])
    pieces = (" ".join(group).strip() for group in groups)
    return [p for p in pieces if p]


def _ends_with_abbreviation(text: str) -> bool:
    """Whether ``text`` ends with one of ``_ABBREVIATION`` (only its end is read: the longest abbreviation with its
    full stop is 6 characters, so the word boundary before it lies inside the last 12)."""
    return _ABBREVIATION.search(text[-12:]) is not None


def _score(text: str, weights: dict[str, float]) -> float:
    """How much of what was asked the block says: the weight of the question's terms it contains.

    Not divided by the block's length: a short sentence that repeats two of the question's words would beat the
    long one that states the rule (lid 1 of an article, whose list is one block in records without line breaks),
    and the quote's length is bounded anyway. Only the part that can be shown counts: a long annex that names the
    question's words at its end does not win with a quote that lacks them."""
    tokens = set(analyse(text[:MAX_QUOTE_CHARS]))
    return sum(w for t, w in weights.items() if t in tokens)


def _window(parts: list[Block], weights: dict[str, float], *, anchor: range | None = None
            ) -> tuple[int, int, int | None]:
    """[start, end) of the blocks to quote: all when they fit, else from the best-matching block onwards (within
    ``anchor``, the blocks of the passage the search matched, when given); and the introduction of its list when
    that lies before the window (shown first, then "…")."""
    if sum(len(b.text) + 1 for b in parts) <= MAX_QUOTE_CHARS:
        return 0, len(parts), None
    scores = [_score(b.text, weights) for b in parts]
    candidates = anchor if anchor else range(len(parts))
    best = max(candidates, key=lambda i: (scores[i], -i))

    def size(first: int) -> int:
        return sum(len(b.text) + 1 for b in parts[first:best + 1])

    start, intro = best, None
    # A list item is read with the sentence that introduces its list, with the items between when they fit; an
    # introduction that is itself an item ("2. Een organisatie voldoet aan de volgende voorwaarden:", "a. ... die
    # aan de volgende criteria voldoen:") is read with its own introduction in turn. One that does not fit is shown
    # before the window, with "…" between.
    while parts[start].item:
        head = _introduction(parts, start)
        if head is None:
            break
        if size(head) > MAX_QUOTE_CHARS * 0.6:
            # Shown before the window with "…" between, when there is room for it beside the point itself.
            if len(parts[head].text) + len(parts[start].text) <= MAX_QUOTE_CHARS:
                intro = head
            break
        start = head

    # Begin at the start of the paragraph while that leaves room for what follows: it reads better whole.
    while (start > 0 and not parts[start].item and parts[start - 1].paragraph == parts[start].paragraph
           and size(start - 1) <= MAX_QUOTE_CHARS * 0.6):
        start -= 1
    # An introduction shown before the window ("…" between) takes its share of the room.
    end, total = start, _intro_size(parts, intro)
    while end < len(parts) and (end == start or total + len(parts[end].text) + 1 <= MAX_QUOTE_CHARS):
        total += len(parts[end].text) + 1
        end += 1
    # An introduction is never the last thing shown without its list.
    while end - start > 1 and parts[end - 1].introduces:
        end -= 1
    return start, end, intro


def _intro_size(parts: list[Block], intro: int | None) -> int:
    """The room an introduction shown before the window takes (its line and the "…" line after it)."""
    return len(parts[intro].text) + 2 if intro is not None else 0


def _introduction(parts: list[Block], item: int) -> int | None:
    """The block that introduces the list ``item`` belongs to, if any.

    Paragraph numbers ("§ 1.", then "1." unless the first one follows an introduction) are the outer levels; other
    kinds of number nest in the order they first appear in the unit ("a." then "1°" in a Netherlands act, "1°" then
    "a)" in a Belgian one). Walking back, deeper
    items and siblings are passed over, even those that introduce points of their own, and so is text in lower case
    that introduces nothing (a point that went on after a line break). The first other block is the introduction
    when it ends in ":" and the first item after it is of this list's kind; otherwise there is none (lid 3 is not a
    point of the list lid 1 introduces)."""
    # "1." is a paragraph number unless the unit's first one follows an introduction: then "1)", "2)" are points.
    first_number = next((i for i, b in enumerate(parts) if b.item and b.marker == "1"), None)
    numbered_points = first_number is not None and first_number > 0 and parts[first_number - 1].introduces
    depth: dict[str, int] = {"§": 0} if numbered_points else {"§": 0, "1": 1}
    for block in parts:
        if block.item:
            depth.setdefault(block.marker, len(depth))
    kind = parts[item].marker
    level = depth[kind]
    for i in range(item - 1, -1, -1):
        block = parts[i]
        if block.item and depth[block.marker] >= level:
            continue  # a deeper point or a sibling
        if not block.item and not block.introduces and block.text[:1].islower():
            continue  # the rest of a point that went on after a line break
        first = next((b for b in parts[i + 1:item + 1] if b.item), None)
        return i if block.introduces and first is not None and first.marker == kind else None
    return None


def quote(hit: SearchHit, question: str, *, context: str = "", from_start: bool = False) -> str:
    """Whole sentences and list items of the hit's passage, in order; "…" where the passage goes on.

    ``from_start``: the unit as a whole answers (its heading asks the question), so a long one is quoted from its
    beginning rather than from the passage that matched best (step 1 of a procedure, not step 3).
    """
    passage = hit.passage
    # The whole unit, so an article is read with all its paragraphs; the window then centres on what matched.
    chunks = list(hit.unit) or [passage]
    headings = [passage.label or "", *passage.heading_path, passage.title]
    before = next((i for i, c in enumerate(chunks) if c.id == passage.id), None)
    parts = blocks("\n".join(c.text for c in chunks), headings=headings)
    anchor = None
    if before is not None and len(chunks) > 1:
        # The blocks of the passage the search matched: the quote starts there, not at a row that merely shares
        # more of the question's words.
        first = len(blocks("\n".join(c.text for c in chunks[:before]), headings=headings)) if before else 0
        # Counted per piece, a line continued across rows can make it one block more: clamp to what is there.
        anchor = range(min(first, len(parts)), min(first + len(blocks(passage.text, headings=headings)), len(parts)))
    if not parts:  # nothing but headings: show what there is rather than an empty quote
        text = " ".join(passage.text.split())
        return text if len(text) <= MAX_QUOTE_CHARS else _cut(text)
    weights = {t: 1.0 for t in analyse(question)}
    for t in analyse(context):
        weights.setdefault(t, 0.3)
    start, end, intro = _window(parts, weights, anchor=range(0, 1) if from_start else anchor)
    shown = parts[start:end]
    # A sentence too long for the room left is shown up to the end of a list point when that fills the room well
    # (a rule whose conditions follow "indien:" as one long sentence), rather than stopping before it.
    used = sum(len(b.text) + 1 for b in shown) + _intro_size(parts, intro)
    tail = _clause_head(parts[end].text, MAX_QUOTE_CHARS - used) \
        if end < len(parts) else None
    if tail is not None:
        shown = [*shown, Block(tail, parts[end].paragraph, item=parts[end].item)]
    lines: list[str] = []
    for i, block in enumerate(shown):
        text = block.text
        if len(text) > MAX_QUOTE_CHARS:  # one enormous sentence: cut where a clause ends, else between words
            text = _cut(text)
        if i and not block.item and not shown[i - 1].item and block.paragraph == shown[i - 1].paragraph:
            lines[-1] += " " + text
        else:
            lines.append(text)
    if intro is not None:
        lines[:0] = [parts[intro].text, "…"] if intro + 1 < start else [parts[intro].text]
    elif start > 0:
        lines[0] = "… " + lines[0]
    if end < len(parts) and not lines[-1].endswith("…"):
        lines[-1] += " …"
    return "\n".join(lines)


_CLAUSE_END = re.compile(r"[;:](?=\s)")


def _clause_head(text: str, room: int) -> str | None:
    """The first list points of a sentence too long for the room left, up to its last ";" that fits, when they
    fill at least a quarter of the quote; else None (the quote ends before the sentence)."""
    cut = text[:max(room, 0)].rfind("; ")
    return text[:cut + 1] + " …" if cut + 1 >= MAX_QUOTE_CHARS // 4 else None


def _cut(text: str) -> str:
    """A sentence too long to show whole, cut after its last ";" or ":" within the limit (the end of a list
    point in an article), else after its last whole word, and marked with "…"."""
    head = text[:MAX_QUOTE_CHARS]
    ends = [m.end() for m in _CLAUSE_END.finditer(head)]
    if ends and ends[-1] >= MAX_QUOTE_CHARS // 2:
        return head[:ends[-1]] + " …"
    return head.rsplit(" ", 1)[0] + " …"


@dataclass(frozen=True)
class ExtractiveAnswer:
    """The lead hit with its quote, and the other hits worth a look, in citation order."""

    quote: str
    sources: tuple[SearchHit, ...]
    """The lead first ([1]), then the "zie ook" hits ([2], [3])."""


def compose(question: str, hits: Sequence[SearchHit], *, probabilities: Sequence[float] = (),
            context: str = "") -> ExtractiveAnswer:
    """Lead with the hit most likely to answer (``probabilities`` per hit, else the first), quote it, and add the
    other relevant hits as references."""
    if not hits:
        return ExtractiveAnswer("", ())
    judged = list(probabilities)[: len(hits)] or [0.0]
    asked = set(topic_tokens(question))

    def heading_asks(hit: SearchHit) -> bool:
        # A section or FAQ entry whose heading asks the question is the answer an officer looks for first.
        # Through the terminology: "Quand puis-je recourir à un partenariat d'innovation ?" asks the heading
        # "Wanneer mag ik een innovatiepartnerschap gebruiken?".
        heading = set(analyse(" ".join([hit.passage.label or "", *hit.passage.heading_path[-1:]])))
        return bool(asked) and len(covered(list(asked), heading)) >= 0.75 * len(asked)

    top = max(h.score for h in hits) or 1.0
    # Every hit the search returned may lead when its heading asks the question (the FAQ entry that is the
    # question is often fourth or fifth: its short answer shares fewer words than the long sections around it);
    # otherwise the judged hit most likely to answer leads.
    asking = [i for i, h in enumerate(hits)
              if (i < len(judged) or h.score >= RELATIVE_SCORE_FLOOR * top) and heading_asks(h)]
    lead_index = max(asking or range(len(judged)),
                     key=lambda i: (judged[i] if i < len(judged) else 0.0, -i))
    lead = hits[lead_index]
    others = [h for i, h in enumerate(hits[:MAX_SEE_ALSO + 1])
              if i != lead_index and h.score >= RELATIVE_SCORE_FLOOR * top][:MAX_SEE_ALSO]
    # A unit whose heading asks the question answers it from its first line: quote from there.
    return ExtractiveAnswer(quote(lead, question, context=context, from_start=bool(asking)), (lead, *others))
