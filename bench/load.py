"""Load on `vraagbaak serve` workers through their Teams endpoint: officers asking questions, loopback only.

Starts a stand-in for the Bot Framework connector and ``--workers`` `vraagbaak serve` processes on this machine
(Teams authentication off, which the server allows on loopback only), then plays ``--officers`` officers who each
ask ``--questions`` questions of `bench/questions/coverage.jsonl`, sent round-robin to the workers as a proxy
would; a POST that fails (refused, 5xx) is sent again to a live worker, as Teams retries through the proxy. Every
reply is counted per activity id (answered once, never twice), and with ``--own-case-share`` some questions are own
cases whose tickets are counted in the database. A reply's latency runs from the POST to the moment the reply reaches the connector. Two shapes: ``human``
(each officer waits ``--think`` seconds, +-50 % at random, before each question) and ``burst`` (everyone at once,
no waiting: the time to drain it). Bounded: every reply is awaited at most ``--timeout`` seconds, the workers are
stopped at the end whatever happens. Prints one JSON object.

    python bench/load.py --home <data dir with an index> [--workers 2] [--officers 50] [--questions 5]
                         [--shape human|burst] [--think 10] [--database-url postgresql+psycopg://...]
                         [--chroma-url http://127.0.0.1:8000 --separate-homes]

With ``--separate-homes`` every worker gets an empty data dir of its own, as on its own machine: the index comes
from the database and the Chroma server (refreshed there beforehand, see ``bench/region.py``), the keys from the
environment. ``bench/region.py`` runs the whole set on PostgreSQL and a Chroma server with one command.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.texts import DATABASE_AWAY, SORRY  # noqa: E402
from retrieval.evaluation import read_questions  # noqa: E402
from tests.fake_connector import FakeConnector  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


class TimedConnector(FakeConnector):
    """The connector stand-in, noting when each conversation's messages arrive."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: dict[str, list[float]] = {}

    async def _post(self, request: web.Request) -> web.Response:
        response = await super()._post(request)
        posted = self.posted[-1] if self.posted else None
        if posted is not None and posted.type == "message":
            self.arrivals.setdefault(posted.conversation_id, []).append(time.perf_counter())
        return response


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _activity(service_url: str, run: str, officer: int, text: str, n: int) -> dict[str, Any]:
    """Activity ids carry the run: the workers remember ids they answered (a retry), also from an earlier run."""
    conversation = f"a:load-{officer}"
    return {"type": "message", "id": f"load-{run}-{officer}-{n}", "serviceUrl": service_url, "channelId": "msteams",
            "from": {"id": f"29:officer-{officer}", "name": f"Ambtenaar {officer}", "aadObjectId": f"aad-{officer}"},
            "recipient": {"id": "28:vraagbaak", "name": "Vraagbaak"}, "locale": "nl-BE", "text": text,
            "textFormat": "plain", "conversation": {"id": conversation, "conversationType": "personal",
                                                    "tenantId": "load-tenant"},
            "channelData": {"tenant": {"id": "load-tenant"}}}


