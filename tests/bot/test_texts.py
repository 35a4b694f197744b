"""The officer's texts (bot/texts.py): how an expert's answer reads (worded in the bot, not in escalation), and
that the modules that build replies word no Dutch sentence inline."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import bot
from bot.texts import expert_answer_text
from escalation.delivery import ExpertAnswer

ANSWER = ExpertAnswer(ticket=12, question="Mag ik na fase 1 van een innovatiepartnerschap met één partner verder?",
                      answer="Ja, als de opdrachtdocumenten dat vooraf voorzien.", expert="Chloé Dubois")


def test_an_answer_names_its_ticket_question_expert_and_next_steps() -> None:
    text = expert_answer_text(ANSWER)
    assert text.startswith('Antwoord van de expertenpool op je vraag VB-12 ("Mag ik na fase 1 van een '
                           'innovatiepartnerschap met één partner verder?"):\n\nJa, als de opdrachtdocumenten')
    assert "— Chloé Dubois" in text and "/opgelost 12" in text and "/vervolg 12" in text
    assert "— de expertenpool" in expert_answer_text(ExpertAnswer(12, ANSWER.question, ANSWER.answer))


def test_without_heading_it_starts_with_the_question_for_a_channel_that_shows_its_own_header() -> None:
    assert expert_answer_text(ANSWER, heading=False).startswith('Op je vraag VB-12 ("Mag ik na fase 1')
    older = ExpertAnswer.from_stored(3, "Antwoord van de expertenpool op je vraag VB-3 (\"x\"):\n\nJa.")
    assert expert_answer_text(older) == older.wording  # queued by an older version: shown as it was worded
    assert expert_answer_text(older, heading=False).startswith('Op je vraag VB-3 ("x"):')


def test_a_cut_answer_and_refused_files_are_told() -> None:
    cut = ExpertAnswer(12, ANSWER.question, "Eerste deel.", truncated=True, refused=("macro.docm",))
    text = expert_answer_text(cut)
    assert "Eerste deel. …" in text and "ingekort" in text and "VB-12" in text
    assert "De expert stuurde ook macro.docm mee. Dat geeft de helpdesk niet door" in text


def test_the_queued_form_reads_back_the_same_and_hostile_queue_rows_do_not_break_it() -> None:
    assert ExpertAnswer.from_stored(12, ANSWER.stored()) == ANSWER
    for row in ("", "[1, 2]", '{"answer": 5}', "{", '{"answer": "a", "refused": [1, "x"], "expert": 3}'):
        answer = ExpertAnswer.from_stored(4, row)
        assert expert_answer_text(answer)  # worded as it is, or read as far as it is well formed
    assert ExpertAnswer.from_stored(4, '{"answer": "a", "refused": [1, "x"], "expert": 3}').refused == ("x",)


_DUTCH_OFFICER_WORDS = re.compile(
    r"(?<![/\w])(?:je|jij|jou|jouw|ik|mij|typ|expertenpool|gerust|bedankt|sjabloon|sjablonen|bijlagen?|geen|niet|"
    r"hierbij|krijg|volgens|bronnen|bestanden|geldig|vraag|gesprek|fijn|kies|aanbeveling|gewist|downloadlink|"
    r"ziens)\b", re.IGNORECASE)
"""Words an officer's Dutch sentence nearly always has, and the code's own strings (keys, commands) never do."""


def _inline_strings(path: Path) -> list[tuple[int, str]]:
    """The string literals of a module (f-string pieces too), without docstrings, regular expressions (``re.*``
    calls) and log messages."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):  # (attribute) docstrings
            skipped.add(id(node.value))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and isinstance(node.func.value, ast.Name) and node.func.value.id in ("re", "logger", "logging")):
            skipped.update(id(inner) for inner in ast.walk(node))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped]


@pytest.mark.parametrize("module", ["core.py", "escalator.py", "downloads.py", "procedure.py", "answers.py",
                                    "messages.py", "channels/console.py", "channels/telegram.py",
                                    "channels/telegram_render.py", "channels/teams.py", "channels/teams_cards.py"])
def test_officer_sentences_are_not_worded_inline_but_in_bot_texts(module: str) -> None:
    path = Path(bot.__file__).parent / module
    inline = [f"{module}:{line}: {text!r}" for line, text in _inline_strings(path)
              if _DUTCH_OFFICER_WORDS.search(text)]
    assert not inline, "word these in bot/texts.py:\n" + "\n".join(inline)
