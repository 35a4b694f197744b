"""How long commands that do not search take to start (issue 13: <= 0.5 s), and what they import.

Runs each command ``--runs`` times in a fresh interpreter on an empty data dir and prints the median wall time,
then the biggest imports of one run (``python -X importtime``). Loopback and local files only.

    python bench/bench_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (["--help"], ["tickets", "list"], ["experts", "list"], ["telegram", "users"], ["stats"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "VRAAGBAAK_HOME": home,
               "VRAAGBAAK_EXPERTS_FILE": str(ROOT / "escalation" / "data" / "experts.example.yaml")}
        for command in COMMANDS:
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "bot.cli", *command], env=env, cwd=ROOT, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times.append(time.perf_counter() - started)
            print(f"vraagbaak {' '.join(command):<16} median {statistics.median(times):.2f} s "
                  f"(min {min(times):.2f}, max {max(times):.2f}, {args.runs} runs)")
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "bot.cli", "tickets", "list"], env=env,
                              cwd=ROOT, capture_output=True, text=True, check=True)
    rows = [line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")][1:]
    top = sorted(((int(r[1]), r[2].rstrip()) for r in rows if r[1].strip().isdigit()), reverse=True)[:8]
    print("largest cumulative imports of `tickets list` (ms):")
    for micros, name in top:
        print(f"  {micros / 1000:7.1f}  {name.strip()}")


if __name__ == "__main__":
    main()