async def _wait_ready(session: ClientSession, port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        await asyncio.sleep(0.5)
    raise SystemExit(f"worker on port {port} not ready in time")


def worker_env(args: argparse.Namespace, n: int, port: int, homes: Path) -> dict[str, str]:
    """The environment of worker ``n``: the data dir given, or with ``--separate-homes`` an empty one of its own
    under ``homes``."""
    env = {**os.environ, "VRAAGBAAK_HOME": str(args.home), "VRAAGBAAK_TEAMS_AUTH": "off",
           "VRAAGBAAK_HOST": "127.0.0.1", "VRAAGBAAK_TEAMS_RATE_PER_MINUTE": "100", "VRAAGBAAK_PORT": str(port)}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    env.pop("MICROSOFT_APP_ID", None)
    if args.database_url:
        env["VRAAGBAAK_DATABASE_URL"] = args.database_url
    if args.chroma_url:
        env["VRAAGBAAK_CHROMA_URL"] = args.chroma_url
    if args.separate_homes:
        home = homes / f"worker-{n}"
        home.mkdir()
        env["VRAAGBAAK_HOME"] = str(home)
        env.update({f"VRAAGBAAK_{name}_KEY": KEYS[name] for name in KEYS})
    return env


KEYS = {name: os.urandom(32).hex() for name in ("PSEUDONYM", "MAIL", "DOWNLOAD")}
"""Shared by the workers of one run, as a deployment's secrets would be."""


@dataclass
class Deployment:
    """The workers of a run, as a fault sees them."""

    workers: list[subprocess.Popen]
    ports: list[int]
    logs: list[Path]
    down: dict[int, float] = field(default_factory=dict)
    """port -> until when the proxy leaves it out (it refused a connection or answered 5xx)."""


Fault = Callable[[Deployment], Awaitable[dict[str, Any]]]
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
"""Seconds before each new attempt at an activity that failed, as Teams retries (to any live worker)."""
DOWN_SECONDS = 5.0


async def _send(session: ClientSession, deployment: Deployment, activity: dict[str, Any], start: int,
                give_up: float) -> int:
    """POST ``activity`` as a proxy in front of the workers and Teams behind it would: to the next worker not known
    to be down, again (after a pause) on a refused connection or a 5xx. Returns the number of retries."""
    ports = deployment.ports
    for attempt in range(len(RETRY_DELAYS) + 1):
        now = time.monotonic()
        live = [p for p in ports if deployment.down.get(p, 0) <= now] or ports
        port = live[(start + attempt) % len(live)]
        try:
            async with session.post(f"http://127.0.0.1:{port}/api/messages", json=activity) as response:
                await response.read()
                if response.status < 500:
                    return attempt
        except (OSError, asyncio.TimeoutError, ClientError):
            pass
        deployment.down[port] = time.monotonic() + DOWN_SECONDS
        if attempt == len(RETRY_DELAYS) or time.perf_counter() + RETRY_DELAYS[attempt] > give_up:
            break
        await asyncio.sleep(RETRY_DELAYS[attempt])
    return -1


async def run(args: argparse.Namespace, fault: Fault | None = None, fault_at: float = 0.0) -> dict[str, Any]:
    """One load run; with ``fault``, that coroutine is started ``fault_at`` seconds into it and its report kept."""
    connector = TimedConnector()
    service_url = await connector.start()
    run_id = f"{os.getpid()}-{time.time_ns()}"
    homes = tempfile.TemporaryDirectory(prefix="vraagbaak-workers-")
    ports = [_free_port() for _ in range(args.workers)]
    logs = [Path(homes.name) / f"worker-{n}.log" for n in range(args.workers)]
    workers = [subprocess.Popen([str(Path(sys.executable).parent / "vraagbaak"), "serve"],
                                env=worker_env(args, n, port, Path(homes.name)), stdout=subprocess.DEVNULL,
                                stderr=logs[n].open("wb"))
               for n, port in enumerate(ports)]
    deployment = Deployment(workers, ports, logs)
    questions = [q.question for q in read_questions(ROOT / "bench" / "questions" / "coverage.jsonl")]
    own_cases = [row["question"] for row in map(json.loads, (ROOT / "bench" / "questions" / "intent.jsonl")
                                                .read_text(encoding="utf-8").splitlines())
                 if row["intent"] == "own_case" and row["lang"] == "nl"]
    own_case_share = getattr(args, "own_case_share", 0.0)
    rng = random.Random(14)
    latencies: list[float] = []
    sent_ids: list[str] = []
    own_case_ids: list[tuple[str, str]] = []
    """(dossier, activity id) of the own cases asked."""
    timeouts = retried = failed = 0
    fault_report: dict[str, Any] = {}
    counter = itertools.count()
    try:
        async with ClientSession(timeout=ClientTimeout(total=30)) as session:
            deadline = time.monotonic() + 180
            for port, log in zip(ports, logs):
                try:
                    await _wait_ready(session, port, deadline)
                except SystemExit:
                    sys.stderr.write(log.read_text(errors="replace")[-3000:])
                    raise
            # Warm-up: the first question of each worker loads the model and the index.
            for n, port in enumerate(ports):
                await session.post(f"http://127.0.0.1:{port}/api/messages",
                                   json=_activity(service_url, run_id, 10_000 + n, questions[0], 0))
            while sum(len(connector.arrivals.get(f"a:load-{10_000 + n}", [])) for n in range(len(ports))) \
                    < len(ports):
                if time.monotonic() > deadline:
                    raise SystemExit("the workers did not answer the warm-up question in time")
                await asyncio.sleep(0.1)
            cpu_before = {w.pid: _cpu_seconds(w.pid) for w in workers}
            serving_before = [await _serving(session, port) for port in ports]

            async def officer(i: int) -> None:
                nonlocal timeouts, retried, failed
                for n in range(args.questions):
                    if args.shape == "human":
                        await asyncio.sleep(args.think * rng.uniform(0.5, 1.5))
                    conversation = f"a:load-{i}"
                    before = len(connector.arrivals.get(conversation, []))
                    if rng.random() < own_case_share:
                        # An own case becomes a ticket; numbered, so a ticket made twice shows in the database.
                        text = f"{rng.choice(own_cases)} (dossier {run_id}-{i}-{n})"
                        own_case_ids.append((f"{run_id}-{i}-{n}", f"load-{run_id}-{i}-{n + 1}"))
                    else:
                        text = rng.choice(questions)
                    activity = _activity(service_url, run_id, i, text, n + 1)
                    sent_ids.append(activity["id"])
                    sent = time.perf_counter()
                    give_up = sent + args.timeout
                    retries = await _send(session, deployment, activity, next(counter), give_up)
                    if retries < 0:
                        failed += 1
                        continue
                    retried += retries > 0
                    while len(connector.arrivals.get(conversation, [])) <= before:
                        if time.perf_counter() > give_up:
                            timeouts += 1
                            break
                        await asyncio.sleep(0.005)
                    else:
                        latencies.append(connector.arrivals[conversation][before] - sent)

            async def inject() -> None:
                await asyncio.sleep(fault_at)
                fault_report.update(await fault(deployment))

            started = time.perf_counter()
            injected = asyncio.ensure_future(inject()) if fault is not None else None
            await asyncio.gather(*(officer(i) for i in range(args.officers)))
            wall = time.perf_counter() - started
            if injected is not None:
                await injected
            await asyncio.sleep(1.0)  # a reply still on its way is counted, a duplicate too
            cpu = sum(_cpu_seconds(w.pid) - cpu_before[w.pid] for w in workers if w.poll() is None)
            # One more question to each live worker: a worker moves to a new generation on its next question.
            for n, (port, worker) in enumerate(zip(ports, workers)):
                if worker.poll() is None:
                    probe = f"a:load-{20_000 + n}"
                    await session.post(f"http://127.0.0.1:{port}/api/messages",
                                       json=_activity(service_url, run_id, 20_000 + n, questions[0], 0))
                    give_up = time.monotonic() + args.timeout
                    while not connector.arrivals.get(probe) and time.monotonic() < give_up:
                        await asyncio.sleep(0.05)
            serving_after = [await _serving(session, port) if w.poll() is None else None
                             for port, w in zip(ports, workers)]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        await connector.close()
        worker_logs = [log.read_text(errors="replace") for log in logs]
        homes.cleanup()
    replies = Counter(p.reply_to_id for p in connector.messages() if p.reply_to_id)
    answered = Counter(replies[activity_id] for activity_id in sent_ids)
    ordered = sorted(latencies)
    report = {"bench": "load", "shape": args.shape, "workers": args.workers, "officers": args.officers,
              "questions_each": args.questions, "database": (args.database_url or "sqlite").split(":", 1)[0],
              "vectors": "chroma server" if args.chroma_url else "embedded chromadb",
              "homes": "one per worker" if args.separate_homes else "shared",
              "replies": len(latencies), "timeouts": timeouts, "failed_sends": failed,
              "resent_after_a_failure": retried,
              "messages_per_question": {str(k): v for k, v in sorted(answered.items())},
              "wall_s": round(wall, 1),
              "throughput_per_s": round(len(latencies) / wall, 2) if wall else None,
              "p50_ms": round(statistics.median(ordered) * 1000) if ordered else None,
              "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000) if ordered else None,
              "max_ms": round(ordered[-1] * 1000) if ordered else None,
              "cpu_ms_per_reply": round(cpu * 1000 / len(latencies)) if latencies else None}
    if own_case_ids:
        report["own_cases_asked"] = len(own_case_ids)
        tickets = _tickets(args.database_url or f"sqlite:///{args.home / 'tickets.sqlite'}",
                           [dossier for dossier, _ in own_case_ids])
        replies_to = {p.reply_to_id: p.activity.get("text") or "" for p in connector.messages()}
        report["tickets"] = {"with_a_ticket": len(tickets), "with_two_or_more": sum(n > 1 for n in tickets.values()),
                             "replies_without_one": [replies_to.get(activity_id, "")[:90]
                                                     for dossier, activity_id in own_case_ids
                                                     if dossier not in tickets]}
    if fault is not None:
        report["fault"] = fault_report
        report["worker_errors"] = sum(text.count(" ERROR ") for text in worker_logs)
        texts = [p.activity.get("text") or "" for p in connector.messages()]
        report["apologies"] = sum(1 for text in texts if text.startswith(SORRY[:20]))
        report["even_geduld"] = sum(1 for text in texts if text == DATABASE_AWAY)
        report["error_kinds"] = sorted({line.split(": ", 1)[0][-60:] + ": " + line.split(": ", 1)[-1][:120]
                                        for text in worker_logs for line in text.splitlines()
                                        if re.match(r"^\w+(\.\w+)*(Error|Exception): ", line)})[:8]
        report["serving_before"], report["serving_after"] = serving_before, serving_after
    return report


def _tickets(url: str, dossiers: list[str]) -> Counter[str]:
    """Tickets per asked own case (none, one, or more)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            texts = list(conn.execute(sa.text("SELECT question FROM tickets")).scalars())
    finally:
        engine.dispose()
    return Counter(d for d in dossiers for text in texts if f"(dossier {d})" in text)


async def _serving(session: ClientSession, port: int) -> str | None:
    """The index generation a worker answers from, as its readiness check says."""
    try:
        async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
            return (await response.json()).get("serving")
    except (OSError, ClientError, ValueError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a data dir with an index (corpus refresh)")
    parser.add_argument("--workers", type=int, default=1, choices=range(1, 5))
    parser.add_argument("--officers", type=int, default=50, choices=range(1, 201), metavar="1-200")
    parser.add_argument("--questions", type=int, default=5, choices=range(1, 21), metavar="1-20")
    parser.add_argument("--shape", choices=("human", "burst"), default="human")
    parser.add_argument("--think", type=float, default=10.0, help="seconds between an officer's questions")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a reply is awaited at most")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--chroma-url", default=None, help="the Chroma server the index was refreshed into")
    parser.add_argument("--own-case-share", type=float, default=0.0,
                        help="share of questions that are an officer's own case (a ticket each)")
    parser.add_argument("--separate-homes", action="store_true",
                        help="an empty data dir per worker: the index from the database and the Chroma server")
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
