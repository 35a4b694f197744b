"""The guided procedure choice (`/procedure`): a decision tree asked one question at a time.

The tree is data (``bot/data/procedure_tree.yaml``, Dutch, checked against the guidance notes): questions with
two to four choices, each leading to the next question or to a result; a result names the procedure, why, the
articles it rests on, the guidance notes and the template that go with it. Where an officer is in the tree is kept
per conversation in SQLite, so a restart of the service does not lose the walk; a step is addressed by its
question id, so a button pressed under an earlier question of the walk does not answer the current one.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Protocol

import yaml

from bot.texts import (PROCEDURE_BACK_LABEL, PROCEDURE_HOW_TO_ANSWER, PROCEDURE_STOP_LABEL, procedure_question,
                       procedure_summary)
from common.errors import ConfigError

MAX_LABEL_CHARS = 40
_QUESTION_ID = re.compile(r"[a-z0-9_-]{1,24}")
MAX_DEPTH = 12


@dataclass(frozen=True)
class Choice:
    """One answer to a question: it leads to the next question or to a result."""

    label: str
    next: str | None = None
    result: str | None = None


@dataclass(frozen=True)
class Question:
    """One step of the tree."""

    id: str
    text: str
    help: str | None
    choices: tuple[Choice, ...]


@dataclass(frozen=True)
class ArticleRef:
    """An article a result rests on: a source of the manifest, the article's label and its anchor there."""

    source: str
    label: str
    anchor: str | None = None


@dataclass(frozen=True)
class Result:
    """Where a walk ends: the recommended procedure and what backs it."""

    id: str
    procedure: str
    why: str
    articles: tuple[ArticleRef, ...]
    guidance: tuple[str, ...]
    """Document ids (file stems) of guidance notes that explain the procedure."""
    template: str | None = None
    """File name of a template in a template source's catalogue."""


@dataclass(frozen=True)
class ProcedureTree:
    """The validated decision tree."""

    start: str
    questions: dict[str, Question]
    results: dict[str, Result]

    def walk(self, answers: list[tuple[str, int]]) -> Question | Result:
        """Where a list of (question id, choice index) answers leads; raises ValueError for an invalid path."""
        node: Question | Result = self.questions[self.start]
        for question_id, index in answers:
            if not isinstance(node, Question) or node.id != question_id or not 0 <= index < len(node.choices):
                raise ValueError(f"answer {question_id}:{index} does not fit the tree")
            choice = node.choices[index]
            node = self.questions[choice.next] if choice.next else self.results[choice.result or ""]
        return node

    def recap(self, answers: list[tuple[str, int]]) -> list[tuple[str, str]]:
        """(question text, chosen label) for each answer given."""
        return [(self.questions[q].text, self.questions[q].choices[i].label) for q, i in answers]


def load_tree(path: Path | None = None) -> ProcedureTree:
    """Read and check the tree; every problem names the question or result."""
    text = path.read_text(encoding="utf-8") if path else _bundled()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"procedure tree is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("questions"), dict) \
            or not isinstance(data.get("results"), dict):
        raise ConfigError("procedure tree needs 'start', 'questions' and 'results'")
    results = {rid: _result(rid, raw) for rid, raw in data["results"].items()}
    questions = {qid: _question(qid, raw) for qid, raw in data["questions"].items()}
    tree = ProcedureTree(start=str(data.get("start")), questions=questions, results=results)
    _check(tree)
    return tree


@lru_cache(maxsize=1)
def _bundled() -> str:
    return resources.files("bot").joinpath("data/procedure_tree.yaml").read_text(encoding="utf-8")


def _question(qid: str, raw: object) -> Question:
    if not isinstance(qid, str) or not _QUESTION_ID.fullmatch(qid):
        # The id rides in button payloads (Telegram allows 64 bytes, a group's also carry the user id).
        raise ConfigError(f"procedure tree question {qid!r}: ids are 1-24 lowercase letters, digits, '-' or '_'")
    if not isinstance(raw, dict) or not raw.get("text") or not isinstance(raw.get("choices"), list):
        raise ConfigError(f"procedure tree question {qid}: needs 'text' and 'choices'")
    choices = []
    for n, choice in enumerate(raw["choices"], 1):
        if not isinstance(choice, dict) or not choice.get("label") or bool(choice.get("next")) == bool(
                choice.get("result")):
            raise ConfigError(f"procedure tree question {qid}, choice {n}: needs a label and either next or result")
        if len(str(choice["label"])) > MAX_LABEL_CHARS:
            raise ConfigError(f"procedure tree question {qid}, choice {n}: label over {MAX_LABEL_CHARS} characters")
        choices.append(Choice(label=str(choice["label"]), next=choice.get("next"), result=choice.get("result")))
    if not 2 <= len(choices) <= 4:
        raise ConfigError(f"procedure tree question {qid}: 2 to 4 choices")
    return Question(id=qid, text=str(raw["text"]), help=raw.get("help"), choices=tuple(choices))


def _result(rid: str, raw: object) -> Result:
    if not isinstance(raw, dict) or not raw.get("procedure") or not raw.get("why"):
        raise ConfigError(f"procedure tree result {rid}: needs 'procedure' and 'why'")
    articles = []
    for article in raw.get("articles") or []:
        if not isinstance(article, dict) or not article.get("source") or not article.get("label"):
            raise ConfigError(f"procedure tree result {rid}: an article needs 'source' and 'label'")
        articles.append(ArticleRef(source=str(article["source"]), label=str(article["label"]),
                                   anchor=article.get("anchor")))
    return Result(id=rid, procedure=str(raw["procedure"]), why=" ".join(str(raw["why"]).split()),
                  articles=tuple(articles), guidance=tuple(str(g) for g in raw.get("guidance") or ()),
                  template=raw.get("template"))


