"""Telegram channel settings from ``TELEGRAM_*`` and ``VRAAGBAAK_TELEGRAM_*``.

No SDK import: the settings decide whether the Telegram channel (and python-telegram-bot) is loaded at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from common.errors import ConfigError

WEBHOOK_PATH = "/telegram/webhook"
"""Where Telegram posts updates in webhook mode; ``VRAAGBAAK_TELEGRAM_WEBHOOK_URL`` is the public URL of it."""


@dataclass(frozen=True)
class TelegramSettings:
    """Bot token, Bot API server, who may use the bot, polling or webhook, and the per-user rate limit."""

    token: str = field(repr=False)
    api_base_url: str | None = None
    """Root of a self-hosted Bot API server (or a test stand-in); None for api.telegram.org."""
    allowed_users: frozenset[int] = frozenset()
    mode: str = "polling"
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    rate_per_minute: int = 20
    """Messages, commands, files and button presses per user per minute (refused users too); 0 switches it off."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "TelegramSettings":
        """Read ``TELEGRAM_*`` and ``VRAAGBAAK_TELEGRAM_*``; every problem names its variable (never the secret)."""
        token = (env.get("TELEGRAM_BOT_TOKEN") or "").strip()
        if not token:
            raise ConfigError("TELEGRAM_BOT_TOKEN is required for the Telegram channel (the token @BotFather gave)")
        if not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", token):
            raise ConfigError("TELEGRAM_BOT_TOKEN does not look like a bot token (digits, a colon, then letters)")
        base = (env.get("TELEGRAM_API_BASE_URL") or "").strip() or None
        if base is not None and not re.match(r"^https?://[^/\s]+", base):
            raise ConfigError(f"TELEGRAM_API_BASE_URL must be an http(s) URL, got {base!r}")
        allowed = set()
        for item in re.split(r"[,\s]+", env.get("VRAAGBAAK_TELEGRAM_ALLOWED_USERS") or ""):
            if not item:
                continue
            if not re.fullmatch(r"\d{1,20}", item):
                raise ConfigError("VRAAGBAAK_TELEGRAM_ALLOWED_USERS must be numeric Telegram user ids separated by "
                                  f"commas, got {item!r}")
            allowed.add(int(item))
        mode = (env.get("VRAAGBAAK_TELEGRAM_MODE") or "polling").strip().lower()
        if mode not in ("polling", "webhook"):
            raise ConfigError(f"VRAAGBAAK_TELEGRAM_MODE must be polling or webhook, got {mode!r}")
        webhook_url = (env.get("VRAAGBAAK_TELEGRAM_WEBHOOK_URL") or "").strip() or None
        secret = (env.get("VRAAGBAAK_TELEGRAM_WEBHOOK_SECRET") or "").strip() or None
        if mode == "webhook":
            if webhook_url is None or not re.match(r"^https?://[^/\s]+", webhook_url):
                raise ConfigError("VRAAGBAAK_TELEGRAM_WEBHOOK_URL must be the public http(s) URL of "
                                  f"{WEBHOOK_PATH} when VRAAGBAAK_TELEGRAM_MODE=webhook")
            if secret is None:
                raise ConfigError("VRAAGBAAK_TELEGRAM_WEBHOOK_SECRET is required when VRAAGBAAK_TELEGRAM_MODE=webhook")
            if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", secret):
                raise ConfigError("VRAAGBAAK_TELEGRAM_WEBHOOK_SECRET must be 16 to 256 characters from A-Z, a-z, "
                                  "0-9, _ and - (Telegram's rule)")
        rate = (env.get("VRAAGBAAK_TELEGRAM_RATE_PER_MINUTE") or "20").strip()
        if not rate.isdigit():
            raise ConfigError(f"VRAAGBAAK_TELEGRAM_RATE_PER_MINUTE must be a whole number (0 = off), got {rate!r}")
        return cls(token=token, api_base_url=base, allowed_users=frozenset(allowed), mode=mode,
                   webhook_url=webhook_url, webhook_secret=secret, rate_per_minute=int(rate))

    def bot_urls(self) -> tuple[str, str] | None:
        """PTB's base_url and base_file_url for a self-hosted server (the token is appended by PTB)."""
        if self.api_base_url is None:
            return None
        root = self.api_base_url.rstrip("/")
        root = root[: -len("/bot")] if root.endswith("/bot") else root
        return f"{root}/bot", f"{root}/file/bot"
