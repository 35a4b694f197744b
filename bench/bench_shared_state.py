"""What the state the workers share costs per message: conversation memory, a rate-limit check, a seen-id check.

Each question reads the conversation's history and adds a turn; each message passes the channel's rate limit;
each Teams activity is checked against the handled ids. Measured on a fresh SQLite file (the default) or on the
database ``--url`` names (e.g. a PostgreSQL on this machine), ``--n`` times each, single-threaded.

    python bench/bench_shared_state.py [--n 500] [--url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bot.conversation import Turn
from bot.messages import Decision
from bot.shared_state import SharedConversationMemory, SharedRateLimiter, SharedSeenIds, SharedState


def _timed(n: int, action: Callable[[int], object]) -> tuple[float, float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        action(i)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), statistics.quantiles(times, n=20)[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'tickets.sqlite'}"
        state = SharedState(url)
        memory = SharedConversationMemory(state)
        limiter = SharedRateLimiter(state, "bench", 1_000_000, 60)
        seen = SharedSeenIds(state)

        def question(i: int) -> None:
            conversation = f"bench:{i % 50}"  # 50 officers
            memory.history(conversation)
            memory.add(conversation, Turn(question=f"Vraag {i}?", query=f"Vraag {i}?", reply_id=f"r{i}",
                                          decision=Decision.ANSWER, chunk_ids=("a:1:0", "b:2:0"), at=time.time()))

        rows = {"history + add (one question)": _timed(args.n, question),
                "rate-limit check (one message)": _timed(args.n, lambda i: limiter.allow(f"officer-{i % 50}")),
                "seen-id check (one Teams activity)": _timed(args.n, lambda i: seen.first_time(f"teams|a|{i}"))}
        state.close()
    print(f"database: {url.split(':', 1)[0]}  n={args.n}")
    for name, (p50, p95) in rows.items():
        print(f"  {name:<36} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms")


if __name__ == "__main__":
    main()
