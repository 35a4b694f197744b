"""Generated answers through an OpenAI-compatible chat endpoint, checked sentence by sentence against the sources.

The model only rewrites what the retrieved passages say; the caller keeps the extractive answer as a fallback,
so any failure here (endpoint down, garbage, no valid citation, "weet ik niet") returns None instead of raising.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

from retrieval import claims
from common.errors import ConfigError
from retrieval.errors import RetrievalError
from retrieval.types import SearchHit

logger = logging.getLogger(__name__)

PROMPT_PATH = Path(__file__).resolve().parent / "prompts" / "answer_nl.txt"
MAX_PROMPT_HITS = 5
MAX_PASSAGE_CHARS = 1200
DONT_KNOW = "weet ik niet"
"""Part of the prompt's fixed refusal ("Dat weet ik niet op basis van de bronnen."): the caller falls back."""

_SECTION = re.compile(r"^=== (system|human) ===[ \t]*$", re.MULTILINE)
_NUMBER = re.compile(r"\d+")
_REMOVED = "\x00"
# A run of removed markers with the spaces around it: replaced as one, so "zin [7] [9]." becomes "zin.".
_GAP = re.compile(r"[ \t]*\x00(?:[ \t]*\x00)*[ \t]*")
_CLOSING = set(".,;:!?)]}»\"'…")


def validate_markers(text: str, n_sources: int) -> tuple[str, list[int]]:
    """Drop markers outside 1..n_sources and renumber the rest by first appearance.

    Returns the cleaned text, whose markers run 1..m, and the original (1-based) source numbers in their new order,
    so ``sources[k - 1]`` is the original number of the new marker ``[k]``.
    """
    order: list[int] = []

    def replace(match: re.Match[str]) -> str:
        valid: list[int] = []
        for raw in _NUMBER.findall(match["nums"]):
            number = int(raw)
            if 1 <= number <= n_sources and number not in valid:
                valid.append(number)
        if not valid:
            return _REMOVED
        for number in valid:
            if number not in order:
                order.append(number)
        return "[" + ", ".join(str(n) for n in sorted(order.index(number) + 1 for number in valid)) + "]"

    cleaned = claims.MARKER.sub(replace, text.replace(_REMOVED, ""))
    cleaned = _GAP.sub(_gap, cleaned)
    cleaned = "\n".join(line.rstrip() for line in cleaned.split("\n")).strip()
    return cleaned, order


def _gap(match: re.Match[str]) -> str:
    """What replaces removed markers: one space between two words, nothing next to punctuation or a line end."""
    source = match.string
    left = source[match.start() - 1] if match.start() > 0 else ""
    right = source[match.end()] if match.end() < len(source) else ""
    if not left or left.isspace() or not right or right.isspace() or right in _CLOSING:
        return ""
    spaced = match.group().replace(_REMOVED, "") != ""
    return " " if spaced or (left.isalnum() and right.isalnum()) else ""


