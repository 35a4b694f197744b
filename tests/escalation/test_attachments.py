"""An expert's attachments: what passes the allow-list, how it is stored, how it reaches the officer and goes again."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from bot.texts import expert_answer_text
from escalation.attachments import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, check_file, safe_name
from escalation.pool import ExpertPool
from escalation.reply_parsing import parse_reply
from escalation.service import EscalationService
from tests.escalation.test_tickets import Clock, _new, _reply_to, _service
from tests.office_files import DOCX_TYPE, docx_file, odt_file, package, pdf_file, with_attachments
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
    assert "Zie het advies in bijlage." in answer.answer.answer and answer.answer.refused == ()


def test_a_reply_with_only_an_attachment_is_an_answer(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                      smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    number = _answered(service, smtp_server, ("advies.pdf", "application/pdf", pdf_file()), body="")
    assert service.store.get(number).answer == ""  # the ticket keeps what the expert wrote: nothing
    [answer] = service.take_pending("console", lambda address: True)
    assert len(answer.files) == 1
    assert "Het antwoord van de expert staat in de bijlage." in expert_answer_text(answer.answer)  # worded by the bot


def test_a_refused_attachment_is_named_to_the_officer_and_recorded_for_the_maintainer(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    number = _answered(service, smtp_server, ("macro.docm", "application/octet-stream", docx_file(macro=True)),
                       body="Ja, zie ook het model.")
    [answer] = service.take_pending("console", lambda address: True)
    assert answer.files == ()
    assert answer.answer.refused == ("macro.docm",) and answer.answer.answer == "Ja, zie ook het model."
    [inbound] = service.store.inbound("accepted")
    assert inbound["ticket"] == number and "macro.docm (type .docm is not on the allow-list)" in inbound["reason"]


def test_the_delivery_carries_the_files_to_a_push_channel_and_a_moved_data_dir_is_followed(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    _answered(service, smtp_server, ("advies.pdf", "application/pdf", pdf_file()))
    received: list[tuple[str, list[bytes]]] = []

    class Channel:
        async def deliver(self, reply_address, text: str, files=()) -> None:
            received.append((text, [f.path.read_bytes() for f in files]))

    moved = tmp_path / "elsewhere"
    service.attachments_dir.rename(moved)
    service.attachments_dir = moved  # as after moving VRAAGBAAK_HOME: the stored absolute path is stale
    assert asyncio.run(service.deliver({"console": Channel()})) == 1
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


# -- hostile packages (review) -------------------------------------------------------------------------------

ODT_TYPE = b"application/vnd.oasis.opendocument.text"


def test_an_odf_whose_mimetype_is_a_decompression_bomb_is_refused_without_unpacking_it() -> None:
    import tracemalloc
    import zipfile

    bomb = package({"mimetype": ODT_TYPE + b" " * (60 * 1024 * 1024), "content.xml": "<x/>"},
                   compress={"mimetype": zipfile.ZIP_DEFLATED})
    assert len(bomb) < 200_000  # 60 MB packed into a small file
    tracemalloc.start()
    content_type, reason = check_file("advies.odt", bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert content_type is None and "not a .odt" in reason
    assert peak < 5 * 1024 * 1024  # nothing of the 60 MB was unpacked


@pytest.mark.parametrize("parts, why", [
    ({"mimetype": ODT_TYPE, "content.xml": "<x/>", "Scripts/python/run.py": "import os"}, "macros"),
    ({"mimetype": ODT_TYPE, "content.xml": "<x/>", "Basic/Standard/Module1.xml": "<x/>"}, "macros"),
    ({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": "<x/>"}, "not a .odt"),
])
def test_odf_macros_and_a_spreadsheet_renamed_odt_are_refused(parts: dict, why: str) -> None:
    import zipfile

    content_type, reason = check_file("advies.odt", package(parts, compress={"mimetype": zipfile.ZIP_STORED}))
    assert content_type is None and why in reason


DOCX_BASE = {"[Content_Types].xml": "<Types/>", "word/document.xml": "<w:document/>"}


@pytest.mark.parametrize("extra, name, why", [
    ({"word/activeX/activeX1.bin": b"\x00"}, "advies.docx", "embedded programs"),
    ({"word/embeddings/oleObject1.bin": b"\x00"}, "advies.docx", "embedded programs"),
    ({"word/_rels/settings.xml.rels": '<Relationships><Relationship Id="r1" Type="http://schemas.openxmlformats.org/'
      'officeDocument/2006/relationships/attachedTemplate" Target="https://evil.example/t.dotm" '
      'TargetMode="External"/></Relationships>'}, "advies.docx", "external template"),
    ({}, "advies.xlsx", "not a .xlsx"),  # a Word file renamed to .xlsx
])
def test_office_files_with_active_parts_or_of_another_kind_are_refused(extra: dict, name: str, why: str) -> None:
    content_type, reason = check_file(name, package({**DOCX_BASE, **extra}))
    assert content_type is None and why in reason


def test_a_word_file_with_a_local_template_relation_passes() -> None:
    rels = ('<Relationships><Relationship Id="r1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/attachedTemplate" Target="Normal.dotm"/></Relationships>')
    assert check_file("advies.docx", package({**DOCX_BASE, "word/_rels/settings.xml.rels": rels}))[0] is not None


def test_encrypted_or_corrupt_entries_and_too_many_parts_are_refused_not_raised() -> None:
    good = docx_file()
    corrupt = bytearray(good)
    start = corrupt.index(b"word/document.xml") + len(b"word/document.xml")
    corrupt[start + 5:start + 40] = b"\xff" * 35  # inside the deflated document part
    encrypted = bytearray(package({**DOCX_BASE, "word/_rels/settings.xml.rels": "<Relationships/>"}))
    for offset in range(len(encrypted) - 4):  # set the "encrypted" flag on every entry
        if encrypted[offset:offset + 4] in (b"PK\x03\x04", b"PK\x01\x02"):
            flag_at = offset + (6 if encrypted[offset + 2] == 3 else 8)
            encrypted[flag_at] |= 1
    many = package({**DOCX_BASE, **{f"word/media/p{i}.xml": "" for i in range(10_001)}})
    assert check_file("a.docx", bytes(encrypted)) == (None, "damaged package")
    assert check_file("b.docx", many) == (None, "too many entries in the package")
    assert check_file("c.docx", bytes(corrupt))[0] in (None, DOCX_TYPE)  # never an exception
    assert check_file("d.txt", "Artikel 42, één".encode("latin-1")) == (None, "content is not a .txt file")


def test_file_names_lose_bidi_overrides_and_reserved_windows_names() -> None:
    assert safe_name("factuur\u202efdp.exe") == "factuur fdp.exe"
    assert safe_name("nota\x9b.pdf") == "nota.pdf"
    assert safe_name("CON.pdf") == "_CON.pdf" and safe_name("lpt1") == "_lpt1"


def test_attachment_numbers_are_never_reused_and_a_ref_names_the_file_it_was_made_for(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer) -> None:
    service = _service(store_url, pool, tmp_path, smtp_server)
    first = _answered(service, smtp_server, ("geheim.pdf", "application/pdf", pdf_file()))
    [old] = service.store.attachments_of(first)
    service.forget_officer("p1")
    second = _answered(service, smtp_server, ("ander.docx", DOCX_TYPE, docx_file("Iets anders")))
    [new] = service.store.attachments_of(second)
    assert new.id != old.id and new.ref != old.ref
    assert old.ref == f"attachment:{old.id}:{old.sha256[:16]}"


def test_purge_keeps_an_old_file_of_a_ticket_that_is_still_kept(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                                 smtp_server: SmtpServer) -> None:
    clock = Clock()
    service = _service(store_url, pool, tmp_path, smtp_server, clock=clock)
    number = _answered(service, smtp_server, ("a.pdf", "application/pdf", pdf_file()))
    [file] = service.store.attachments_of(number)
    path = service.attachments_dir / file.path.name
    os.utime(path, (clock.now - 400 * 86400,) * 2)  # an old file ...
    clock.now += 10  # ... of a ticket touched recently
    assert service.purge(older_than_days=365)["attachment_files"] == 0 and path.exists()


def test_a_delivery_of_all_parts_and_files_waits_less_than_the_lease() -> None:
    from bot.channels.telegram import deliver_timeout
    from bot.channels.telegram_render import render_text
    from escalation.service import MAX_ANSWER_CHARS
    from escalation.store import LEASE_SECONDS

    longest = len(render_text("x " * MAX_ANSWER_CHARS + "\n" * 40))
    # Waiting past the lease would let another worker claim the delivery and send it twice.
    assert deliver_timeout(longest, MAX_ATTACHMENTS) < LEASE_SECONDS


def test_a_worker_that_did_not_read_the_mail_passes_the_files_on_and_drops_its_copy_once_they_are_erased(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer) -> None:
    reader = _service(store_url, pool, tmp_path / "reader", smtp_server)  # polls the mailbox
    other = _service(store_url, pool, tmp_path / "other", smtp_server)  # another machine: a data dir of its own
    number = _answered(reader, smtp_server, ("Advies.docx", DOCX_TYPE, docx_file("Ja, dat mag.")))
    assert not other.attachments_dir.exists()

    [answer] = other.take_pending("console", lambda address: address.get("user") == "an")  # the delivery
    [file] = answer.files
    assert file.path.parent == other.attachments_dir and file.path.read_bytes() == docx_file("Ja, dat mag.")
    assert stat.S_IMODE(os.stat(file.path).st_mode) == 0o600
    file.path.unlink()
    assert other.attachment(file.id).path.read_bytes() == docx_file("Ja, dat mag.")  # the download link
    assert [f.name for f in other.files_for(number, "p1")] == ["Advies.docx"]  # /bijlagen

    assert other.tidy_copies(older_than_seconds=0) == 0  # still stored: the copy stays
    reader.forget_officer("p1")
    assert other.attachment(file.id) is None and other.store.attachments_of(number) == []
    assert file.path.exists() and other.tidy_copies(older_than_seconds=0) == 1 and not file.path.exists()


def test_bytes_that_do_not_match_their_digest_are_not_passed_on(store_url: str, pool: ExpertPool, tmp_path: Path,
                                                               smtp_server: SmtpServer) -> None:
    import sqlalchemy as sa

    from escalation.store import attachment_contents

    reader = _service(store_url, pool, tmp_path / "reader", smtp_server)
    other = _service(store_url, pool, tmp_path / "other", smtp_server)
    number = _answered(reader, smtp_server, ("a.pdf", "application/pdf", pdf_file()))
    with reader.store.transaction() as conn:
        conn.execute(attachment_contents.update().values(data=b"%PDF-1.7 something else"))
    assert other.files_for(number, "p1") == () and not other.attachments_dir.exists()
    assert [f.name for f in reader.files_for(number, "p1")] == ["a.pdf"]  # the reader's own copy is intact
    with reader.store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(attachment_contents)).scalar() == 1


def test_files_recorded_before_their_bytes_were_kept_in_the_database_are_copied_in_by_the_worker_that_has_them(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer) -> None:
    from escalation.store import attachment_contents

    reader = _service(store_url, pool, tmp_path / "reader", smtp_server)
    other = _service(store_url, pool, tmp_path / "other", smtp_server)
    number = _answered(reader, smtp_server, ("a.pdf", "application/pdf", pdf_file()))
    with reader.store.transaction() as conn:  # as an answer recorded by the previous version left it
        conn.execute(attachment_contents.delete())
    assert other.files_for(number, "p1") == ()
    assert other.tidy_copies() == 0 and other.files_for(number, "p1") == ()  # it has no copy to give
    assert reader.tidy_copies() == 0
    [file] = other.files_for(number, "p1")
    assert file.path.read_bytes() == pdf_file()


def test_bytes_of_an_erased_ticket_are_not_copied_in_again_and_stray_bytes_go_with_the_next_erasure(
        store_url: str, pool: ExpertPool, tmp_path: Path, smtp_server: SmtpServer) -> None:
    import sqlalchemy as sa

    from escalation.store import attachment_contents

    service = _service(store_url, pool, tmp_path, smtp_server)
    number = _answered(service, smtp_server, ("a.pdf", "application/pdf", pdf_file()))
    [file] = service.store.attachments_of(number)
    service.forget_officer("p1")
    service.store.add_content(file.path.name, ticket=number, data=pdf_file())  # a copy-in that lost the race
    with service.store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(attachment_contents)).scalar() == 0
    with service.store.transaction() as conn:  # as SQLite, without row locks, could still let one through
        conn.execute(attachment_contents.insert().values(name=file.path.name, ticket=number, data=b"x",
                                                         created_at=0.0))
    service.forget_officer("someone else")
    with service.store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(attachment_contents)).scalar() == 0
