"""Sending mail: the Mailer port and its SMTP implementation (STARTTLS / TLS / none, password or XOAUTH2)."""

from __future__ import annotations

import base64
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from escalation.errors import MailError


class Mailer(Protocol):
    """Delivers one message or raises MailError."""

    def send(self, message: EmailMessage) -> None:
        """Send a message."""
        ...


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the municipality's mail server."""

    host: str
    port: int
    security: str = "starttls"
    """none | starttls | tls"""
    user: str | None = None
    password: str | None = None
    oauth_token: str | None = None
    """An OAuth2 access token for XOAUTH2 (Exchange Online); used instead of the password when set."""
    timeout: float = 20.0


class SmtpMailer:
    """smtplib, one connection per send (mails are rare; the server may drop idle connections)."""

    def __init__(self, settings: SmtpSettings, *, ssl_context: ssl.SSLContext | None = None) -> None:
        if settings.security not in ("none", "starttls", "tls"):
            raise ValueError("VRAAGBAAK_SMTP_SECURITY must be none, starttls or tls")
        self.settings = settings
        self._context = ssl_context or ssl.create_default_context()

    def send(self, message: EmailMessage) -> None:
        """Send, mapping every failure to MailError (the message never contains credentials)."""
        s = self.settings
        try:
            if s.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._context)
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with client:
                client.ehlo()
                if s.security == "starttls":
                    client.starttls(context=self._context)
                    client.ehlo()
                if s.oauth_token and s.user:
                    raw = f"user={s.user}\x01auth=Bearer {s.oauth_token}\x01\x01".encode()
                    code, reply = client.docmd("AUTH", "XOAUTH2 " + base64.b64encode(raw).decode())
                    if code == 334:
                        # A refused token comes back as a 334 error challenge (Gmail, RFC 7628); an empty
                        # reply ends the exchange and fetches the real 535, instead of QUIT being read as SASL.
                        code, reply = client.docmd("")
                    if code != 235:
                        raise MailError(f"XOAUTH2 authentication refused by {s.host} (code {code})")
                elif s.user and s.password:
                    client.login(s.user, s.password)
                client.send_message(message)
        except MailError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise MailError(f"SMTP authentication failed at {s.host}:{s.port} (code {exc.smtp_code})") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(f"could not send via {s.host}:{s.port}: {exc.__class__.__name__}: {exc}") from None
