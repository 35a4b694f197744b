"""Load on `vraagbaak serve` workers through their Teams or Telegram endpoint: officers asking questions, loopback.

Starts a stand-in for the Bot Framework connector (``--channel teams``: Teams authentication off, which the server
allows on loopback only) or for the Telegram Bot API (``--channel telegram``: the workers in webhook mode) and
``--workers`` `vraagbaak serve` processes on this machine, then plays ``--officers`` officers who each ask
``--questions`` questions of `bench/questions/coverage.jsonl`, sent round-robin to the workers as a proxy would; a
POST that fails (refused, 5xx) is sent again to a live worker, as Teams and Telegram retry through the proxy.
Replies are counted per activity id in Teams (answered once, never twice) and per chat in Telegram; with
``--own-case-share`` some questions are own cases whose tickets are counted in the database. A reply's latency runs
from the POST to the moment the reply reaches the stand-in. Two shapes: ``human`` (each officer waits ``--think``
seconds, +-50 % at random, before each question) and ``burst`` (everyone at once, no waiting: the time to drain
it). Bounded: every reply is awaited at most ``--timeout`` seconds, the workers are stopped at the end whatever
happens. Prints one JSON object.

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
from bot.channels.telegram_settings import WEBHOOK_PATH  # noqa: E402
from tests.fake_connector import FakeConnector  # noqa: E402
from tests.fake_telegram import FakeTelegram  # noqa: E402
from tests.fake_telegram import user as telegram_user  # noqa: E402

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


class TeamsDriver:
    """Officers in Teams: activities POSTed to /api/messages, replies caught by the connector stand-in."""

    name = "teams"
    path = "/api/messages"
    headers: dict[str, str] = {}

    async def start(self) -> None:
        self.connector = TimedConnector()
        self.service_url = await self.connector.start()

    async def stop(self) -> None:
        await self.connector.close()

    def env(self, officers: int) -> dict[str, str]:
        return {"VRAAGBAAK_TEAMS_AUTH": "off", "VRAAGBAAK_TEAMS_RATE_PER_MINUTE": "100"}

    def message(self, run: str, officer: int, text: str, n: int) -> tuple[dict[str, Any], str, str]:
        """(payload, the conversation's key, the id a reply names)."""
        activity = _activity(self.service_url, run, officer, text, n)
        return activity, activity["conversation"]["id"], activity["id"]

    def arrivals(self, key: str) -> list[float]:
        return self.connector.arrivals.get(key, [])

    def replies(self) -> list[tuple[str | None, str]]:
        """(the id of what it answers, text) of every message sent back."""
        return [(p.reply_to_id, p.activity.get("text") or "") for p in self.connector.messages()]


class TimedTelegram(FakeTelegram):
    """The Bot API stand-in, noting when each chat's messages arrive."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.arrivals: dict[str, list[float]] = {}
        # Update ids grow across runs, as Telegram's do: the workers' database remembers the ids it stored.
        self._next_update = time.time_ns() // 1_000_000

    def _api_sendmessage(self, params: dict[str, Any]) -> tuple[int, Any]:
        status, result = super()._api_sendmessage(params)
        if status == 200:
            self.arrivals.setdefault(str(params.get("chat_id")), []).append(time.perf_counter())
        return status, result


class TelegramDriver:
    """Officers in Telegram: updates POSTed to the workers' webhook (as Telegram does, with the secret token),
    replies caught by the Bot API stand-in. Telegram names no update a reply answers: replies count per chat."""

    name = "telegram"
    path = WEBHOOK_PATH

    async def start(self) -> None:
        self.fake = TimedTelegram().start()
        self.secret = os.urandom(18).hex()
        self.headers = {"X-Telegram-Bot-Api-Secret-Token": self.secret}

    async def stop(self) -> None:
        self.fake.stop()

    def env(self, officers: int) -> dict[str, str]:
        ids = [*range(OFFICER_BASE, OFFICER_BASE + officers), *(OFFICER_BASE + extra + n for extra in (10_000, 20_000)
                                                                for n in range(4))]
        return {"TELEGRAM_BOT_TOKEN": self.fake.token, "TELEGRAM_API_BASE_URL": self.fake.base_url,
                "VRAAGBAAK_TELEGRAM_MODE": "webhook",
                "VRAAGBAAK_TELEGRAM_WEBHOOK_URL": "https://vraagbaak.example.be/telegram/webhook",
                "VRAAGBAAK_TELEGRAM_WEBHOOK_SECRET": self.secret,
                "VRAAGBAAK_TELEGRAM_ALLOWED_USERS": ",".join(map(str, ids)),
                "VRAAGBAAK_TELEGRAM_RATE_PER_MINUTE": "100"}

    def message(self, run: str, officer: int, text: str, n: int) -> tuple[dict[str, Any], str, str]:
        sender = telegram_user(OFFICER_BASE + officer, f"Ambtenaar {officer}", "Load")
        update = self.fake.make_update(text, sender=sender)
        return update, str(sender["id"]), str(update["update_id"])

    def arrivals(self, key: str) -> list[float]:
        return self.fake.arrivals.get(key, [])

    def replies(self) -> list[tuple[str | None, str]]:
        return [(None, c.params.get("text") or "") for c in self.fake.calls_of("sendMessage")]


OFFICER_BASE = 500_000
"""Telegram user ids of the played officers."""


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


def worker_env(args: argparse.Namespace, n: int, port: int, homes: Path, channel: dict[str, str]
               ) -> dict[str, str]:
    """The environment of worker ``n``: the data dir given, or with ``--separate-homes`` an empty one of its own
    under ``homes``; ``channel``: what the played channel needs."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TELEGRAM_", "VRAAGBAAK_TELEGRAM_", "VRAAGBAAK_TEAMS_", "MICROSOFT_APP_"))}
    env.update({"VRAAGBAAK_HOME": str(args.home), "VRAAGBAAK_HOST": "127.0.0.1", "VRAAGBAAK_PORT": str(port),
                **channel})
    if args.database_url:
        env["VRAAGBAAK_DATABASE_URL"] = args.database_url
    if args.chroma_url:
        env["VRAAGBAAK_CHROMA_URL"] = args.chroma_url
        env["VRAAGBAAK_INDEX_STORE"] = "database"
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


