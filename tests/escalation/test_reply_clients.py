"""Reply parsing across mail clients: every tests/fixtures/mail/clients/NAME.eml is an expert's reply as a real
client writes it (Outlook desktop, Outlook on the web, Outlook.com, Outlook mobile, Windows Mail, Gmail, Apple Mail,
iPhone/iPad, Thunderbird, Evolution, Zoho, Samsung Email, French webmails, mailing lists) and NAME.answer.txt holds
the answer a human reader would take from it: only the new text, without quoted history, reply header block, marker
line, device tagline, signature, closing with its name block, or list and disclaimer footers.

The comparison ignores whitespace at both ends, trailing spaces on each line and the length of runs of blank lines;
line breaks inside the text (a hard-wrapped Gmail text part, list lines) count.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from escalation.reply_parsing import parse_reply

CLIENTS = Path(__file__).resolve().parents[1] / "fixtures" / "mail" / "clients"
FIXTURES = sorted(CLIENTS.glob("*.eml"))


def expected_path(eml: Path) -> Path:
    return eml.with_name(eml.name[: -len(".eml")] + ".answer.txt")


def normalized(text: str) -> str:
    """Strip both ends, drop trailing spaces per line and collapse runs of blank lines to one."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").strip().split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def test_every_client_fixture_has_an_expected_answer() -> None:
    assert len(FIXTURES) >= 44
    missing = [eml.name for eml in FIXTURES if not expected_path(eml).is_file()]
    assert missing == []
    orphans = [p.name for p in CLIENTS.glob("*.answer.txt")
               if not p.with_name(p.name[: -len(".answer.txt")] + ".eml").is_file()]
    assert orphans == []


@pytest.mark.parametrize("eml", FIXTURES, ids=lambda path: path.stem)
def test_client_reply_answer(eml: Path) -> None:
    reply = parse_reply(eml.read_bytes())
    expected = expected_path(eml).read_text(encoding="utf-8")
    assert "@" in reply.sender
    assert normalized(reply.answer) == normalized(expected)


@pytest.mark.parametrize(("text", "answer"), [
    # Found by review: a footer rule that cut these answers in half.
    ("Ja, dat kan.\n\nDeze e-mail vervangt mijn vorige antwoord: de uitzondering geldt uitsluitend voor werken.\n\n"
     "Met vriendelijke groeten,\nAn",
     "Ja, dat kan.\n\nDeze e-mail vervangt mijn vorige antwoord: de uitzondering geldt uitsluitend voor werken."),
    ("De drempels (excl. btw):\n\nWerken | € 5.538.000 | art. 11\nLeveringen | € 143.000 | art. 11",
     "De drempels (excl. btw):\n\nWerken | € 5.538.000 | art. 11\nLeveringen | € 143.000 | art. 11"),
])
def test_answer_text_that_looks_like_a_footer_is_kept(text: str, answer: str) -> None:
    from escalation.reply_parsing import strip_quoted

    assert strip_quoted(text) == answer
