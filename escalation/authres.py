"""Is a mail really from the domain in its From? Read from the receiving server's Authentication-Results (RFC 8601).

An expert whose client dropped the In-Reply-To / References of our signed question can still answer by the
``[VB-n]`` subject tag, but anyone can write a From header. The mail server that received the reply checked SPF,
DKIM and DMARC and wrote its verdict in an ``Authentication-Results`` header on top of the mail. We trust that
header only when it is the topmost one (the last server added it, so it is ours: anything below came with the mail
and may be forged) and its authserv-id is one the maintainer configured (``VRAAGBAAK_MAIL_TRUSTED_AUTHSERV``; ``microsoft365`` for
Exchange Online, which writes none).

The sender is authenticated when that header says ``dmarc=pass`` for the From domain, or ``dkim=pass`` with a
signing domain (``header.d``) aligned with it, or ``spf=pass`` with an envelope sender (``smtp.mailfrom``) aligned
with it (aligned: the same domain or a parent of it, DMARC's relaxed alignment).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

MICROSOFT_365 = "microsoft365"
"""The name to trust for Exchange Online, whose Authentication-Results carry no authserv-id."""
_COMMENT = re.compile(r"\([^()]*\)")
"""One level of RFC 5322 comment; values are bounded by the parser, and nested comments only hide text."""
_RESULT = re.compile(r"^(dmarc|dkim|spf)\s*=\s*([a-z]+)\b", re.IGNORECASE)
_PROPERTY = re.compile(r"\b(header\.from|header\.d|header\.i|smtp\.mailfrom)\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    """Whether the sender's domain is authenticated, and why (for the log and the quarantine list)."""

    authenticated: bool
    reason: str


def _domain(value: str) -> str:
    return value.rsplit("@", 1)[-1].strip().strip(".").lower()


def _aligned(sender_domain: str, other: str) -> bool:
    other = _domain(other)
    return bool(other) and (sender_domain == other or sender_domain.endswith("." + other))


def check(headers: Sequence[str], sender: str, trusted: Collection[str]) -> Verdict:
    """The verdict of the topmost Authentication-Results header, if its server is trusted, for ``sender``."""
    if not trusted:
        return Verdict(False, "no trusted receiving server configured (VRAAGBAAK_MAIL_TRUSTED_AUTHSERV)")
    if not headers:
        return Verdict(False, "no Authentication-Results header")
    text = _COMMENT.sub(" ", headers[0])
    parts = [part.strip() for part in text.split(";")]
    if "=" in parts[0]:
        # Exchange Online writes no authserv-id: the header starts with a result ("spf=pass ...").
        authserv, results = MICROSOFT_365, parts
    else:
        authserv, results = (parts[0].split() or [""])[0].lower(), parts[1:]
    if authserv not in {t.lower() for t in trusted}:
        return Verdict(False, f"topmost Authentication-Results is from {authserv[:80] or 'nobody'!r}, not trusted")
    sender_domain = _domain(sender)
    for part in results:
        found = _RESULT.match(part)
        if not found or found.group(2).lower() != "pass":
            continue
        method = found.group(1).lower()
        props = {key.lower(): value for key, value in _PROPERTY.findall(part)}
        if method == "dmarc" and _domain(props.get("header.from", "")) == sender_domain:
            return Verdict(True, f"dmarc=pass for {sender_domain} ({authserv})")
        if method == "dkim" and _aligned(sender_domain, props.get("header.d") or props.get("header.i", "")):
            return Verdict(True, f"dkim=pass aligned with {sender_domain} ({authserv})")
        if method == "spf" and _aligned(sender_domain, props.get("smtp.mailfrom", "")):
            return Verdict(True, f"spf=pass aligned with {sender_domain} ({authserv})")
    return Verdict(False, f"no passing DMARC, or aligned DKIM / SPF, for {sender_domain} ({authserv})")
