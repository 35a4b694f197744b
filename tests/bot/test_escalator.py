"""What the officer is told when a question goes to the expert pool: where the answer will reach them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bot.channels.console import console_incoming
from bot.escalator import PoolEscalator
from bot.messages import Incoming
from escalation.mail import MessageIds
from escalation.mailer import SmtpMailer, SmtpSettings
from escalation.pool import load_pool
from escalation.service import EscalationService
from escalation.store import TicketStore

QUESTION = "Hoe lang mag een raamovereenkomst voor het onderhoud van speeltuinen duren?"


@pytest.fixture(params=["mail not configured", "mail configured"])
def escalator(request: pytest.FixtureRequest, tmp_path: Path) -> PoolEscalator:
    pool_file = tmp_path / "experts.yaml"
    pool_file.write_text("fallback: juridische-dienst@example.be\nsla_hours: 24\nexperts:\n"
                         "  - {name: Chloé Dubois, email: chloe.dubois@example.be, topics: [general]}\n",
                         encoding="utf-8")
    mailer = None
    if request.param == "mail configured":
        smtp = request.getfixturevalue("smtp_server")
        mailer = SmtpMailer(SmtpSettings(host=smtp.host, port=smtp.port, security="none", timeout=3))
    service = EscalationService(store=TicketStore(f"sqlite:///{tmp_path / 'tickets.sqlite'}"),
                                pool=load_pool(pool_file), ids=MessageIds(b"k" * 32, "vraagbaak.example.be"),
                                mailer=mailer, mail_from="vraagbaak@example.be", reply_to="experten@example.be",
                                archive_dir=tmp_path / "archive")
    return PoolEscalator(service, pseudonym=lambda channel, user: f"{channel}:{user}")


def test_a_console_officer_is_told_the_answer_shows_in_the_next_vraagbaak_chat(escalator: PoolEscalator) -> None:
    incoming = console_incoming(QUESTION, user="an")
    number, note = dataclasses.astuple(escalator.escalate(incoming, question=QUESTION, hits=[],
                                                          reason="op vraag van de gebruiker", history=[]))
    assert number == 1 and "VB-1" in note
    assert "hier in dit gesprek" not in note  # `vraagbaak ask` ends at once; nothing can be written into it later
    assert "Het antwoord krijg je te zien wanneer je de volgende keer `vraagbaak chat` opent" in note
    follow = escalator.follow_up(incoming, 1, "Geldt dat ook voor speelpleinen?")
    assert "hier" not in follow and "`vraagbaak chat`" in follow


def test_a_chat_channel_that_writes_back_promises_the_answer_in_this_conversation(escalator: PoolEscalator) -> None:
    incoming = Incoming(channel="telegram", conversation_id="telegram:5", user_id="5", text=QUESTION,
                        reply_address={"chat_id": 5})
    note = escalator.escalate(incoming, question=QUESTION, hits=[], reason="op vraag van de gebruiker",
                              history=[]).next_step
    assert "Het antwoord krijg je hier in dit gesprek" in note and "vraagbaak chat" not in note
