"""Dense vectors in chromadb: the only module that imports it.

Each index generation is its own collection, so a refresh fills a new collection while
the bot keeps querying the previous one, then the active pointer switches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import numpy as np

from common.errors import ConfigError
from retrieval.errors import RetrievalError

logger = logging.getLogger(__name__)

_PREFIX = "vraagbaak-"
_ADD_BATCH = 1000


class VectorIndex(Protocol):
    """Stores chunk vectors per generation and answers nearest-neighbour queries."""

    def create(self, generation: str) -> None:
        """Create an empty collection for a generation."""
        ...

    def add(self, generation: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add vectors with their chunk ids."""
        ...

    def query(self, generation: str, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The k nearest chunk ids with cosine similarity, best first."""
        ...

    def drop(self, generation: str) -> None:
        """Delete a generation's collection (missing is fine)."""
        ...

    def generations(self) -> list[str]:
        """Generations present in the store."""
        ...


class ChromaIndex:
    """chromadb on disk (PersistentClient) or a Chroma server by URL (HttpClient)."""

    def __init__(self, *, path: Path | None = None, url: str | None = None, ef_search: int = 200,
                 ef_construction: int = 200) -> None:
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if url:
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ConfigError(f"VRAAGBAAK_CHROMA_URL must look like http://host:port, got {url!r}")
            self._client = chromadb.HttpClient(
                host=parsed.hostname,
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=settings,
            )
        elif path is not None:
            path.mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(path=str(path), settings=settings)
        else:
            raise ConfigError("ChromaIndex needs a path or a URL")
        # sync_threshold = batch_size: chromadb persists the graph after every batch. With its defaults (100 /
        # 1000) a collection of 100-999 vectors is rebuilt from its log, with random construction, whenever a
        # process opens it, so two processes answered the same query with different neighbours.
        self._hnsw = {"space": "cosine", "ef_search": ef_search, "ef_construction": ef_construction,
                      "max_neighbors": 32, "batch_size": 100, "sync_threshold": 100}
        self._collections: dict[str, object] = {}

    def _collection(self, generation: str):
        col = self._collections.get(generation)
        if col is None:
            try:
                # embedding_function=None: we always pass vectors; chromadb's default would download a model.
                col = self._client.get_collection(_PREFIX + generation, embedding_function=None)
            except Exception as exc:  # chromadb raises NotFoundError or ValueError by version
                raise RetrievalError(f"vector collection for index generation {generation} is missing") from exc
            self._collections[generation] = col
        return col

    def create(self, generation: str) -> None:
        """Create an empty collection for a generation."""
        self._collections[generation] = self._client.create_collection(
            _PREFIX + generation, configuration={"hnsw": self._hnsw}, embedding_function=None
        )

    def add(self, generation: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add vectors with their chunk ids, in batches chromadb accepts."""
        col = self._collection(generation)
        for start in range(0, len(ids), _ADD_BATCH):
            col.add(ids=list(ids[start : start + _ADD_BATCH]),
                    embeddings=np.asarray(vectors[start : start + _ADD_BATCH], dtype=np.float32))

    def query(self, generation: str, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The k nearest chunk ids with cosine similarity, best first."""
        col = self._collection(generation)
        result = col.query(query_embeddings=[np.asarray(vector, dtype=np.float32)], n_results=k,
                           include=["distances"])
        ids = result["ids"][0]
        distances = result["distances"][0]
        return [(cid, 1.0 - float(d)) for cid, d in zip(ids, distances)]

    def drop(self, generation: str) -> None:
        """Delete a generation's collection (missing is fine)."""
        self._collections.pop(generation, None)
        try:
            self._client.delete_collection(_PREFIX + generation)
        except Exception:  # already gone: nothing to clean
            logger.debug("collection for generation %s was already gone", generation)

    def generations(self) -> list[str]:
        """Generations present in the store."""
        names = [c if isinstance(c, str) else c.name for c in self._client.list_collections()]
        return sorted(n[len(_PREFIX):] for n in names if n.startswith(_PREFIX))


class ExactIndex:
    """In-memory exact cosine search: the reference HNSW is checked against, and a test double."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[list[str], np.ndarray]] = {}

    def create(self, generation: str) -> None:
        """Create an empty generation."""
        self._data[generation] = ([], np.zeros((0, 0), dtype=np.float32))

    def add(self, generation: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Append vectors."""
        old_ids, old = self._data[generation]
        vectors = np.asarray(vectors, dtype=np.float32)
        merged = vectors if old.size == 0 else np.vstack([old, vectors])
        self._data[generation] = (old_ids + list(ids), merged)

    def query(self, generation: str, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Exact top-k by cosine similarity."""
        ids, matrix = self._data[generation]
        if not ids:
            return []
        scores = matrix @ np.asarray(vector, dtype=np.float32)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(ids[i], float(scores[i])) for i in order]

    def drop(self, generation: str) -> None:
        """Forget a generation."""
        self._data.pop(generation, None)

    def generations(self) -> list[str]:
        """Generations held."""
        return sorted(self._data)