class GenerativeComposer:
    """Answers through any OpenAI-compatible chat endpoint via langchain-openai; every [n] is validated."""

    def __init__(self, *, base_url: str, model: str, api_key: str, timeout: float = 20.0,
                 prompt_path: Path | None = None) -> None:
        self._base_url = base_url
        self._model = model
        self._api_key = api_key
        self._timeout = timeout
        self._prompt_path = prompt_path or PROMPT_PATH
        self._chat: Any = None
        self._prompt: tuple[str, str] | None = None

    def __repr__(self) -> str:
        # Spelled out so a future field list can never put the key into a log line through repr().
        return f"GenerativeComposer(base_url={self._base_url!r}, model={self._model!r})"

    def compose(self, question: str, hits: list[SearchHit]) -> tuple[str, list[SearchHit]] | None:
        """(answer with [n] markers, the cited hits in order), or None when the caller should fall back.

        Sentences their cited passage does not carry are dropped (``retrieval.claims``); an answer that loses too
        many is not used at all.
        """
        shown = list(hits[:MAX_PROMPT_HITS])
        if not shown or not question.strip():
            return None
        sources = [self._source(hit) for hit in shown]
        try:
            system, _ = self._load_prompt()
            messages = self._messages(question, shown, sources)
            reply = self._client().invoke(messages)
            answer = _text_of(reply)
        except Exception as exc:  # noqa: BLE001 - whatever the endpoint does, the extractive answer still works
            self._warn(exc)
            return None
        if not answer.strip():
            logger.warning("Generative answer from model %s was empty; using the extractive answer", self._model)
            return None
        if DONT_KNOW in answer.lower():
            logger.info("Model %s found no answer in the sources; using the extractive answer", self._model)
            return None
        try:
            checked = claims.check(answer, sources, instructions=system)
        except Exception as exc:  # noqa: BLE001 - one odd model reply must not cost the officer the answer
            # The type only: a message could quote the model's reply.
            logger.warning("Checking the generative answer of model %s failed (%s); using the extractive answer",
                           self._model, type(exc).__name__)
            return None
        if checked.dropped:
            # Reasons only: the sentences may repeat what the officer wrote.
            reasons = Counter(verdict.reason for _, verdict in checked.dropped)
            logger.info("Model %s: %d of %d sentences dropped as unsupported (%s)", self._model,
                        len(checked.dropped), len(checked.dropped) + len(checked.kept),
                        ", ".join(f"{reason}: {n}" for reason, n in sorted(reasons.items())))
        if not checked.trusted:
            logger.warning("Generative answer from model %s is not carried by its sources; using the extractive "
                           "answer", self._model)
            return None
        text, order = validate_markers(checked.text, len(shown))
        if not order:
            logger.warning("Generative answer from model %s cited no valid source; using the extractive answer",
                           self._model)
            return None
        return text, [shown[number - 1] for number in order]

    # -- helpers --------------------------------------------------------------------------------------------

    def _client(self) -> Any:
        if self._chat is None:
            # Imported here: the offline helpdesk never needs langchain-openai, and nothing is built at import.
            from langchain_openai import ChatOpenAI

            self._chat = ChatOpenAI(base_url=self._base_url, model=self._model, api_key=self._api_key,
                                    timeout=self._timeout, max_retries=0, temperature=0)
        return self._chat

    def _messages(self, question: str, hits: list[SearchHit], sources: list[claims.Source]) -> list[Any]:
        from langchain_core.messages import HumanMessage, SystemMessage

        system, human = self._load_prompt()
        block = format_sources(hits, [source.text for source in sources])
        # Passages and question are format *arguments*, never part of the template, so their braces stay literal.
        return [SystemMessage(content=system),
                HumanMessage(content=human.format(sources=block, question=question.strip()))]

    @staticmethod
    def _source(hit: SearchHit) -> claims.Source:
        """The passage as the model sees it and as its sentences are checked: without text addressed to a model."""
        passage = hit.passage
        text, removed = claims.without_injections(_trim(passage.text))
        if removed:
            logger.warning("Passage %s has %d sentence(s) addressed to a language model; left out of the prompt",
                           hit.chunk.id, removed)
        # Titles and headings are corpus text too: the check leaves out a heading that addresses a model (and
        # format_sources keeps it out of the prompt).
        heading = " ".join([hit.chunk.title, passage.label or hit.chunk.label or "", *passage.heading_path])
        return claims.Source(text, heading)

    def _load_prompt(self) -> tuple[str, str]:
        if self._prompt is None:
            self._prompt = load_prompt(self._prompt_path)
        return self._prompt

    def _warn(self, exc: Exception) -> None:
        # Only the exception type and status: provider messages can echo the request (passages) back.
        detail = type(exc).__name__
        status = getattr(exc, "status_code", None)
        if status is not None:
            detail += f", HTTP {status}"
        if isinstance(exc, (RetrievalError, ConfigError)):  # our own messages: safe to log
            detail += f": {exc}"
        logger.warning("Generative answer via model %s failed (%s); using the extractive answer", self._model, detail)


def load_prompt(path: Path = PROMPT_PATH) -> tuple[str, str]:
    """(system, human) sections of an answer prompt file."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"answer prompt {path} cannot be read: {exc.strerror}") from exc
    parts = _SECTION.split(raw)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if set(sections) != {"system", "human"}:
        raise ConfigError(f"answer prompt {path} needs '=== system ===' and '=== human ===' sections")
    return sections["system"], sections["human"]


def format_sources(hits: list[SearchHit], texts: list[str] | None = None) -> str:
    """The numbered sources block of the prompt: ``[n] title — label: passage`` (``texts`` replaces the passages)."""
    blocks = []
    for n, hit in enumerate(hits, 1):
        passage = hit.passage
        label = claims.clean_heading(passage.label or hit.chunk.label or "")
        title = claims.clean_heading(hit.chunk.title) or f"Bron {n}"
        head = f"{title} — {label}" if label else title
        text = texts[n - 1] if texts is not None else _trim(passage.text)
        blocks.append(f"[{n}] {head}: {text}")
    return "\n\n".join(blocks)


def _trim(text: str) -> str:
    text = text.strip()
    if len(text) <= MAX_PASSAGE_CHARS:
        return text
    return text[:MAX_PASSAGE_CHARS].rsplit(" ", 1)[0] + " …"


def _text_of(reply: Any) -> str:
    content = getattr(reply, "content", None)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # Some providers answer in content blocks; only the text blocks are the answer.
        return "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in content
                       if isinstance(part, str) or (isinstance(part, dict) and part.get("type") == "text"))
    raise TypeError(f"unexpected chat reply {type(reply).__name__}")
