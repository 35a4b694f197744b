"""The limits every channel shares (bot.runtime), and how the app sets the ticket limit."""

from __future__ import annotations

import threading

import pytest

from bot import runtime
from bot.runtime import SlidingWindowLimiter
from bot.settings import BotSettings
from common.errors import ConfigError


def test_the_window_slides_and_the_officer_is_told_once_per_episode() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(2, 60, clock=lambda: now[0])
    assert [limiter.allow("an") for _ in range(4)] == [(True, False), (True, False), (False, True), (False, False)]
    assert limiter.allow("bo") == (True, False)  # per key
    now[0] = 59.9
    assert limiter.allow("an") == (False, False)
    now[0] = 60.0  # the first event left the window
    assert limiter.allow("an") == (True, False)
    assert limiter.allow("an") == (True, False) and limiter.allow("an") == (False, True)  # a new episode


def test_zero_means_no_limit() -> None:
    limiter = SlidingWindowLimiter(0, 60)
    assert all(limiter.allow("an") == (True, False) for _ in range(1000))


def test_memory_stays_bounded_by_forgetting_idle_officers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "MAX_TRACKED", 100)
    now = [0.0]
    limiter = SlidingWindowLimiter(5, 60, clock=lambda: now[0])
    for n in range(1000):
        now[0] = n * 1.0  # each officer once; all but the last minute's are idle by the time memory fills
        limiter.allow(n)
    assert len(limiter._events) <= 161


def test_threads_that_share_the_limiter_never_break_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Channels call it from their loops and the core from worker threads: forgetting idle officers while others
    are counted must not raise (without the lock: "dictionary changed size during iteration")."""
    import itertools

    monkeypatch.setattr(runtime, "MAX_TRACKED", 20)
    ticks = itertools.count()
    limiter = SlidingWindowLimiter(5, 1.0, clock=lambda: next(ticks) * 0.001)
    errors: list[BaseException] = []

    def send(thread: int) -> None:
        try:
            for n in range(20_000):
                limiter.allow((thread, n))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(limiter._events) <= 1_000 + 20  # the last second's officers, plus at most one sweep's worth


def test_the_ticket_limit_is_read_from_the_environment() -> None:
    assert BotSettings.from_env({}).tickets_per_hour == 5
    assert BotSettings.from_env({"VRAAGBAAK_TICKETS_PER_HOUR": "0"}).tickets_per_hour == 0
    with pytest.raises(ConfigError, match="VRAAGBAAK_TICKETS_PER_HOUR"):
        BotSettings.from_env({"VRAAGBAAK_TICKETS_PER_HOUR": "veel"})


def test_the_helpdesk_is_built_once_when_threads_ask_for_it_together() -> None:
    import time as clock

    built: list[int] = []

    def build() -> object:
        clock.sleep(0.05)  # loading the model and the index takes a while: long enough for others to arrive
        built.append(1)
        return object()

    core = runtime.Core(build)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(core.helpdesk)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1 and len({id(h) for h in seen}) == 1


def test_events_of_one_conversation_run_one_at_a_time_in_arrival_order_and_others_meanwhile() -> None:
    import asyncio

    in_order = runtime.InOrder()
    log: list[str] = []

    async def event(conversation: str, name: str, work: float) -> None:
        async with in_order(conversation):
            log.append(f"start {name}")
            await asyncio.sleep(work)
            log.append(f"end {name}")

    async def scenario() -> None:
        await asyncio.gather(event("a", "a1", 0.05), event("a", "a2", 0.0), event("b", "b1", 0.0))
        assert len(in_order) == 0  # no lock outlives its conversation's last event

    asyncio.run(scenario())
    assert log.index("end a1") < log.index("start a2")  # the later event of a waits, whatever its length
    assert log.index("end b1") < log.index("end a1")  # b does not wait for a


def test_in_a_shared_chat_each_officer_has_a_conversation_of_their_own() -> None:
    assert runtime.conversation_key("teams", "19:x", "u1", shared=True) != \
        runtime.conversation_key("teams", "19:x", "u2", shared=True)
    assert runtime.conversation_key("telegram", 5, 5, shared=False) == "telegram:5"
