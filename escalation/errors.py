"""Errors raised by the escalation package."""

from common.errors import ConfigError


class EscalationError(Exception):
    """Base class; the message is shown to a maintainer."""


class MailError(EscalationError):
    """Sending a mail failed (server down, refused, authentication)."""


class MailboxError(EscalationError):
    """Reading the expert mailbox failed."""


class TicketNotFound(EscalationError):
    """No ticket with that number."""


class PoolConfigError(EscalationError, ConfigError):
    """The expert pool file is missing or invalid."""
