"""A region's deployment on this machine, under load: PostgreSQL, a Chroma server, one and two `serve` workers.

One command: starts a throwaway PostgreSQL cluster (as the tests do) and `chroma run` on loopback, refreshes the
bundled sample corpus into them from a maintainer's data dir, then runs ``bench/load.py`` for every worker count
and shape asked, each worker with an empty data dir of its own (as on its own machine: the index comes from the
database and the Chroma server, the keys from the environment), for each channel: Teams (the connector stand-in)
and Telegram (the Bot API stand-in, the workers in webhook mode). Then the fault runs, two workers at human pace
each: ``kill`` (one worker is killed mid-run; the activities it had, and the ones sent to it, are sent again to
the other as Teams and a proxy would), ``database`` (PostgreSQL stopped for 10 s mid-run, then started again) and
``refresh`` (a corpus refresh mid-run: both workers must switch to the new generation). Everything stops at the
end. Prints one JSON line per run, each with ``passed`` (every question answered exactly once and in time, no
apology, no ticket twice, every live worker on the new generation after a refresh); exits 1 when a run did not
pass.

    python bench/region.py [--channels teams telegram] [--workers 1 2] [--shapes human burst]
                           [--faults kill database refresh]
                           [--officers 50] [--questions 5] [--think 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import load  # noqa: E402
from tests.chroma_server import running_chroma  # noqa: E402
from tests.pg_server import Cluster, running_cluster  # noqa: E402

DATABASE_DOWN_SECONDS = 10.0


def refresh(home: Path, database_url: str, chroma_url: str, *, rebuild: bool = False) -> float:
    """`vraagbaak corpus refresh` of the bundled sample corpus into the database and the Chroma server."""
    env = {**os.environ, "VRAAGBAAK_HOME": str(home), "VRAAGBAAK_DATABASE_URL": database_url,
           "VRAAGBAAK_CHROMA_URL": chroma_url, "VRAAGBAAK_INDEX_STORE": "database"}
    started = time.monotonic()
    subprocess.run([str(Path(sys.executable).parent / "vraagbaak"), "corpus", "refresh",
                    *(["--rebuild"] if rebuild else [])], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=900)
    return time.monotonic() - started


def faults(cluster: Cluster, maintainer: Path, chroma_url: str) -> dict[str, load.Fault]:
    """The three faults, by name."""

    async def kill(deployment: load.Deployment) -> dict:
        victim = deployment.workers[-1]
        victim.kill()
        return {"killed": f"worker-{len(deployment.workers) - 1}", "pid": victim.pid}

    async def database(deployment: load.Deployment) -> dict:
        started = time.monotonic()
        await asyncio.to_thread(cluster.stop)
        await asyncio.sleep(DATABASE_DOWN_SECONDS)
        await asyncio.to_thread(cluster.start)
        return {"database_down_s": round(time.monotonic() - started, 1)}

    async def new_generation(deployment: load.Deployment) -> dict:
        seconds = await asyncio.to_thread(refresh, maintainer, cluster.url, chroma_url, rebuild=True)
        return {"refresh_s": round(seconds, 1)}

    return {"kill": kill, "database": database, "refresh": new_generation}


def failures(report: dict, fault: str | None = None) -> list[str]:
    """What a run got wrong, empty when it passed: every question answered exactly once and in time, no apology,
    no ticket twice; after a refresh every live worker serves the new generation."""
    asked = report["officers"] * report["questions_each"]
    wrong = []
    if report["messages_per_question"] != {"1": asked}:
        wrong.append(f"not every question answered exactly once: {report['messages_per_question']}")
    if report["timeouts"] or report["failed_sends"]:
        wrong.append(f"{report['timeouts']} timeouts, {report['failed_sends']} sends that never got through")
    if report.get("apologies"):
        wrong.append(f"{report['apologies']} apologies")
    if report.get("tickets", {}).get("with_two_or_more"):
        wrong.append(f"{report['tickets']['with_two_or_more']} own cases with two tickets or more")
    if fault == "refresh":
        before, after = set(report["serving_before"]), {g for g in report["serving_after"] if g}
        if len(after) != 1 or after & before:
            wrong.append(f"workers did not all switch: {report['serving_before']} -> {report['serving_after']}")
    return wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2], choices=range(1, 5))
    parser.add_argument("--channels", nargs="+", default=["teams", "telegram"], choices=("teams", "telegram"))
    parser.add_argument("--shapes", nargs="*", default=["human", "burst"], choices=("human", "burst"))
    parser.add_argument("--faults", nargs="*", default=["kill", "database", "refresh"],
                        choices=("kill", "database", "refresh"))
    parser.add_argument("--fault-at", type=float, default=None,
                        help="seconds into a fault run (default: 40 %% of its expected length)")
    parser.add_argument("--officers", type=int, default=50, choices=range(1, 201), metavar="1-200")
    parser.add_argument("--questions", type=int, default=5, choices=range(1, 21), metavar="1-20")
    parser.add_argument("--think", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    # Stopped from outside (timeout, kill): exit through the finally blocks, so PostgreSQL and Chroma stop too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    failed = 0
    with tempfile.TemporaryDirectory(prefix="vraagbaak-region-") as tmp:
        root = Path(tmp)
        with running_cluster() as cluster, running_chroma(root / "chroma") as chroma_url:
            maintainer = root / "maintainer"
            seconds = refresh(maintainer, cluster.url, chroma_url)
            print(json.dumps({"bench": "region", "step": "refresh", "seconds": round(seconds, 1)}), flush=True)

            def shape(channel: str, workers: int, name: str, own_cases: float = 0.0) -> argparse.Namespace:
                return argparse.Namespace(channel=channel, home=maintainer, workers=workers, officers=args.officers,
                                          questions=args.questions, shape=name, think=args.think,
                                          timeout=args.timeout, database_url=cluster.url, chroma_url=chroma_url,
                                          separate_homes=True, own_case_share=own_cases)

            for channel in args.channels:
                for workers in args.workers:
                    for name in args.shapes:
                        report = asyncio.run(load.run(shape(channel, workers, name)))
                        wrong = failures(report)
                        failed += bool(wrong)
                        print(json.dumps({**report, "passed": not wrong, "wrong": wrong}), flush=True)
            at = args.fault_at if args.fault_at is not None else 0.4 * args.think * args.questions
            for channel in args.channels:
                for name, fault in faults(cluster, maintainer, chroma_url).items():
                    if name in args.faults:
                        # One question in ten is an own case: a ticket each, never two.
                        report = asyncio.run(load.run(shape(channel, 2, "human", 0.1), fault, at))
                        wrong = failures(report, name)
                        failed += bool(wrong)
                        print(json.dumps({"fault_run": name, "fault_at_s": at, **report, "passed": not wrong,
                                          "wrong": wrong}), flush=True)
    if failed:
        raise SystemExit(f"{failed} run(s) failed (see their \"wrong\")")


if __name__ == "__main__":
    main()
