"""Escalation settings, read once from the environment (documented in .env.example)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.database import database_url
from common.errors import ConfigError
from escalation.errors import EscalationError
from escalation.mailer import SmtpSettings


IMAP_SECURITY = ("tls", "starttls", "none")


class EscalationConfigError(EscalationError, ConfigError):
    """A mail setting is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class ImapSettings:
    """The expert mailbox that replies arrive in."""

    host: str
    port: int
    user: str
    password: str
    security: str = "tls"
    folder: str = "INBOX"


@dataclass(frozen=True)
class EscalationSettings:
    """Pool, database, mail out and mail in."""

    home: Path
    database_url: str
    experts_file: Path | None
    smtp: SmtpSettings | None
    imap: ImapSettings | None
    mail_from: str
    reply_to: str
    mail_domain: str
    poll_seconds: float = 60.0
    trusted_authserv: tuple[str, ...] = ()
    """authserv-ids of the receiving mail servers whose Authentication-Results are believed."""

    @classmethod
    def from_env(cls, home: Path, env: Mapping[str, str]) -> "EscalationSettings":
        """Build from ``VRAAGBAAK_*`` variables; SMTP and IMAP are off unless their host is set."""
        url = database_url(home, env)
        experts = env.get("VRAAGBAAK_EXPERTS_FILE")
        mail_from = env.get("VRAAGBAAK_MAIL_FROM") or "vraagbaak@localhost"
        smtp = None
        if env.get("VRAAGBAAK_SMTP_HOST"):
            security = (env.get("VRAAGBAAK_SMTP_SECURITY") or "starttls").lower()
            if security not in ("none", "starttls", "tls"):
                raise EscalationConfigError("VRAAGBAAK_SMTP_SECURITY must be none, starttls or tls")
            user = env.get("VRAAGBAAK_SMTP_USER") or None
            password = env.get("VRAAGBAAK_SMTP_PASSWORD") or None
            token = env.get("VRAAGBAAK_SMTP_OAUTH_TOKEN") or None
            if token and not user:
                raise EscalationConfigError("VRAAGBAAK_SMTP_OAUTH_TOKEN needs VRAAGBAAK_SMTP_USER (the mailbox address)")
            if user and not (password or token):
                raise EscalationConfigError("VRAAGBAAK_SMTP_USER is set: also set VRAAGBAAK_SMTP_PASSWORD "
                                            "(or VRAAGBAAK_SMTP_OAUTH_TOKEN for XOAUTH2)")
            smtp = SmtpSettings(host=env["VRAAGBAAK_SMTP_HOST"],
                                port=_port(env, "VRAAGBAAK_SMTP_PORT", 465 if security == "tls" else 587),
                                security=security, user=user, password=password, oauth_token=token)
        imap = None
        if env.get("VRAAGBAAK_IMAP_HOST"):
            user = env.get("VRAAGBAAK_IMAP_USER")
            password = env.get("VRAAGBAAK_IMAP_PASSWORD")
            if not user or not password:
                raise EscalationConfigError("VRAAGBAAK_IMAP_HOST is set: also set VRAAGBAAK_IMAP_USER and "
                                            "VRAAGBAAK_IMAP_PASSWORD")
            security = (env.get("VRAAGBAAK_IMAP_SECURITY") or "tls").lower()
            if security not in IMAP_SECURITY:
                raise EscalationConfigError(f"VRAAGBAAK_IMAP_SECURITY must be {', '.join(IMAP_SECURITY)}, "
                                            f"got {security!r}")
            imap = ImapSettings(host=env["VRAAGBAAK_IMAP_HOST"],
                                port=_port(env, "VRAAGBAAK_IMAP_PORT", 993 if security == "tls" else 143),
                                user=user, password=password, security=security,
                                folder=env.get("VRAAGBAAK_IMAP_FOLDER") or "INBOX")
        reply_to = env.get("VRAAGBAAK_MAIL_REPLY_TO") or (imap.user if imap and "@" in imap.user else mail_from)
        domain = mail_from.rsplit("@", 1)[-1].strip(">") or "vraagbaak.local"
        poll = env.get("VRAAGBAAK_IMAP_POLL_SECONDS") or "60"
        trusted = tuple(t.strip().lower() for t in (env.get("VRAAGBAAK_MAIL_TRUSTED_AUTHSERV") or "").split(",")
                        if t.strip())
        return cls(home=home, database_url=url, experts_file=Path(experts) if experts else None, smtp=smtp,
                   imap=imap, mail_from=mail_from, reply_to=reply_to, mail_domain=domain,
                   poll_seconds=float(poll) if poll.replace(".", "", 1).isdigit() else 60.0,
                   trusted_authserv=trusted)


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise EscalationConfigError(f"{name} must be a port number, got {raw!r}")
    return int(raw)
