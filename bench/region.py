"""A region's deployment on this machine, under load: PostgreSQL, a Chroma server, one and two `serve` workers.

One command: starts a throwaway PostgreSQL cluster (as the tests do) and `chroma run` on loopback, refreshes the
bundled sample corpus into them from a maintainer's data dir, then runs ``bench/load.py`` for every worker count
and shape asked, each worker with an empty data dir of its own (as on its own machine: the index comes from the
database and the Chroma server, the keys from the environment). Everything stops at the end. Prints one JSON
line per run.

    python bench/region.py [--workers 1 2] [--shapes human burst] [--officers 50] [--questions 5] [--think 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import load  # noqa: E402
from tests.chroma_server import running_chroma  # noqa: E402
from tests.pg_server import postgres_url  # noqa: E402


def refresh(home: Path, database_url: str, chroma_url: str) -> float:
    """`vraagbaak corpus refresh` of the bundled sample corpus into the database and the Chroma server."""
    env = {**os.environ, "VRAAGBAAK_HOME": str(home), "VRAAGBAAK_DATABASE_URL": database_url,
           "VRAAGBAAK_CHROMA_URL": chroma_url}
    started = time.monotonic()
    subprocess.run([str(Path(sys.executable).parent / "vraagbaak"), "corpus", "refresh"], env=env, check=True,
                   stdout=subprocess.DEVNULL, timeout=900)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], choices=range(1, 5))
    parser.add_argument("--shapes", nargs="+", default=["human", "burst"], choices=("human", "burst"))
    parser.add_argument("--officers", type=int, default=50, choices=range(1, 201), metavar="1-200")
    parser.add_argument("--questions", type=int, default=5, choices=range(1, 21), metavar="1-20")
    parser.add_argument("--think", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vraagbaak-region-") as tmp:
        root = Path(tmp)
        cluster = postgres_url.__wrapped__()  # the tests' throwaway cluster, driven by hand
        database_url = next(cluster)
        try:
            with running_chroma(root / "chroma") as chroma_url:
                seconds = refresh(root / "maintainer", database_url, chroma_url)
                print(json.dumps({"bench": "region", "step": "refresh", "seconds": round(seconds, 1)}), flush=True)
                for workers in args.workers:
                    for shape in args.shapes:
                        run = argparse.Namespace(home=root / "maintainer", workers=workers, officers=args.officers,
                                                 questions=args.questions, shape=shape, think=args.think,
                                                 timeout=args.timeout, database_url=database_url,
                                                 chroma_url=chroma_url, separate_homes=True)
                        print(json.dumps(asyncio.run(load.run(run))), flush=True)
        finally:
            cluster.close()


if __name__ == "__main__":
    main()
