"""Two workers on one database behave as one: conversation memory, rate limits, handled ids and `/procedure`
walks live in the shared database (SQLite and PostgreSQL), not in a worker's memory."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.audit import AuditLog
from bot.conversation import Turn
from bot.core import HelpdeskService
from bot.messages import Decision, Incoming
from bot.policy import load_rules
from bot.shared_state import (SharedConversationMemory, SharedLease, SharedRateLimiter, SharedSeenIds,
                              SharedState, SharedUpdateInbox, SharedWalkStore)
from bot.worker import EscalationWorker
from tests.bot.test_helpdesk_spec import FakeRetriever, RecordingEscalator, ScriptedRouting


class Clock:
    """Wall-clock time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def url(store_url: str) -> str:
    """The shared database: the ticket database's URL (SQLite, then PostgreSQL)."""
    return store_url


@pytest.fixture
def workers(url: str):
    """Two workers' views of one database, on one clock."""
    clock = Clock()
    one, two = SharedState(url, clock=clock), SharedState(url, clock=clock)
    yield one, two, clock
    one.close()
    two.close()


def _turn(question: str, at: float, ticket: int | None = None) -> Turn:
    return Turn(question=question, query=question, reply_id=f"r-{question}", decision=Decision.ANSWER,
                chunk_ids=("gids:ip:0",), at=at, ticket=ticket, full_question=question + " (voluit)")


def test_a_conversation_goes_on_at_the_other_worker(workers) -> None:
    one, two, clock = workers
    here, there = SharedConversationMemory(one, max_turns=2), SharedConversationMemory(two, max_turns=2)
    for n, question in enumerate(["Eerste vraag?", "Tweede vraag?", "Derde vraag?"]):
        here.add("telegram:chat:1", _turn(question, clock.now + n, ticket=7 if n == 2 else None))
    history = there.history("telegram:chat:1")
    assert [t.question for t in history] == ["Tweede vraag?", "Derde vraag?"]  # the newest two, oldest first
    assert history[-1] == _turn("Derde vraag?", clock.now + 2, ticket=7)  # every field read back as written
    assert there.history("telegram:chat:2") == []
    clock.now += 3700
    assert there.history("telegram:chat:1") == []  # an hour later it is forgotten
    clock.now -= 3700
    there.reset("telegram:chat:1")  # /reset at the other worker
    assert here.history("telegram:chat:1") == []


def test_a_rate_limit_counts_the_messages_sent_to_every_worker(workers) -> None:
    one, two, clock = workers
    here, there = SharedRateLimiter(one, "teams", 3, 60), SharedRateLimiter(two, "teams", 3, 60)
    assert [here.allow("an"), there.allow("an"), here.allow("an")] == [(True, False)] * 3
    assert there.allow("an") == (False, True)  # told once, by whichever worker refuses first
    assert here.allow("an") == (False, False)
    assert there.allow("bert") == (True, False)  # another officer
    assert SharedRateLimiter(one, "telegram", 3, 60).allow("an") == (True, False)  # another channel's limit
    clock.now += 61
    assert here.allow("an") == (True, False)
    assert SharedRateLimiter(one, "tickets", 0, 60).allow("an") == (True, False)  # 0: no limit


def test_a_retry_that_reaches_the_other_worker_is_recognised(workers) -> None:
    one, two, clock = workers
    here, there = SharedSeenIds(one, ttl_seconds=600), SharedSeenIds(two, ttl_seconds=600)
    assert here.first_time("teams|a:1|act-1") is True
    assert there.first_time("teams|a:1|act-1") is False  # in progress at the other worker
    here.done("teams|a:1|act-1")
    clock.now += 60
    assert there.first_time("teams|a:1|act-1") is False  # answered: a duplicate for the id's lifetime
    assert there.first_time("teams|a:1|act-2") is True
    clock.now += 601
    assert there.first_time("teams|a:1|act-1") is True  # long expired: the id may come back
    assert here.first_time("teams|a:1|act-1") is False


