"""Hostile mail: parsing is linear in the input, and every field is bounded before it reaches the store.

Anyone on the internet can write to the expert mailbox. The complexity tests time a parse at n and 8n and
require the growth to stay near linear (8x), far from quadratic (64x): a wall-clock limit would pass a quadratic
parser on a fast machine and fail a linear one on a slow one.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from escalation.reply_parsing import MAX_TEXT_CHARS, ReplyParseError, html_to_text, parse_reply

GROWTH = 8
LINEAR_ENOUGH = 24
"""Measured growth must stay below this (linear: ~8, quadratic: ~64)."""


def _mail(body: str, *, subtype: str = "plain", subject: str = "Re: [VB-1] vraag") -> bytes:
    msg = EmailMessage()
    msg["From"] = "expert@example.org"
    msg["To"] = "vraagbaak@example.org"
    msg["Subject"] = subject
    msg["Message-ID"] = "<reply-1@example.org>"
    msg.set_content(body, subtype=subtype, charset="utf-8")
    return msg.as_bytes()


def _best_time(action: Callable[[], object], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def _time_in_child(action: Callable[[], object], conn, repeats: int = 3) -> None:
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        conn.send(time.perf_counter() - started)
    conn.close()


def _growth(make: Callable[[int], bytes | str], parse: Callable, n: int) -> float:
    """Time at 8n over time at n (best of three each). The large runs happen in a child process that is stopped
    once a run has taken longer than the allowed growth, so a regression fails instead of hanging the suite."""
    small, large = make(n), make(n * GROWTH)
    parse(small)  # warm caches and imports
    base = max(_best_time(lambda: parse(small)), 1e-4)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_time_in_child, args=(lambda: parse(large), send), daemon=True)
    child.start()
    best = float("inf")
    try:
        for _ in range(3):
            if not receive.poll(base * LINEAR_ENOUGH + 1.0):
                break
            best = min(best, receive.recv())
    except EOFError:
        pass
    finally:
        child.kill()
        child.join()
    return best / base


HTML_BODIES = {
    "unclosed anchors": lambda n: "<a " * n,
    "bare less-than signs": lambda n: "<" * n,
    "unclosed comments": lambda n: "<!--" * n,
    "nested divs": lambda n: "<div>" * n + "x",
    "nested blockquotes": lambda n: "<blockquote>" * n + "antwoord",
    "an unclosed attribute": lambda n: '<p title="' + "x" * n,
}

TEXT_BODIES = {
    "a From header and spaces": lambda n: "Van: " + " " * n,
    "a long attribution line": lambda n: "Op " + "x " * n,
    "marker hashes on one line": lambda n: "##" * n,
    "marker hashes on many lines": lambda n: ("##" * 400 + "\n") * max(1, n // 800),
    "closing lines": lambda n: "Groeten\n" * (n // 8),
    "header lines": lambda n: "Van: x\n" * (n // 7),
    "quote markers": lambda n: "> " * n,
    "signature delimiters": lambda n: "-- \n" * (n // 4),
}


@pytest.mark.parametrize("name", sorted(HTML_BODIES))
def test_html_to_text_is_linear(name: str) -> None:
    assert _growth(HTML_BODIES[name], html_to_text, 8_000) < LINEAR_ENOUGH


def _parse_or_refuse(raw: bytes) -> object:
    """A parse that ends in ReplyParseError (no text left) has finished too."""
    try:
        return parse_reply(raw)
    except ReplyParseError as exc:
        return exc


@pytest.mark.parametrize("name", sorted(HTML_BODIES))
def test_an_html_mail_is_parsed_in_linear_time(name: str) -> None:
    make = HTML_BODIES[name]
    assert _growth(lambda n: _mail(make(n), subtype="html"), _parse_or_refuse, 4_000) < LINEAR_ENOUGH


@pytest.mark.parametrize("name", sorted(TEXT_BODIES))
def test_a_text_mail_is_parsed_in_linear_time(name: str) -> None:
    make = TEXT_BODIES[name]
    assert _growth(lambda n: _mail(make(n)), parse_reply, 4_000) < LINEAR_ENOUGH


def test_the_html_of_the_first_report_is_read_and_its_text_kept() -> None:
    # The mail that froze the service: a 48 KB body of unclosed tags.
    assert html_to_text("<a " * 16_000) == ""
    assert html_to_text("<p>Ja, dat mag.<a href='x'") == "Ja, dat mag."


def test_body_text_beyond_the_cap_is_not_read() -> None:
    reply = parse_reply(_mail("Antwoord. " + "x" * (MAX_TEXT_CHARS + 10_000)))
    assert len(reply.raw_text) <= MAX_TEXT_CHARS


def test_an_endless_subject_tag_is_no_ticket_number() -> None:
    # Encoded words decoding to "[VB-" + 5,000 digits + "]" used to raise ValueError in int().
    digits = "1" * 5000
    reply = parse_reply(_mail("Antwoord.", subject=f"Re: [VB-{digits}] vraag"))
    assert reply.ticket_tag is None
    reply = parse_reply(_mail("Antwoord.", subject="Re: [VB-99999999999999999999] vraag"))
    assert reply.ticket_tag is None
    assert parse_reply(_mail("Antwoord.", subject="Re: [VB-123456789] vraag")).ticket_tag == 123456789


def _nested(depth: int) -> bytes:
    body = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth))
    body += "Content-Type: text/plain\n\nAntwoord\n" + "".join(f"--b{i}--\n" for i in reversed(range(depth)))
    return ("From: expert@example.org\nSubject: Re: [VB-1] vraag\nMIME-Version: 1.0\n" + body).encode()


def test_thousands_of_nested_multiparts_are_an_unreadable_mail_not_a_crash() -> None:
    with pytest.raises(ReplyParseError, match="MIME parts"):
        parse_reply(_nested(3000))
    try:  # just under the part limit: parsed, or refused as nested too deeply, never another exception
        parse_reply(_nested(495))
    except ReplyParseError as exc:
        assert "nested" in str(exc)


@pytest.mark.parametrize("header", [
    'Content-Type: text/plain; charset="' + ";" * 20_000,
    "Content-Type: text/plain; " + "(" * 1000,
    "Content-Disposition: attachment; " + "(" * 1000,
    "Content-Transfer-Encoding: " + "(" * 1000,
])
def test_hostile_content_headers_are_refused_or_read_never_raised(header: str) -> None:
    raw = f"From: expert@example.org\nSubject: Re: [VB-1] vraag\nMIME-Version: 1.0\n{header}\n\nAntwoord.\n"
    result = _parse_or_refuse(raw.encode())
    assert isinstance(result, ReplyParseError) or result.answer == "Antwoord."


@pytest.mark.parametrize("charset", ["rot13", "base64", "hex", "uu", "idna", "undefined", "punycode"])
def test_a_transform_charset_is_read_as_unlabelled_text(charset: str) -> None:
    raw = (f"From: expert@example.org\nSubject: Re: [VB-1] vraag\nMIME-Version: 1.0\n"
           f"Content-Type: text/plain; charset={charset}\n\nDat mag, zie artikel 40.\n").encode()
    result = _parse_or_refuse(raw)
    assert isinstance(result, ReplyParseError) or result.answer == "Dat mag, zie artikel 40."


def test_punycode_bodies_do_not_slow_parsing_down() -> None:
    def mail(n: int) -> bytes:
        return (b"From: expert@example.org\nSubject: x\nContent-Type: text/plain; charset=punycode\n\na-"
                + b"a" * n + b"\n")

    assert _growth(mail, _parse_or_refuse, 20_000) < LINEAR_ENOUGH


def test_a_stored_message_with_a_blank_line_before_its_headers_is_read() -> None:
    reply = parse_reply(b"\n\n" + _mail("Ja, dat mag."))
    assert reply.sender == "expert@example.org" and reply.answer == "Ja, dat mag."


def test_html_text_stays_bounded_however_deep_the_quotes() -> None:
    text = html_to_text("<blockquote>" * 250 + "x<br>" * 200_000)
    assert len(text) <= MAX_TEXT_CHARS * 1.1
