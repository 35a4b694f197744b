"""ImapMailbox against a real dovecot on loopback (`imap_server` comes from tests/servers.py via conftest)."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from escalation.errors import MailboxError
from escalation.mailbox import ImapMailbox, MailboxMessage
from tests.servers import ImapServer, dovecot, free_port


def make_message(n: int, body: str = "") -> bytes:
    """A reply as a mail client would send it, with bytes a re-serialising parser would not keep as they are."""
    body = body or f"Beste,\r\n\r\nAntwoord {n}: artikel 42 Wet overheidsopdrachten is van toepassing.  \r\n"
    return (
        f"Return-Path: <expert{n}@example.org>\r\n"
        f"From: =?utf-8?q?Expert_J=C3=A9r=C3=B4me?= <expert{n}@example.org>\r\n"
        f"To: experts@example.org\r\n"
        f"Subject: Re: [Vraagbaak #{n}] Innovatiepartnerschap en\r\n"
        f"\tprijsvraag voor ontwerpers\r\n"
        f"Message-ID: <reply-{n}@example.org>\r\n"
        f"Date: Mon, 3 Nov 2025 10:0{n % 10}:00 +0100\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n"
        f"\r\n"
        f"{body}"
        f"From the desk of the expert: één\tregel\r\n"
    ).encode("utf-8")


@pytest.fixture
def server(imap_server: ImapServer) -> ImapServer:
    """The session's dovecot with an empty mailbox."""
    imap_server.reset()
    return imap_server


@pytest.fixture
def open_mailbox(server: ImapServer) -> Iterator[Callable[..., ImapMailbox]]:
    """Build ImapMailbox instances on the test server (plain IMAP on loopback) and close them afterwards."""
    opened: list[ImapMailbox] = []

    def factory(**overrides: object) -> ImapMailbox:
        settings: dict[str, object] = dict(host=server.host, port=server.port, user=server.user,
                                           password=server.password, security="none", timeout=10.0)
        settings.update(overrides)
        mailbox = ImapMailbox(**settings)  # type: ignore[arg-type]
        opened.append(mailbox)
        return mailbox

    yield factory
    for mailbox in opened:
        mailbox.close()


def message_ids(messages: list[MailboxMessage] | list[bytes]) -> list[str]:
    raws = [m.raw if isinstance(m, MailboxMessage) else m for m in messages]
    return [raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode() for raw in raws]


def test_fetch_new_returns_exact_bytes_oldest_first_and_leaves_them_unread(server, open_mailbox):
    sent = [make_message(n) for n in (1, 2, 3)]
    uids = [server.append(raw) for raw in sent]

    messages = open_mailbox().fetch_new()

    assert [m.uid for m in messages] == uids
    assert message_ids(messages) == ["<reply-1@example.org>", "<reply-2@example.org>", "<reply-3@example.org>"]
    assert [m.raw for m in messages] == sent  # byte for byte: folded header, 8-bit body, tab, trailing spaces
    assert all("\\Seen" not in flags for flags in server.flags("INBOX"))
    assert server.list_folder("INBOX") == sent


def test_fetch_new_respects_limit_and_keeps_the_oldest(server, open_mailbox):
    for n in (1, 2, 3):
        server.append(make_message(n))

    messages = open_mailbox().fetch_new(limit=2)

    assert message_ids(messages) == ["<reply-1@example.org>", "<reply-2@example.org>"]
    with pytest.raises(ValueError):
        open_mailbox().fetch_new(limit=0)


def test_connecting_creates_the_folders_with_the_servers_delimiter(server, open_mailbox):
    delimiter, before = server.folders()
    assert delimiter == "."  # dovecot's default for maildir
    assert before == ["INBOX"]

    assert open_mailbox().fetch_new() == []

    _, after = server.folders()
    assert sorted(after) == ["INBOX", "Vraagbaak", "Vraagbaak.Geweigerd", "Vraagbaak.Quarantaine", "Vraagbaak.Verwerkt"]


def test_mark_processed_moves_the_message_out_of_the_inbox(server, open_mailbox):
    first, second = make_message(1), make_message(2)
    server.append(first)
    server.append(second)
    mailbox = open_mailbox()
    uid = mailbox.fetch_new()[0].uid

    mailbox.mark_processed(uid)

    assert message_ids(mailbox.fetch_new()) == ["<reply-2@example.org>"]
    assert server.list_folder("INBOX") == [second]
    assert server.list_folder("Vraagbaak.Verwerkt") == [first]
    assert server.list_folder("Vraagbaak.Geweigerd") == []


def test_moving_leaves_messages_another_client_marked_deleted_alone(server, open_mailbox):
    # Without the server-side MOVE, imap-tools copies, flags \Deleted and EXPUNGEs the whole folder.
    pending_delete, answer = make_message(1), make_message(2)
    server.append(pending_delete, flags=r"(\Deleted)")
    server.append(answer)
    mailbox = open_mailbox()
    messages = mailbox.fetch_new()
    assert [m.raw for m in messages] == [answer]

    mailbox.mark_processed(messages[0].uid)

    assert server.list_folder("INBOX") == [pending_delete]
    assert server.list_folder("Vraagbaak.Verwerkt") == [answer]


