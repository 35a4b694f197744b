"""Is a mail really from the domain in its From? Read from the receiving server's Authentication-Results (RFC 8601).

An expert whose client dropped the In-Reply-To / References of our signed question can still answer by the
``[VB-n]`` subject tag, but anyone can write a From header. The mail server that received the reply checked SPF,
DKIM and DMARC and wrote its verdict in an ``Authentication-Results`` header on top of the mail. We trust that
header only when it is the topmost one (the last server added it, so it is ours: anything below came with the mail
and may be forged) and its authserv-id is one the maintainer configured (``VRAAGBAAK_MAIL_TRUSTED_AUTHSERV``;
``microsoft365`` for Exchange Online, which writes none).

The sender is authenticated when that header says ``dmarc=pass`` for the From domain, or ``dkim=pass`` with the
signing domain (``header.d``) equal to it, or ``spf=pass`` with the envelope sender's (``smtp.mailfrom``) domain
equal to it: strict alignment, because without a public-suffix list a "parent domain" could be ``be``. A
``dmarc=fail`` for the From domain is final. The header is tokenised as RFC 8601 writes it (comments, nested or
not, and quoted strings are skipped as a whole, so a quoted local part cannot smuggle in a ``;dmarc=pass``), and a
result that names a property twice is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

MICROSOFT_365 = "microsoft365"
"""The name to trust for Exchange Online, whose Authentication-Results carry no authserv-id."""
_RESULT = re.compile(r"^(dmarc|dkim|spf)\s*=\s*([a-z]+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    """Whether the sender's domain is authenticated, and why (for the log and the quarantine list)."""

    authenticated: bool
    reason: str
    failed: bool = False
    """A trusted server said the From domain failed DMARC: a forgery even when the references look right."""


def _segments(header: str) -> list[list[str]]:
    """The header's ";"-separated parts, each a list of words: comments dropped, quoted strings kept as one word
    (with their quotes), "=" kept apart so "a = b" and "a=b" read the same. One pass, linear in the length."""
    parts: list[list[str]] = [[]]
    word: list[str] = []
    depth = 0
    quoted = False
    escaped = False

    def end_word() -> None:
        if word:
            parts[-1].append("".join(word))
            word.clear()

    for char in header:
        if escaped:
            escaped = False
            if quoted:
                word.append(char)
            continue
        if char == "\\" and (quoted or depth):
            escaped = True
        elif quoted:
            word.append(char)
            if char == '"':
                quoted = False
        elif depth:
            depth += {"(": 1, ")": -1}.get(char, 0)
        elif char == "(":
            end_word()
            depth = 1
        elif char == '"':
            word.append(char)
            quoted = True
        elif char == ";":
            end_word()
            parts.append([])
        elif char == "=":
            end_word()
            parts[-1].append("=")
        elif char.isspace():
            end_word()
        else:
            word.append(char)
    end_word()
    return [p for p in parts if p]


def _pairs(words: list[str]) -> list[tuple[str, str]] | None:
    """``name = value`` pairs of one result, or None when it is not made of such pairs."""
    if len(words) % 3 or any(words[i + 1] != "=" for i in range(0, len(words), 3)):
        return None
    return [(words[i].lower(), words[i + 2]) for i in range(0, len(words), 3)]


def _domain(value: str) -> str | None:
    """The domain of an address or a domain property; None for a quoted or malformed value."""
    if '"' in value:
        return None
    domain = value.rsplit("@", 1)[-1].strip(".").lower()
    return domain if re.fullmatch(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+", domain) else None


def check(headers: Sequence[str], sender: str, trusted: Collection[str]) -> Verdict:
    """The verdict of the topmost Authentication-Results header, if its server is trusted, for ``sender``."""
    if not trusted:
        return Verdict(False, "no trusted receiving server configured (VRAAGBAAK_MAIL_TRUSTED_AUTHSERV)")
    if not headers:
        return Verdict(False, "no Authentication-Results header")
    segments = _segments(headers[0])
    if not segments:
        return Verdict(False, "empty Authentication-Results header")
    if "=" in segments[0]:
        authserv, results = MICROSOFT_365, segments  # Exchange Online: the header starts with a result
    else:
        authserv, results = segments[0][0].lower(), segments[1:]
    if authserv not in {t.lower() for t in trusted}:
        return Verdict(False, f"topmost Authentication-Results is from {authserv[:80]!r}, not trusted")
    sender_domain = _domain(sender)
    passed = None
    for words in results:
        pairs = _pairs(words)
        if not pairs or not _RESULT.match(f"{pairs[0][0]}={pairs[0][1]}"):
            continue
        (method, result), props = pairs[0], pairs[1:]
        if len({name for name, _ in props}) != len(props):
            continue  # a property named twice: which one would the server have meant?
        values = dict(props)
        result = result.lower()
        if method == "dmarc" and _domain(values.get("header.from", "")) == sender_domain:
            if result == "fail":
                return Verdict(False, f"dmarc=fail for {sender_domain} ({authserv})", failed=True)
            if result == "pass":
                passed = passed or f"dmarc=pass for {sender_domain} ({authserv})"
        elif result == "pass" and method == "dkim" and _domain(values.get("header.d", "")) == sender_domain:
            passed = passed or f"dkim=pass for {sender_domain} ({authserv})"
        elif result == "pass" and method == "spf" and _domain(values.get("smtp.mailfrom", "")) == sender_domain:
            passed = passed or f"spf=pass for {sender_domain} ({authserv})"
    if passed and sender_domain:
        return Verdict(True, passed)
    return Verdict(False, f"no passing DMARC, DKIM or SPF for {sender_domain} ({authserv})")
