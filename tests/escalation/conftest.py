"""Fixtures of the escalation tests: a ticket store on SQLite and on PostgreSQL, and a small expert pool."""

from __future__ import annotations

from pathlib import Path

import pytest

from escalation.pool import ExpertPool, load_pool

POOL_YAML = """
fallback: juridische-dienst@example.be
sla_hours: 24
experts:
  - {name: An Peeters, email: an.peeters@example.be, topics: [pcp, innovatiepartnerschap]}
  - {name: Bram Claes, email: Bram.Claes@example.be, topics: [innovatiepartnerschap, dialoog]}
  - {name: Chloé Dubois, email: chloe.dubois@example.be, topics: [general]}
"""


@pytest.fixture
def pool(tmp_path: Path) -> ExpertPool:
    path = tmp_path / "experts.yaml"
    path.write_text(POOL_YAML, encoding="utf-8")
    return load_pool(path)
