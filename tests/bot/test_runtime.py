"""The limits every channel shares (bot.runtime), and how the app sets the ticket limit."""

from __future__ import annotations

import threading

import pytest

from bot import runtime
from bot.runtime import SlidingWindowLimiter
from bot.settings import BotSettings
from retrieval.errors import ConfigError


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


def test_threads_together_get_exactly_the_limit() -> None:
    import time as clock

    def slow_clock() -> float:
        clock.sleep(0.0005)  # hands the GIL over inside the check: without the lock, threads overshoot the limit
        return 0.0

    limiter = SlidingWindowLimiter(50, 3600, clock=slow_clock)
    allowed: list[bool] = []
    lock = threading.Lock()

    def send() -> None:
        for _ in range(40):
            ok, _ = limiter.allow("an")
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(allowed) == 50


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
