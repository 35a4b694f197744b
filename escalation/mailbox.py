"""The expert mailbox read over IMAP: new answers come in, processed ones are moved to a folder."""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from imap_tools import BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import ImapToolsError, MailboxLoginError

from escalation.errors import MailboxError
from escalation.settings import IMAP_SECURITY

logger = logging.getLogger(__name__)

SECURITY_MODES = IMAP_SECURITY
_UID = re.compile(rb"\bUID\s+(\d+)")
_T = TypeVar("_T")

# The connection is gone (server restart, idle timeout, network): worth one reconnect.
_DROPPED: tuple[type[BaseException], ...] = (imaplib.IMAP4.abort, OSError, EOFError)


@dataclass(frozen=True)
class MailboxMessage:
    """One message in the expert mailbox: its IMAP UID and the exact bytes the server stores."""

    uid: str
    raw: bytes


class Mailbox(Protocol):
    """Port for the expert mailbox; processing state is kept by moving messages between folders."""

    def fetch_new(self, *, limit: int = 50) -> list[MailboxMessage]:
        """Messages still in the inbox folder, oldest first, without marking them seen."""
        ...

    def mark_processed(self, uid: str) -> None:
        """Move a message to the processed folder (after the caller committed to its database)."""
        ...

    def mark_rejected(self, uid: str) -> None:
        """Move a message to the rejected folder."""
        ...

    def mark_quarantined(self, uid: str) -> None:
        """Move a message to the quarantine folder (a maintainer decides: `vraagbaak tickets release`)."""
        ...

    def close(self) -> None:
        """Log out; the next call connects again."""
        ...


class _RawFetch:
    """Stands in for imap-tools' MailMessage: keeps the fetched bytes as they are, without parsing them."""

    def __init__(self, fetch_data: list) -> None:
        self.uid: str | None = None
        self.raw = b""
        for item in fetch_data:
            # imaplib gives (b'1 (UID 7 FLAGS () BODY[] {123}', b'<message>') plus loose bytes such as b')'.
            head = item[0] if isinstance(item, tuple) else item
            if isinstance(item, tuple):
                self.raw = item[1]
            if isinstance(head, bytes) and self.uid is None:
                match = _UID.search(head)
                if match:
                    self.uid = match.group(1).decode()


