"""Helpdesk settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common.errors import ConfigError


@dataclass(frozen=True)
class LlmSettings:
    """An OpenAI-compatible endpoint for the optional generative mode (vLLM, Ollama, Azure OpenAI, ...)."""

    base_url: str
    model: str
    api_key: str
    timeout_seconds: float = 20.0


@dataclass(frozen=True)
class BotSettings:
    """Log retention, the optional generative mode and the ticket limit."""

    retention_days: int = 365
    llm: LlmSettings | None = None
    tickets_per_hour: int = 5
    """Tickets one officer may open in any hour, in every channel (``VRAAGBAAK_TICKETS_PER_HOUR``, 0 = no limit):
    each ticket mails the expert pool."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "BotSettings":
        """Build from ``VRAAGBAAK_*`` variables; the generative mode is on when ``VRAAGBAAK_LLM_BASE_URL`` is set."""
        retention = env.get("VRAAGBAAK_RETENTION_DAYS") or "365"
        if not retention.isdigit() or int(retention) < 1:
            raise ConfigError(f"VRAAGBAAK_RETENTION_DAYS must be a positive whole number, got {retention!r}")
        tickets = (env.get("VRAAGBAAK_TICKETS_PER_HOUR") or "5").strip()
        if not tickets.isdigit():
            raise ConfigError(f"VRAAGBAAK_TICKETS_PER_HOUR must be a whole number (0 = no limit), got {tickets!r}")
        llm = None
        base_url = env.get("VRAAGBAAK_LLM_BASE_URL")
        if base_url:
            model = env.get("VRAAGBAAK_LLM_MODEL")
            if not model:
                raise ConfigError("VRAAGBAAK_LLM_MODEL is required when VRAAGBAAK_LLM_BASE_URL is set")
            api_key = env.get("VRAAGBAAK_LLM_API_KEY")
            if not api_key:
                raise ConfigError("VRAAGBAAK_LLM_API_KEY is required when VRAAGBAAK_LLM_BASE_URL is set "
                                  "(use any value for a local server without keys)")
            timeout = env.get("VRAAGBAAK_LLM_TIMEOUT") or "20"
            try:
                timeout_s = float(timeout)
            except ValueError:
                raise ConfigError(f"VRAAGBAAK_LLM_TIMEOUT must be a number of seconds, got {timeout!r}") from None
            llm = LlmSettings(base_url=base_url, model=model, api_key=api_key, timeout_seconds=timeout_s)
        return cls(retention_days=int(retention), llm=llm, tickets_per_hour=int(tickets))
