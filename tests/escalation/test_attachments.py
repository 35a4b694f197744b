"""An expert's attachments: what passes the allow-list, how it is stored, how it reaches the officer and goes again."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from escalation.attachments import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, check_file, safe_name
from escalation.pool import ExpertPool
from escalation.reply_parsing import parse_reply
from escalation.service import EscalationService
from tests.escalation.test_tickets import Clock, _new, _reply_to, _service
from tests.office_files import docx_file, odt_file, pdf_file, with_attachments
from tests.smtp_server import SmtpServer

def _answered(service: EscalationService, smtp_server: SmtpServer, *files: tuple[str, str, bytes],
              body: str = "Zie het advies in bijlage.", inline_logo: bool = False) -> int:
    ticket = service.open_ticket(_new())
    raw = _reply_to(smtp_server.received[-1], sender="an.peeters@example.be", body=body)
    result = service.ingest(with_attachments(raw, *files, inline_logo=inline_logo))
    assert result.status == "accepted", result
    return ticket.number


# -- the allow-list -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, data", [("advies.pdf", pdf_file()), ("advies.docx", docx_file()),
                                        ("advies.odt", odt_file()), ("nota.txt", "Artikel 42, § 1.".encode())])
def test_real_pdf_word_opendocument_and_text_files_pass(name: str, data: bytes) -> None:
    content_type, reason = check_file(name, data)
    assert content_type is not None and reason == ""


@pytest.mark.parametrize("name, data, why", [
    ("setup.exe", b"MZ" + b"\x00" * 100, "allow-list"),
    ("factuur.html", b"<script>alert(1)</script>", "allow-list"),
    ("advies.docm", docx_file(macro=True), "allow-list"),
    ("advies.docx", docx_file(macro=True), "macros"),
    ("advies.pdf", b"MZ" + b"\x00" * 100, "not a .pdf"),  # a program renamed
    ("advies.docx", odt_file(), "not a .docx"),
    ("advies.odt", docx_file(), "not a .odt"),
    ("advies.docx", b"PK\x03\x04 broken", "damaged"),
    ("leeg.pdf", b"", "empty"),
    ("groot.pdf", b"%PDF-1.7\n" + b"0" * MAX_ATTACHMENT_BYTES, "larger than"),
    ("nota.txt", b"\x00\x01binary", "not a .txt"),
])
def test_everything_else_is_refused_with_a_reason(name: str, data: bytes, why: str) -> None:
    content_type, reason = check_file(name, data)
    assert content_type is None and why in reason


@pytest.mark.parametrize("raw, safe", [
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\an\\advies.PDF", "advies.pdf"),
    ("advies\x00.pdf\r\nX-Evil: 1", "advies .pdf X-Evil 1"),
    ("  ..  ", "bijlage"),
    ("a" * 500 + ".docx", "a" * 115 + ".docx"),
    ("Nota “gunning” é.pdf", "Nota “gunning” é.pdf"),
])
def test_file_names_are_cleaned_to_a_safe_base_name(raw: str, safe: str) -> None:
    assert safe_name(raw) == safe


# -- parsing ------------------------------------------------------------------------------------------------

def test_a_reply_yields_its_allowed_files_reports_the_refused_and_ignores_the_signature_logo(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    service.open_ticket(_new())
    raw = with_attachments(_reply_to(smtp_server.received[0], sender="an.peeters@example.be", body="Zie bijlage."),
                      ("Advies VB-1.pdf", "application/pdf", pdf_file()),
                      ("tool.exe", "application/octet-stream", b"MZ\x90\x00"), inline_logo=True)
    reply = parse_reply(raw)
    assert [(f.name, f.content_type, f.data) for f in reply.files] == [
        ("Advies VB-1.pdf", "application/pdf", pdf_file())]
    assert [(r.name, "allow-list" in r.reason) for r in reply.refused_files] == [("tool.exe", True)]
    assert "image001.png" in reply.attachments  # named, but neither passed on nor reported
    assert reply.answer == "Zie bijlage."


def test_more_than_the_maximum_number_of_attachments_are_refused(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                                 smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    service.open_ticket(_new())
    files = [(f"deel{i}.pdf", "application/pdf", pdf_file()) for i in range(MAX_ATTACHMENTS + 2)]
    reply = parse_reply(with_attachments(_reply_to(smtp_server.received[0], sender="an.peeters@example.be",
                                              body="Alles in bijlage."), *files))
    assert len(reply.files) == MAX_ATTACHMENTS
    extra = range(MAX_ATTACHMENTS, MAX_ATTACHMENTS + 2)
    assert [r.name for r in reply.refused_files] == [f"deel{i}.pdf" for i in extra]


# -- stored with the ticket, handed to the officer --------------------------------------------------------

def test_an_attachment_is_stored_privately_with_the_ticket_and_handed_over_with_the_answer(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    number = _answered(service, smtp_server, ("Advies.docx", "application/vnd.openxmlformats-officedocument."
                                              "wordprocessingml.document", docx_file("Ja, dat mag.")),
                       inline_logo=True)
    [stored] = service.store.attachments_of(number)
    assert stored.name == "Advies.docx" and stored.size == len(docx_file("Ja, dat mag."))
    path = service.attachments_dir / stored.path.name
    assert path.read_bytes() == docx_file("Ja, dat mag.")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(service.attachments_dir).st_mode) == 0o700
    [answer] = service.take_pending("console", lambda address: address.get("user") == "an")
    assert [(f.name, f.path) for f in answer.files] == [("Advies.docx", path)]
    assert "Zie het advies in bijlage." in answer.text and "niet door" not in answer.text


def test_a_reply_with_only_an_attachment_is_an_answer(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                      smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    number = _answered(service, smtp_server, ("advies.pdf", "application/pdf", pdf_file()), body="")
    assert service.store.get(number).answer == "Het antwoord van de expert staat in de bijlage."
    [answer] = service.take_pending("console", lambda address: True)
    assert len(answer.files) == 1


def test_a_refused_attachment_is_named_to_the_officer_and_recorded_for_the_maintainer(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    number = _answered(service, smtp_server, ("macro.docm", "application/octet-stream", docx_file(macro=True)),
                       body="Ja, zie ook het model.")
    [answer] = service.take_pending("console", lambda address: True)
    assert answer.files == ()
    assert "macro.docm" in answer.text and "geeft de helpdesk niet door" in answer.text
    [inbound] = service.store.inbound("accepted")
    assert inbound["ticket"] == number and "macro.docm (type .docm is not on the allow-list)" in inbound["reason"]


def test_the_delivery_carries_the_files_to_a_push_channel_and_a_moved_data_dir_is_followed(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    _answered(service, smtp_server, ("advies.pdf", "application/pdf", pdf_file()))
    received: list[tuple[str, list[bytes]]] = []

    class Channel:
        def deliver(self, reply_address, text: str, files=()) -> None:
            received.append((text, [f.path.read_bytes() for f in files]))

    moved = tmp_path / "elsewhere"
    service.attachments_dir.rename(moved)
    service.attachments_dir = moved  # as after moving VRAAGBAAK_HOME: the stored absolute path is stale
    assert service.deliver({"console": Channel()}) == 1
    assert received[0][1] == [pdf_file()]


def test_forgetting_and_purging_erase_the_attachment_files(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                           smtp_server: SmtpServer) -> None:
    clock = Clock()
    service = _service(store_url, pool, tmp_path, smtp_server, clock=clock)
    first = _answered(service, smtp_server, ("a.pdf", "application/pdf", pdf_file()))
    orphan = service.attachments_dir / "99-deadbeef"  # an answer whose recording crashed after the write
    orphan.write_bytes(b"x")
    os.utime(orphan, (clock.now - 400 * 86400,) * 2)
    result = service.forget_officer("p1")
    assert result["attachment_files"] == 1 and service.store.attachments_of(first) == []
    assert service.attachment(1) is None and orphan.exists()

    clock.now += 100
    second = _answered(service, smtp_server, ("b.pdf", "application/pdf", pdf_file()))
    clock.now += 400 * 86400
    purged = service.purge(older_than_days=365)
    assert purged["attachment_files"] == 2  # the second ticket's file and the orphan
    assert not orphan.exists() and service.store.attachments_of(second) == []
    assert list(service.attachments_dir.iterdir()) == []


def test_a_failed_recording_leaves_no_file_behind(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                  smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    service.open_ticket(_new())
    raw = with_attachments(_reply_to(smtp_server.received[0], sender="an.peeters@example.be", body="Zie bijlage."),
                      ("advies.pdf", "application/pdf", pdf_file()))

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(service.store, "add_delivery", broken)
    with pytest.raises(RuntimeError):
        service.ingest(raw)
    assert list(service.attachments_dir.iterdir()) == [] and service.store.attachments_of(1) == []
    monkeypatch.undo()
    assert service.ingest(raw).status == "accepted"  # nothing was recorded: the mail is processed again
    assert len(service.store.attachments_of(1)) == 1


def test_files_for_shows_an_officer_only_their_own_tickets_files(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                                 smtp_server: SmtpServer) -> None:
    from escalation.errors import TicketNotFound

    service = _service(store_url, pool, tmp_path, smtp_server)
    number = _answered(service, smtp_server, ("advies.pdf", "application/pdf", pdf_file()))
    assert [f.name for f in service.files_for(number, "p1")] == ["advies.pdf"]
    with pytest.raises(TicketNotFound):
        service.files_for(number, "someone-else")
