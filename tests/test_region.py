"""Two real `vraagbaak serve` workers on one PostgreSQL and one Chroma server, each with an empty data dir of its own,
driven by the load generator of `bench/load.py` (small and bounded: a few officers, a fake embedder).

The same code `bench/region.py` measures with; here it must hold: every activity answered exactly once, also when one
worker is killed mid-run, and both workers serve the generation a refresh made from a third data dir.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import load

ROOT = Path(__file__).resolve().parents[1]


def _refresh(home: Path, database_url: str, chroma_url: str, *options: str) -> None:
    env = {**os.environ, "VRAAGBAAK_HOME": str(home), "VRAAGBAAK_DATABASE_URL": database_url,
           "VRAAGBAAK_CHROMA_URL": chroma_url, "VRAAGBAAK_INDEX_STORE": "database", "VRAAGBAAK_EMBEDDER": "fake"}
    done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "corpus", "refresh", *options],
                          env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture
def region(tmp_path: Path, pg_database_url: str, chroma_server: str,
           monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    monkeypatch.setenv("VRAAGBAAK_EMBEDDER", "fake")
    maintainer = tmp_path / "maintainer"
    _refresh(maintainer, pg_database_url, chroma_server)
    return argparse.Namespace(home=maintainer, workers=2, officers=6, questions=3, shape="human", think=1.0,
                              timeout=40.0, database_url=pg_database_url, chroma_url=chroma_server,
                              separate_homes=True, own_case_share=0.3)


def test_two_workers_answer_every_activity_once_even_when_one_is_killed(region: argparse.Namespace) -> None:
    async def kill(deployment: load.Deployment) -> dict:
        deployment.workers[-1].kill()
        return {"killed": True}

    report = asyncio.run(load.run(region, kill, 1.0))
    asked = region.officers * region.questions
    assert report["fault"] == {"killed": True}
    assert report["messages_per_question"] == {"1": asked}  # answered, and never twice
    assert report["timeouts"] == report["failed_sends"] == report["apologies"] == 0
    assert report["tickets"]["with_a_ticket"] == report["own_cases_asked"] > 0
    assert report["tickets"]["with_two_or_more"] == 0
    assert report["serving_before"][0] == report["serving_before"][1] is not None  # both on the one generation
    assert report["serving_after"][1] is None  # the killed worker is gone


def test_a_refresh_mid_run_switches_both_workers(region: argparse.Namespace) -> None:
    async def rebuild(deployment: load.Deployment) -> dict:
        # The same sources rebuilt: a new generation, activated while the officers ask.
        await asyncio.to_thread(_refresh, region.home, region.database_url, region.chroma_url, "--rebuild")
        return {"refreshed": True}

    region.own_case_share = 0.0
    report = asyncio.run(load.run(region, rebuild, 1.0))
    assert report["messages_per_question"] == {"1": region.officers * region.questions}
    assert report["timeouts"] == report["failed_sends"] == report["apologies"] == 0
    before, after = report["serving_before"], report["serving_after"]
    assert before[0] == before[1] and after[0] == after[1] and after[0] != before[0]