def test_a_retry_of_a_turn_whose_worker_died_is_answered_by_another(workers) -> None:
    # Marked seen on arrival for good, a retry after a crash mid-turn was dropped: that question got no answer.
    one, two, clock = workers
    dying, other = SharedSeenIds(one, in_progress_seconds=12), SharedSeenIds(two, in_progress_seconds=12)
    assert dying.first_time("teams|a:1|act-9") is True  # the worker dies before done()
    assert other.first_time("teams|a:1|act-9") is False  # a retry at once: the turn may still be running
    assert other.answered("teams|a:1|act-9") is False  # so the retry is asked to come back, not dropped
    clock.now += 15  # Teams retries after ~15 s without an HTTP answer
    assert other.first_time("teams|a:1|act-9") is True
    assert dying.first_time("teams|a:1|act-9") is False
    clock.now += 10
    other.renew("teams|a:1|act-9")  # a slow turn keeps its claim...
    clock.now += 10
    assert dying.first_time("teams|a:1|act-9") is False and dying.answered("teams|a:1|act-9") is False
    clock.now += 0.5  # ...and a clock a little ahead on the other machine does not make it look done
    other.done("teams|a:1|act-9")
    assert dying.answered("teams|a:1|act-9") is True  # answered: a later retry is a duplicate
    other.renew("teams|a:1|act-9")  # a renewal after the end changes nothing
    clock.now += 60
    assert dying.first_time("teams|a:1|act-9") is False


def test_a_procedure_walk_goes_on_at_the_other_worker_and_expired_rows_are_purged(workers) -> None:
    one, two, clock = workers
    here, there = SharedWalkStore(one), SharedWalkStore(two)
    assert there.get("c1") is None
    here.put("c1", [("doel", 1)])
    there.put("c1", [("doel", 1), ("markt", 0)])
    assert here.get("c1") == [("doel", 1), ("markt", 0)]
    here.clear("c1")
    assert there.get("c1") is None

    here.put("c2", [("doel", 2)])
    SharedConversationMemory(one).add("c2", _turn("Vraag?", clock.now))
    SharedRateLimiter(one, "teams", 1, 60).allow("an")
    SharedRateLimiter(one, "teams", 1, 60).allow("an")  # refused: a notice is kept
    SharedSeenIds(one, ttl_seconds=60).first_time("x")
    assert one.purge(turns_older_than=3600, walks_older_than_days=7) == 0  # nothing has expired yet
    clock.now += 8 * 86400
    assert two.purge(turns_older_than=3600, walks_older_than_days=7) == 5
    assert there.get("c2") is None and SharedConversationMemory(two).history("c2") == []


def test_expert_on_one_worker_sends_the_question_asked_at_the_other(url: str, tmp_path: Path) -> None:
    # Behind a proxy the question and the press of "Vraag een expert" can reach different workers.
    escalator = RecordingEscalator()

    def worker(name: str) -> HelpdeskService:
        state = SharedState(url)
        return HelpdeskService(retriever=FakeRetriever(), audit=AuditLog(
            f"sqlite:///{tmp_path / name}.sqlite", key=b"k" * 32),
                               escalator=escalator, memory=SharedConversationMemory(state), rules=load_rules(),
                               router=ScriptedRouting(), walks=SharedWalkStore(state),
                               ticket_limit=SharedRateLimiter(state, "tickets", 1, 3600))

    one, two = worker("one"), worker("two")

    def say(service: HelpdeskService, text: str) -> str:
        return service.handle(Incoming(channel="teams", conversation_id="a:1", user_id="an", text=text)).text

    say(one, "Wanneer mag ik een innovatiepartnerschap gebruiken?")
    say(two, "/expert")
    assert [t["question"] for t in escalator.opened] == ["Wanneer mag ik een innovatiepartnerschap gebruiken?"]
    assert "1" in say(one, "/expert Nog een vraag voor de expertenpool over een PCP?")  # the hour's one ticket
    assert len(escalator.opened) == 1  # counted over both workers


def test_one_worker_at_a_time_holds_the_poller_lease_and_a_dead_one_is_replaced(workers) -> None:
    one, two, clock = workers
    first = SharedLease(one, "escalation-poller", "host-a:1", seconds=600)
    second = SharedLease(two, "escalation-poller", "host-b:2", seconds=600)
    assert first.hold() and not second.hold()
    clock.now += 300
    assert first.hold() and not second.hold()  # renewed by its holder
    clock.now += 601  # the holder died without releasing it
    assert second.hold() and not first.hold()
    second.release()  # a clean stop hands it over at once
    assert first.hold()


