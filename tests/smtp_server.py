"""A real SMTP server on loopback (aiosmtpd) that records what it receives."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest


@dataclass
class SmtpServer:
    """Where the server listens and what arrived."""

    host: str
    port: int
    received: list[EmailMessage] = field(default_factory=list)
    controller: object | None = None
    delay: float = 0.0
    """Seconds each DATA command takes (a slow server widens the window in which two senders could race)."""

    def start(self) -> None:
        """Listen (again) on the same port."""
        from aiosmtpd.controller import Controller

        box = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
                if box.delay:
                    await asyncio.sleep(box.delay)
                box.received.append(message_from_bytes(envelope.original_content, policy=policy.default))
                return "250 OK"

        # Controller(port=0) cannot report the port it got: bind an explicit free one.
        self.controller = Controller(Handler(), hostname=self.host, port=self.port)
        self.controller.start()

    def stop(self) -> None:
        """Stop listening (a mail server that is down)."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def expert_reply(sent: EmailMessage, body: str, *, sender: str = "Chloé Dubois <chloe.dubois@example.be>") -> bytes:
    """The bytes of an expert's reply to a ticket mail the server received (threaded on its Message-ID)."""
    from email.utils import make_msgid

    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = "experten@example.be"
    reply["Subject"] = "Antw: " + sent["Subject"]
    reply["Message-ID"] = make_msgid(domain="example.be")
    reply["In-Reply-To"] = sent["Message-ID"]
    reply["References"] = sent["Message-ID"]
    reply.set_content(body)
    return reply.as_bytes(policy=policy.default)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A running SMTP server; tests may stop and start it."""
    server = SmtpServer(host="127.0.0.1", port=free_port())
    server.start()
    yield server
    server.stop()