def _check(tree: ProcedureTree) -> None:
    if tree.start not in tree.questions:
        raise ConfigError(f"procedure tree: start {tree.start!r} is not a question")
    for question in tree.questions.values():
        for choice in question.choices:
            if choice.next and choice.next not in tree.questions:
                raise ConfigError(f"procedure tree question {question.id}: unknown next question {choice.next!r}")
            if choice.result and choice.result not in tree.results:
                raise ConfigError(f"procedure tree question {question.id}: unknown result {choice.result!r}")
    reached: set[str] = set()

    def visit(qid: str, path: tuple[str, ...]) -> None:
        if qid in path:
            raise ConfigError(f"procedure tree: a cycle through {qid}")
        if len(path) >= MAX_DEPTH:
            raise ConfigError(f"procedure tree: deeper than {MAX_DEPTH} questions at {qid}")
        reached.add(qid)
        for choice in tree.questions[qid].choices:
            if choice.next:
                visit(choice.next, (*path, qid))

    visit(tree.start, ())
    unreached = sorted(set(tree.questions) - reached)
    if unreached:
        raise ConfigError(f"procedure tree: question(s) {', '.join(unreached)} cannot be reached")


class WalkStore(Protocol):
    """Where each conversation is in the tree: ``InMemoryWalkStore`` here, ``SharedWalkStore`` for `serve`."""

    def get(self, conversation: str) -> list[tuple[str, int]] | None:
        """The answers given so far, or None when no walk is going on."""
        ...

    def put(self, conversation: str, answers: list[tuple[str, int]]) -> None:
        """Remember the answers given so far."""
        ...

    def clear(self, conversation: str) -> None:
        """The walk ended or was stopped."""
        ...


class InMemoryWalkStore:
    """Walks in this process (tests and tools; `vraagbaak serve` keeps them in the shared database)."""

    def __init__(self) -> None:
        self._walks: dict[str, list[tuple[str, int]]] = {}
        self._lock = threading.Lock()

    def get(self, conversation: str) -> list[tuple[str, int]] | None:
        """The answers given so far, or None when no walk is going on."""
        with self._lock:
            answers = self._walks.get(conversation)
            return list(answers) if answers is not None else None

    def put(self, conversation: str, answers: list[tuple[str, int]]) -> None:
        """Remember the answers given so far."""
        with self._lock:
            self._walks[conversation] = list(answers)

    def clear(self, conversation: str) -> None:
        """The walk ended or was stopped."""
        with self._lock:
            self._walks.pop(conversation, None)


# -- the walk as the officer sees it ---------------------------------------------------------------------------

COMMAND = "/procedure"
BACK, STOP = "terug", "stop"


@dataclass(frozen=True)
class Step:
    """What the guide says next: a question with its choices (as commands), or the end of the walk."""

    text: str
    choices: tuple[tuple[str, str], ...] = ()
    """(button label, the command a press sends)."""
    result: Result | None = None
    recap: tuple[tuple[str, str], ...] = ()


def parse_command(arg: str) -> tuple[str, str | None, int | None]:
    """("start" | "back" | "stop" | "answer" | "bad", question id, choice number from 1) of `/procedure ...`."""
    words = arg.split()
    if not words or words[0].lower() in ("start", "opnieuw"):
        return "start", None, None
    if len(words) == 1 and words[0].lower() in (BACK, "vorige"):
        return "back", None, None
    if len(words) == 1 and words[0].lower() in (STOP, "annuleer"):
        return "stop", None, None
    if len(words) == 2 and len(words[0]) <= 40 and re.fullmatch(r"[0-9]{1,2}", words[1]):
        return "answer", words[0], int(words[1])
    return "bad", None, None


def typed_answer(tree: ProcedureTree, answers: list[tuple[str, int]], text: str) -> str | None:
    """The `/procedure` argument a typed reply stands for during a walk ("2", "ja", "terug"), or None (also when
    the stored walk no longer fits the tree)."""
    try:
        node = tree.walk(answers)
    except ValueError:
        return None
    said = " ".join(text.lower().split()).strip(".!")
    if said in (BACK, "vorige"):
        return BACK
    if said in (STOP, "annuleer"):
        return STOP
    if not isinstance(node, Question):
        return None
    if re.fullmatch(r"[0-9]{1,2}", said) and 1 <= int(said) <= len(node.choices):
        return f"{node.id} {said}"
    for n, choice in enumerate(node.choices, 1):
        if said == choice.label.lower():
            return f"{node.id} {n}"
    return None


def step_for(tree: ProcedureTree, answers: list[tuple[str, int]]) -> Step:
    """The question to ask now, or the result the answers lead to."""
    node = tree.walk(answers)
    if isinstance(node, Result):
        return Step(text="", result=node, recap=tuple(tree.recap(answers)))
    lines = [procedure_question(len(answers) + 1, node.text)]
    if node.help:
        lines.append(node.help)
    lines.append("\n".join(f"{n}. {c.label}" for n, c in enumerate(node.choices, 1)))
    lines.append(PROCEDURE_HOW_TO_ANSWER)
    choices = [(c.label, f"{COMMAND} {node.id} {n}") for n, c in enumerate(node.choices, 1)]
    if answers:
        choices.append((PROCEDURE_BACK_LABEL, f"{COMMAND} {BACK}"))
    choices.append((PROCEDURE_STOP_LABEL, f"{COMMAND} {STOP}"))
    return Step(text="\n\n".join(lines), choices=tuple(choices))


def summary(result: Result, recap: tuple[tuple[str, str], ...]) -> str:
    """The walk as one question for the expert pool: what was answered and what the guide recommends."""
    return procedure_summary(result.procedure, "; ".join(f"{q} {a}" for q, a in recap))