async def _send(session: ClientSession, deployment: Deployment, driver: Any, activity: dict[str, Any],
                start: int, give_up: float) -> int:
    """POST ``activity`` as a proxy in front of the workers and Teams behind it would: to the next worker not known
    to be down, again (after a pause) on a refused connection or a 5xx. Returns the number of retries."""
    ports = deployment.ports
    for attempt in range(len(RETRY_DELAYS) + 1):
        now = time.monotonic()
        live = [p for p in ports if deployment.down.get(p, 0) <= now] or ports
        port = live[(start + attempt) % len(live)]
        try:
            async with session.post(f"http://127.0.0.1:{port}{driver.path}", json=activity,
                                    headers=driver.headers) as response:
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
    driver = TelegramDriver() if getattr(args, "channel", "teams") == "telegram" else TeamsDriver()
    await driver.start()
    run_id = f"{os.getpid()}-{time.time_ns()}"
    homes = tempfile.TemporaryDirectory(prefix="vraagbaak-workers-")
    ports = [_free_port() for _ in range(args.workers)]
    logs = [Path(homes.name) / f"worker-{n}.log" for n in range(args.workers)]
    channel_env = driver.env(args.officers)
    workers = [subprocess.Popen([str(Path(sys.executable).parent / "vraagbaak"), "serve"],
                                env=worker_env(args, n, port, Path(homes.name), channel_env),
                                stdout=subprocess.DEVNULL, stderr=logs[n].open("wb"))
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
    asked: Counter[str] = Counter()
    own_case_ids: list[tuple[str, str]] = []
    """(dossier, the id a reply names) of the own cases asked."""
    timeouts = retried = failed = 0
    fault_report: dict[str, Any] = {}
    counter = itertools.count()

    async def one_question(session: ClientSession, port: int, officer: int, text: str) -> None:
        payload, key, _ = driver.message(run_id, officer, text, 0)
        await session.post(f"http://127.0.0.1:{port}{driver.path}", json=payload, headers=driver.headers)
        give_up = time.monotonic() + args.timeout
        while not driver.arrivals(key) and time.monotonic() < give_up:
            await asyncio.sleep(0.05)

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
                await one_question(session, port, 10_000 + n, questions[0])
            cpu_before = {w.pid: _cpu_seconds(w.pid) for w in workers}
            serving_before = [await _serving(session, port) for port in ports]

            async def officer(i: int) -> None:
                nonlocal timeouts, retried, failed
                for n in range(args.questions):
                    if args.shape == "human":
                        await asyncio.sleep(args.think * rng.uniform(0.5, 1.5))
                    if rng.random() < own_case_share:
                        # An own case becomes a ticket; numbered, so a ticket made twice shows in the database.
                        dossier = f"{run_id}-{i}-{n}"
                        text = f"{rng.choice(own_cases)} (dossier {dossier})"
                    else:
                        dossier, text = None, rng.choice(questions)
                    payload, key, message_id = driver.message(run_id, i, text, n + 1)
                    before = len(driver.arrivals(key))
                    sent_ids.append(message_id)
                    asked[key] += 1
                    if dossier is not None:
                        own_case_ids.append((dossier, message_id))
                    sent = time.perf_counter()
                    give_up = sent + args.timeout
                    retries = await _send(session, deployment, driver, payload, next(counter), give_up)
                    if retries < 0:
                        failed += 1
                        continue
                    retried += retries > 0
                    while len(driver.arrivals(key)) <= before:
                        if time.perf_counter() > give_up:
                            timeouts += 1
                            break
                        await asyncio.sleep(0.005)
                    else:
                        latencies.append(driver.arrivals(key)[before] - sent)

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
            officer_messages = {key: len(driver.arrivals(key)) for key in asked}
            # One more question to each live worker: a worker moves to a new generation on its next question (once
            # the 2 s it trusts the pointer it read are over).
            await asyncio.sleep(2.5)
            for n, (port, worker) in enumerate(zip(ports, workers)):
                if worker.poll() is None:
                    await one_question(session, port, 20_000 + n, questions[0])
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
        replies = driver.replies()
        await driver.stop()
        worker_logs = [log.read_text(errors="replace") for log in logs]
        homes.cleanup()
    if driver.name == "teams":  # a reply names its activity: counted per question
        per_activity = Counter(reply_to for reply_to, _ in replies if reply_to)
        answered = Counter(per_activity[activity_id] for activity_id in sent_ids)
    else:  # counted per officer: as many messages as questions
        answered = Counter("1" if officer_messages[key] == count else f"{officer_messages[key]}/{count} officer"
                           for key, count in asked.items() for _ in range(count))
    ordered = sorted(latencies)
    report = {"bench": "load", "channel": driver.name, "shape": args.shape, "workers": args.workers,
              "officers": args.officers,
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
        report["tickets"] = {"with_a_ticket": len(tickets), "with_two_or_more": sum(n > 1 for n in tickets.values())}
        if driver.name == "teams":
            replies_to = dict(replies)
            report["tickets"]["replies_without_one"] = [replies_to.get(activity_id, "")[:90]
                                                        for dossier, activity_id in own_case_ids
                                                        if dossier not in tickets]
    if fault is not None:
        report["fault"] = fault_report
        report["worker_errors"] = sum(text.count(" ERROR ") for text in worker_logs)
        texts = [text for _, text in replies]
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
    parser.add_argument("--channel", choices=("teams", "telegram"), default="teams",
                        help="play the officers through Teams (the connector stand-in) or Telegram (webhook)")
    parser.add_argument("--own-case-share", type=float, default=0.0,
                        help="share of questions that are an officer's own case (a ticket each)")
    parser.add_argument("--separate-homes", action="store_true",
                        help="an empty data dir per worker: the index from the database and the Chroma server")
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