def test_mark_rejected_moves_the_message_to_the_rejected_folder(server, open_mailbox):
    spam, answer = make_message(1, body="Koop nu!\r\n"), make_message(2)
    server.append(spam)
    server.append(answer)
    mailbox = open_mailbox()
    spam_uid = mailbox.fetch_new()[0].uid

    mailbox.mark_rejected(spam_uid)

    assert [m.raw for m in mailbox.fetch_new()] == [answer]
    assert server.list_folder("Vraagbaak.Geweigerd") == [spam]
    assert server.list_folder("Vraagbaak.Verwerkt") == []


def test_a_restarted_reader_does_not_see_processed_or_rejected_messages(server, open_mailbox):
    for n in (1, 2, 3):
        server.append(make_message(n))
    first_run = open_mailbox()
    done, rejected, _ = first_run.fetch_new()
    first_run.mark_processed(done.uid)
    first_run.mark_rejected(rejected.uid)
    first_run.close()

    assert message_ids(open_mailbox().fetch_new()) == ["<reply-3@example.org>"]


def test_reconnects_once_when_the_server_dropped_the_connection(server, open_mailbox):
    server.append(make_message(1))
    mailbox = open_mailbox()
    uid = mailbox.fetch_new()[0].uid

    server.kick()  # the server closes our session, as on a restart or idle timeout
    mailbox.mark_processed(uid)

    assert server.list_folder("INBOX") == []
    assert message_ids(server.list_folder("Vraagbaak.Verwerkt")) == ["<reply-1@example.org>"]


def test_close_then_use_again_connects_lazily(server, open_mailbox):
    mailbox = open_mailbox()
    mailbox.close()  # never connected: nothing to do
    assert mailbox.fetch_new() == []
    mailbox.close()
    server.append(make_message(7))
    assert message_ids(mailbox.fetch_new()) == ["<reply-7@example.org>"]


def test_wrong_password_is_a_mailbox_error_without_the_password(server, open_mailbox):
    secret = "Zeer-Geheim-Wachtwoord-8127"
    with pytest.raises(MailboxError) as caught:
        open_mailbox(password=secret).fetch_new()

    assert "login refused" in str(caught.value)
    assert server.user in str(caught.value)
    full_report = "".join(traceback.format_exception(caught.value))
    assert secret not in full_report


def test_server_down_is_a_mailbox_error(open_mailbox):
    mailbox = open_mailbox(port=free_port(), password="niet-in-de-melding")
    with pytest.raises(MailboxError) as caught:
        mailbox.fetch_new()
    assert "could not open the mailbox" in str(caught.value)
    assert "Connection refused" in str(caught.value)
    assert "niet-in-de-melding" not in str(caught.value)


def test_unknown_security_is_rejected_before_connecting():
    with pytest.raises(ValueError, match="ssl"):
        ImapMailbox(host="127.0.0.1", port=1, user="u", password="p", security="ssl")


def test_invalid_uid_is_rejected(open_mailbox):
    with pytest.raises(ValueError):
        open_mailbox().mark_processed("1:*")


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_encrypted_connections_read_the_mailbox(server, open_mailbox, security):
    server.append(make_message(5))
    port = server.tls_port if security == "tls" else server.port

    mailbox = open_mailbox(security=security, port=port, ssl_context=server.ssl_context())

    assert message_ids(mailbox.fetch_new()) == ["<reply-5@example.org>"]


def test_tls_with_an_untrusted_certificate_is_a_mailbox_error(server, open_mailbox):
    mailbox = open_mailbox(security="tls", port=server.tls_port)  # default context: self-signed is not trusted
    with pytest.raises(MailboxError, match="CERTIFICATE_VERIFY_FAILED"):
        mailbox.fetch_new()


@pytest.fixture(scope="module")
def slash_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImapServer]:
    """A second dovecot whose namespace uses '/' between folder levels."""
    with dovecot(Path(tmp_path_factory.mktemp("dovecot-slash")), separator="/") as running:
        yield running


def test_folders_follow_a_slash_delimiter_too(slash_server):
    slash_server.append(make_message(1))
    mailbox = ImapMailbox(host=slash_server.host, port=slash_server.port, user=slash_server.user,
                          password=slash_server.password, security="none", timeout=10.0)
    try:
        mailbox.mark_processed(mailbox.fetch_new()[0].uid)
    finally:
        mailbox.close()

    delimiter, names = slash_server.folders()
    assert delimiter == "/"
    assert sorted(names) == ["INBOX", "Vraagbaak", "Vraagbaak/Geweigerd", "Vraagbaak/Quarantaine", "Vraagbaak/Verwerkt"]
    assert message_ids(slash_server.list_folder("Vraagbaak/Verwerkt")) == ["<reply-1@example.org>"]