def test_only_the_lease_holder_polls_the_mailbox_reminds_and_purges(workers) -> None:
    one, two, _ = workers
    polled: list[str] = []

    class Service:
        """Counts what each worker's pass does."""

        def __init__(self, name: str) -> None:
            self.name = name

        def send_outbox(self) -> tuple[int, int]:
            polled.append(f"{self.name}:send")
            return 0, 0

        async def deliver(self, deliverers, stop=None) -> int:
            polled.append(f"{self.name}:deliver")
            return 0

        def remind_overdue(self) -> int:
            polled.append(f"{self.name}:remind")
            return 0

        def tidy_copies(self) -> int:
            polled.append(f"{self.name}:tidy")
            return 0

    def mailbox(name: str):
        polled.append(f"{name}:intake")
        return None

    passes = [EscalationWorker(Service(name), lambda name=name: mailbox(name),  # type: ignore[arg-type]
                               purge=lambda name=name: polled.append(f"{name}:purge"),
                               leader=SharedLease(state, "escalation-poller", name, seconds=600).hold)
              for name, state in (("a", one), ("b", two))]
    for worker in passes * 2:
        assert worker.run_once()["errors"] == 0
    assert sorted(set(polled)) == ["a:deliver", "a:intake", "a:purge", "a:remind", "a:send", "a:tidy",
                                   "b:deliver", "b:send", "b:tidy"]  # each tidies the copies on its own disk


def test_a_database_that_cannot_be_opened_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="VRAAGBAAK_DATABASE_URL") as refused:
        SharedState(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'tickets.sqlite'}")
    assert "cannot be opened" in str(refused.value)
    with pytest.raises(ConfigError) as down:  # nothing listens on port 9 of this machine
        SharedState("postgresql+psycopg://vraagbaak:s3cret-pw@127.0.0.1:9/vraagbaak")
    assert "s3cret-pw" not in str(down.value) and "***" in str(down.value)


def test_messages_arriving_together_at_several_workers_pass_the_limit_only_as_often_as_it_allows(url: str) -> None:
    # On PostgreSQL every transaction used to count before the others had recorded theirs: 7 of 8 got through.
    import threading
    from concurrent.futures import ThreadPoolExecutor

    states = [SharedState(url) for _ in range(8)]
    start = threading.Barrier(8)

    def send(state: SharedState) -> bool:
        limiter = SharedRateLimiter(state, "teams", 3, 60)
        start.wait()
        return limiter.allow("an")[0]

    try:
        with ThreadPoolExecutor(8) as pool:
            allowed = list(pool.map(send, states))
    finally:
        for state in states:
            state.close()
    assert sum(allowed) == 3


def test_with_the_database_down_chats_go_on_without_limits_and_memory(tmp_path: Path) -> None:
    state = SharedState(f"sqlite:///{tmp_path / 'tickets.sqlite'}")
    memory, seen = SharedConversationMemory(state), SharedSeenIds(state)
    limiter = SharedRateLimiter(state, "teams", 1, 60)
    walks = SharedWalkStore(state)
    walks.put("c1", [("q1", 0)])
    (tmp_path / "tickets.sqlite").unlink()
    (tmp_path / "tickets.sqlite").mkdir()  # what a vanished or unreachable database looks like to SQLAlchemy
    state.engine.dispose()
    memory.add("c1", _turn("Vraag?", 0.0))  # logged, not raised
    assert memory.history("c1") == []
    assert limiter.allow("an") == (True, False) and limiter.allow("an") == (True, False)
    assert seen.first_time("x") is True
    # Every message asks whether a walk is going on: a question is answered rather than refused. Storing a step
    # of a walk cannot be done without the database, and says so (the channel asks the officer to wait a minute).
    assert walks.get("c1") is None
    with pytest.raises(sa.exc.OperationalError):
        walks.put("c1", [("q1", 0), ("q2", 1)])


def test_the_update_inbox_hands_a_chat_to_one_worker_in_update_order(store_url: str) -> None:
    one, two = SharedState(store_url), SharedState(store_url)
    try:
        here, there = SharedUpdateInbox(one, "worker-a"), SharedUpdateInbox(two, "worker-b")
        assert here.add(11, "42", '{"n": 11}') and there.add(10, "42", '{"n": 10}') and here.add(12, "7", "{}")
        assert not there.add(11, "42", '{"n": 11}')  # Telegram delivered it again: stored once
        assert here.claim("42") and not there.claim("42")  # one worker per chat
        assert there.claim("7")  # another chat meanwhile
        assert here.next("42") == (10, '{"n": 10}')  # lowest id first, whichever worker stored it
        here.done(10)
        assert here.next("42") == (11, '{"n": 11}')
        here.done(11)
        assert here.next("42") is None
        here.release("42")
        assert there.claim("42")
        assert sorted(there.waiting_chats(older_than=-1)) == ["7"]
    finally:
        one.close()
        two.close()