class ImapMailbox:
    """imap-tools over TLS, STARTTLS or plain (loopback tests) IMAP."""

    def __init__(self, *, host: str, port: int, user: str, password: str, security: str = "tls",
                 folder: str = "INBOX", processed_folder: str = "Vraagbaak/Verwerkt",
                 rejected_folder: str = "Vraagbaak/Geweigerd", quarantine_folder: str = "Vraagbaak/Quarantaine",
                 timeout: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        if security not in SECURITY_MODES:
            raise ValueError(f"unknown IMAP security {security!r}; use one of {', '.join(SECURITY_MODES)}")
        self._host = host
        self._port = port
        self._user = user
        self._password = password
        self._security = security
        # Folder names use "/" between levels; they are translated to the server's own delimiter.
        self._folder = folder
        self._processed = processed_folder
        self._rejected = rejected_folder
        self._quarantine = quarantine_folder
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._box: BaseMailBox | None = None
        self._names: dict[str, str] = {}

    def __enter__(self) -> ImapMailbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def _where(self) -> str:
        return f"{self._user} on {self._host}:{self._port}"

    def fetch_new(self, *, limit: int = 50) -> list[MailboxMessage]:
        """Messages still in the inbox folder, oldest first, without marking them seen."""
        if limit < 1:
            raise ValueError("limit must be at least 1")

        def fetch(box: BaseMailBox) -> list[MailboxMessage]:
            uids = sorted(box.uids("UNDELETED", charset=None), key=int)[:limit]
            if not uids:  # imap-tools treats an empty uid_list as "search ALL"
                return []
            messages = []
            # BODY.PEEK[] (mark_seen=False) leaves \Seen alone: a human reading the mailbox still sees it as new.
            for item in box.fetch(uid_list=uids, mark_seen=False):
                if item.uid is None:
                    raise MailboxError(f"IMAP server sent a message without UID for {self._where}")
                messages.append(MailboxMessage(uid=item.uid, raw=item.raw))
            return sorted(messages, key=lambda m: int(m.uid))

        messages = self._call("fetch new messages", fetch)
        logger.debug("Fetched %d message(s) from %s", len(messages), self._where)
        return messages

    def mark_processed(self, uid: str) -> None:
        """Move a message to the processed folder (after the caller committed to its database)."""
        self._move(uid, self._processed)

    def mark_rejected(self, uid: str) -> None:
        """Move a message to the rejected folder."""
        self._move(uid, self._rejected)

    def mark_quarantined(self, uid: str) -> None:
        """Move a message to the quarantine folder."""
        self._move(uid, self._quarantine)

    def close(self) -> None:
        """Log out; the next call connects again."""
        box, self._box = self._box, None
        if box is None:
            return
        try:
            box.logout()
        except (ImapToolsError, imaplib.IMAP4.error, *_DROPPED) as exc:
            # The connection is being thrown away either way; say so without failing the caller.
            logger.debug("IMAP logout for %s failed: %s", self._where, self._scrub(str(exc)))

    def _move(self, uid: str, folder: str) -> None:
        if not uid.isdigit():
            raise ValueError(f"not an IMAP UID: {uid!r}")

        def move(box: BaseMailBox) -> None:
            box.move(uid, self._names[folder])

        self._call(f"move message {uid} to {folder}", move)
        logger.info("Moved message %s to %s", uid, folder)

    def _call(self, what: str, action: Callable[[BaseMailBox], _T]) -> _T:
        """Run `action` on a live connection; reconnect once when the connection turns out to be dropped."""
        box = self._connection()
        try:
            return action(box)
        except _DROPPED as exc:
            logger.warning("IMAP connection to %s dropped (%s); reconnecting once",
                           self._where, self._scrub(str(exc)) or type(exc).__name__)
            self._discard()
        except (ImapToolsError, imaplib.IMAP4.error) as exc:
            raise self._error(f"could not {what}", exc) from exc
        box = self._connection()
        try:
            return action(box)
        except _DROPPED as exc:
            self._discard()
            raise self._error(f"could not {what} (connection dropped again)", exc) from exc
        except (ImapToolsError, imaplib.IMAP4.error) as exc:
            raise self._error(f"could not {what}", exc) from exc

    def _connection(self) -> BaseMailBox:
        if self._box is not None:
            return self._box
        try:
            box = self._open()
        except MailboxLoginError as exc:
            raise self._error("login refused (check user and password)", exc) from exc
        except (ImapToolsError, imaplib.IMAP4.error, *_DROPPED) as exc:
            raise self._error(f"could not open the mailbox over {self._security} IMAP", exc) from exc
        self._box = box
        return box

    def _open(self) -> BaseMailBox:
        box: BaseMailBox
        # imaplib's own default context checks neither the certificate nor the host name; this one does.
        context = self._ssl_context or ssl.create_default_context()
        if self._security == "tls":
            box = MailBox(self._host, self._port, timeout=self._timeout, ssl_context=context)
        elif self._security == "starttls":
            box = MailBoxStartTls(self._host, self._port, timeout=self._timeout, ssl_context=context)
        else:
            box = MailBoxUnencrypted(self._host, self._port, timeout=self._timeout)
        try:
            box.email_message_class = _RawFetch  # type: ignore[assignment]
            box.login(self._user, self._password, initial_folder=None)
            # imaplib keeps the capabilities from before login; servers such as dovecot announce MOVE only
            # after it, and without MOVE imap-tools falls back to COPY + \Deleted + EXPUNGE of the whole folder.
            typ, data = box.client.capability()
            if typ == "OK" and data and data[-1]:
                box.client.capabilities = tuple(data[-1].decode("ascii", "replace").upper().split())
            self._names = self._ensure_folders(box)
            box.folder.set(self._names[self._folder])
        except BaseException:
            try:
                box.client.shutdown()
            except OSError:
                pass
            raise
        logger.info("Connected to IMAP %s (%s)", self._where, self._security)
        return box

    def _ensure_folders(self, box: BaseMailBox) -> dict[str, str]:
        """Map our folder names to the server's spelling and create the processed/rejected folders if missing."""
        root = box.folder.list("", "")  # LIST "" "" answers with the hierarchy delimiter (RFC 3501 6.3.8)
        delimiter = root[0].delim if root else "/"
        names = {}
        for name in (self._folder, self._processed, self._rejected, self._quarantine):
            names[name] = name if delimiter.upper() in ("NIL", "", "/") else name.replace("/", delimiter)
        for name in (self._processed, self._rejected, self._quarantine):
            server_name = names[name]
            if not box.folder.exists(server_name):
                box.folder.create(server_name)
                box.folder.subscribe(server_name, True)
                logger.info("Created IMAP folder %s for %s", server_name, self._where)
        return names

    def _discard(self) -> None:
        box, self._box = self._box, None
        if box is not None:
            try:
                box.client.shutdown()
            except OSError:
                pass

    def _scrub(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text

    def _error(self, what: str, exc: BaseException) -> MailboxError:
        detail = self._scrub(str(exc)) or type(exc).__name__
        return MailboxError(f"IMAP mailbox {self._where}: {what}: {detail}")
