"""The index in the deployment's database: workers on other machines serve the generation a refresh activated."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.app import App
from common.errors import ConfigError
from corpus.errors import CorpusError
from corpus.manifest import load_manifest
from corpus.refresh import Refresher
from retrieval.database_store import DatabaseGenerationStore, index_generations
from retrieval.embedders import FakeEmbedder
from retrieval.errors import IndexBusyError, IndexNotReadyError, IndexUnavailableError, RetrievalError
from retrieval.lexical import LexicalIndex, analyse
from retrieval.search import HybridRetriever
from retrieval.settings import RetrievalSettings
from retrieval.types import Chunk
from retrieval.vector_index import ChromaIndex, ExactIndex

MANIFEST = "sources:\n  - id: n\n    title: N\n    kind: guidance\n    location: 'notes/*.md'\n"


def _chunk(i: int, text: str) -> Chunk:
    return Chunk(id=f"n:d:{i}:0", source_id="n", doc_id="d", unit_id=f"n:d:{i}", title=f"Titel {i}",
                 kind="guidance", text=text, content_hash=f"h{i}", heading_path=("H",), position=i,
                 url=f"https://example.org/{i}")


def _notes(folder: Path, files: dict[str, str]) -> Path:
    notes = folder / "notes"
    notes.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (notes / name).write_text(text, encoding="utf-8")
    manifest = folder / "m.yaml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    return manifest


def test_a_generation_is_stored_whole_and_read_back_the_same(store_url: str) -> None:
    store = DatabaseGenerationStore(store_url, active_ttl=0)
    chunks = [_chunk(0, "De wachttermijn bedraagt vijftien dagen."), _chunk(1, "Een aanvaarde factuur volstaat.")]
    lexical = LexicalIndex.build([c.text for c in chunks])
    with pytest.raises(IndexNotReadyError, match="corpus refresh"):
        store.require_active()
    generation = store.new_generation_id()
    store.write(generation, chunks, model="fake", dim=8)
    assert store.active() is None  # written is not served: only activate() makes it so
    store.write_lexical(generation, lexical)
    store.activate(generation)

    assert store.require_active() == generation
    assert store.read_chunks(generation) == chunks
    meta = store.read_meta(generation)
    assert (meta.model, meta.dim, meta.chunks) == ("fake", 8, 2)
    tokens = analyse("factuur")
    assert store.read_lexical(generation).search(tokens, 2) == lexical.search(tokens, 2)

    newer = store.new_generation_id()
    store.write(newer, chunks[:1], model="fake", dim=8)
    store.write_lexical(newer, LexicalIndex.build([chunks[0].text]))
    store.activate(newer)
    assert store.active() == newer
    store.remove(newer)  # refused: the pointer would name nothing
    store.remove(generation)
    assert store.all_generations() == [newer]


def test_an_activated_generation_without_its_lexical_index_is_not_served(store_url: str) -> None:
    store = DatabaseGenerationStore(store_url, active_ttl=0)
    generation = store.new_generation_id()
    store.write(generation, [_chunk(0, "tekst")], model="fake", dim=8)
    store.activate(generation)  # as after a refresh interrupted between its writes
    assert store.active() is None


def test_a_damaged_row_is_a_clear_retrieval_error_not_a_crash(tmp_path: Path) -> None:
    store = DatabaseGenerationStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    generation = store.new_generation_id()
    store.write(generation, [_chunk(0, "tekst")], model="fake", dim=8)
    store.write_lexical(generation, LexicalIndex.build(["tekst"]))
    with store.engine.begin() as conn:
        conn.execute(index_generations.update().values(chunks=b"not gzip", lexical=b"not a tar"))
    with pytest.raises(RetrievalError, match="unreadable chunks"):
        store.read_chunks(generation)
    with pytest.raises(RetrievalError, match="unreadable lexical index"):
        store.read_lexical(generation)
    with pytest.raises(RetrievalError, match="not in the database"):
        store.read_meta("20990101-000000-000000")


def test_a_worker_on_another_machine_serves_the_refreshed_generation_and_switches_with_it(
        tmp_path: Path, pg_database_url: str, chroma_server: str) -> None:
    """The refresh runs on one machine, the worker on another: they share only PostgreSQL and the Chroma server."""
    maintainer, worker = tmp_path / "maintainer", tmp_path / "worker"
    manifest = _notes(maintainer, {"a.md": "# Dialoog\n\n## Verloop\nDe concurrentiegerichte dialoog verloopt in "
                                           "rondes met elke deelnemer.\n"})
    embedder = FakeEmbedder()
    refresher = Refresher(home=maintainer, embedder=embedder, vectors=ChromaIndex(url=chroma_server),
                          store=DatabaseGenerationStore(pg_database_url))
    first = refresher.refresh(load_manifest(manifest))
    assert first.switched
    assert not (maintainer / "index" / "generations").exists()  # nothing of the index on the refreshing disk

    served = HybridRetriever(store=DatabaseGenerationStore(pg_database_url, active_ttl=0),
                             vectors=ChromaIndex(url=chroma_server), embedder=embedder)
    assert served.generation == first.generation
    assert served.search("dialoog rondes", k=1)[0].chunk.title == "Dialoog"

    _notes(maintainer, {"b.md": "# Marktconsultatie\n\n## Verslag\nVan elk gesprek met een leverancier maak je "
                                "een verslag.\n"})
    second = refresher.refresh(load_manifest(manifest))
    assert second.switched and second.generation != first.generation
    assert served.refresh_if_switched()
    assert served.generation == second.generation
    for mode in ("bm25", "dense"):
        assert served.search("gesprek met een leverancier verslag", k=1, mode=mode)[0].chunk.title == \
            "Marktconsultatie"
    assert not worker.exists()  # the worker never wrote anything of its own


def test_a_worker_keeps_answering_while_the_database_is_away_and_switches_once_it_is_back(
        tmp_path: Path, pg_database_url: str, postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:
    manifest = _notes(tmp_path, {"a.md": "# Dialoog\n\n## Verloop\nDe dialoog verloopt in rondes.\n"})
    embedder, vectors = FakeEmbedder(), ExactIndex()
    refresher = Refresher(home=tmp_path, embedder=embedder, vectors=vectors,
                          store=DatabaseGenerationStore(pg_database_url))
    refresher.refresh(load_manifest(manifest))
    served = HybridRetriever(store=DatabaseGenerationStore(pg_database_url, active_ttl=0), vectors=vectors,
                             embedder=embedder)
    name = sa.engine.make_url(pg_database_url).database
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")

    def connections(allowed: bool) -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}'))
            if not allowed:
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})

    connections(False)
    try:
        with pytest.raises(IndexUnavailableError, match="cannot be reached"):
            DatabaseGenerationStore(pg_database_url).active()
        with caplog.at_level(logging.WARNING, logger="retrieval.search"):
            assert not served.refresh_if_switched()
            assert not served.refresh_if_switched()
        said = [r.getMessage() for r in caplog.records if r.name == "retrieval.search"]
        assert len(said) == 1 and "still serving" in said[0]  # said once, not on every question
        assert sa.engine.make_url(pg_database_url).password not in said[0]
        assert served.search("dialoog rondes", k=1)[0].chunk.title == "Dialoog"
    finally:
        connections(True)
    _notes(tmp_path, {"b.md": "# Verslag\n\n## Gesprek\nVan elk gesprek maak je een verslag.\n"})
    newer = refresher.refresh(load_manifest(manifest)).generation
    assert served.refresh_if_switched() and served.generation == newer
    admin.dispose()


def test_one_refresh_at_a_time_per_database(store_url: str, tmp_path: Path) -> None:
    manifest = _notes(tmp_path, {"a.md": "# A\n\n## B\nTekst.\n"})
    holder = DatabaseGenerationStore(store_url)
    other = Refresher(home=tmp_path / "other", embedder=FakeEmbedder(), vectors=ExactIndex(),
                      store=DatabaseGenerationStore(store_url))
    with holder.refresh_lock():
        with pytest.raises(IndexBusyError):
            with DatabaseGenerationStore(store_url).refresh_lock():
                pass
        with pytest.raises(CorpusError, match="another refresh is running"):
            other.refresh(load_manifest(manifest))
    assert other.refresh(load_manifest(manifest)).switched  # released with the holder


def test_the_index_goes_to_the_database_when_asked(tmp_path: Path) -> None:
    base = {"VRAAGBAAK_HOME": str(tmp_path)}
    assert RetrievalSettings.from_env(base).index_store == "files"
    # A deployment that already had its vectors on a Chroma server keeps its index where it was.
    assert RetrievalSettings.from_env({**base, "VRAAGBAAK_CHROMA_URL": "http://127.0.0.1:8000"}).index_store \
        == "files"
    settings = RetrievalSettings.from_env({**base, "VRAAGBAAK_INDEX_STORE": "database"})
    assert settings.database_url == f"sqlite:///{tmp_path / 'tickets.sqlite'}"
    assert isinstance(App(settings).store, DatabaseGenerationStore)
    with pytest.raises(ConfigError, match="VRAAGBAAK_INDEX_STORE"):
        RetrievalSettings.from_env({**base, "VRAAGBAAK_INDEX_STORE": "s3"})


def test_workers_starting_at_the_same_moment_all_create_their_tables(pg_database_url: str) -> None:
    """Two workers started together on an empty PostgreSQL: one failed on a unique violation in the catalogue."""
    from bot.shared_state import SharedState

    starts = 6
    barrier = threading.Barrier(starts)
    failures: list[BaseException] = []

    def start(n: int) -> None:
        barrier.wait()
        try:
            (DatabaseGenerationStore if n % 2 else SharedState)(pg_database_url)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(starts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
