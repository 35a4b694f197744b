"""On-disk layout of the index: generations, the active pointer, and the embedding cache.

    index/ACTIVE                   {"generation": "..."} switched with os.replace (atomic)
    index/generations/<gen>/       chunks.jsonl, bm25/, meta.json
    index/chroma/                  chromadb's own files (one collection per generation)
    cache/embeddings.sqlite        (model, content_hash) -> vector

Several machines share an index through the database instead (``retrieval/database_store.py``); both stores have
the ``IndexStore`` interface.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from retrieval.errors import IndexBusyError, IndexNotReadyError
from retrieval.lexical import LexicalIndex
from retrieval.types import Chunk


@dataclass(frozen=True)
class GenerationMeta:
    """What a generation was built with."""

    generation: str
    model: str
    dim: int
    chunks: int
    created: float


def new_generation_id() -> str:
    """A fresh, sortable generation id."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{time.time_ns() % 1_000_000:06d}"


class IndexStore(Protocol):
    """Where generations (chunks, lexical index, metadata) and the active pointer live."""

    def describe(self) -> str:
        """Where, in words for a maintainer."""
        ...

    def new_generation_id(self) -> str:
        """A fresh, sortable generation id."""
        ...

    def write(self, generation: str, chunks: Sequence[Chunk], *, model: str, dim: int) -> object:
        """Store a generation's chunks and metadata (not yet active)."""
        ...

    def write_lexical(self, generation: str, index: LexicalIndex) -> None:
        """Store a generation's BM25 index."""
        ...

    def read_meta(self, generation: str) -> GenerationMeta:
        """Metadata of a generation."""
        ...

    def read_chunks(self, generation: str) -> list[Chunk]:
        """All chunks of a generation, in index order."""
        ...

    def read_lexical(self, generation: str) -> LexicalIndex:
        """A generation's BM25 index."""
        ...

    def active(self) -> str | None:
        """The served generation, or None before the first refresh."""
        ...

    def require_active(self) -> str:
        """The served generation, or IndexNotReadyError."""
        ...

    def activate(self, generation: str) -> None:
        """Make ``generation`` the served one, atomically."""
        ...

    def all_generations(self) -> list[str]:
        """Stored generations, oldest first."""
        ...

    def remove(self, generation: str) -> None:
        """Delete a generation."""
        ...

    def refresh_lock(self) -> AbstractContextManager[None]:
        """Held for a whole refresh; IndexBusyError when another one holds it."""
        ...


class GenerationStore:
    """Reads and writes index generations under ``index_dir``."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self.generations_dir = index_dir / "generations"

    def describe(self) -> str:
        """Where the index lives, for maintainers."""
        return f"data dir {self.index_dir.parent}"

    def new_generation_id(self) -> str:
        """A fresh, sortable generation id."""
        return new_generation_id()

    def path(self, generation: str) -> Path:
        """Folder of one generation."""
        return self.generations_dir / generation

    def write(self, generation: str, chunks: Sequence[Chunk], *, model: str, dim: int) -> Path:
        """Write the chunks and metadata of a generation (not yet active)."""
        folder = self.path(generation)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "chunks.jsonl").open("w", encoding="utf-8") as fh:
            for chunk in chunks:
                fh.write(json.dumps(chunk.to_record(), ensure_ascii=False) + "\n")
        meta = GenerationMeta(generation, model, dim, len(chunks), time.time())
        (folder / "meta.json").write_text(json.dumps(meta.__dict__))
        return folder

    def read_meta(self, generation: str) -> GenerationMeta:
        """Metadata of a generation."""
        return GenerationMeta(**json.loads((self.path(generation) / "meta.json").read_text()))

    def write_lexical(self, generation: str, index: LexicalIndex) -> None:
        """Save a generation's BM25 index next to its chunks."""
        index.save(self.path(generation) / "bm25")

    def read_lexical(self, generation: str) -> LexicalIndex:
        """A generation's BM25 index."""
        return LexicalIndex.load(self.path(generation) / "bm25")

    def read_chunks(self, generation: str) -> list[Chunk]:
        """All chunks of a generation, in index order."""
        with (self.path(generation) / "chunks.jsonl").open(encoding="utf-8") as fh:
            return [Chunk.from_record(json.loads(line)) for line in fh if line.strip()]

    def active(self) -> str | None:
        """The generation the bot serves, or None before the first refresh."""
        pointer = self.index_dir / "ACTIVE"
        if not pointer.exists():
            return None
        generation = json.loads(pointer.read_text())["generation"]
        return generation if (self.path(generation) / "meta.json").exists() else None

    def require_active(self) -> str:
        """The active generation, or a clear error telling the maintainer to refresh."""
        generation = self.active()
        if generation is None:
            raise IndexNotReadyError("no index yet: run `vraagbaak corpus refresh` first")
        return generation

    def activate(self, generation: str) -> None:
        """Atomically make ``generation`` the one readers open."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.index_dir / "ACTIVE.tmp"
        tmp.write_text(json.dumps({"generation": generation}))
        os.replace(tmp, self.index_dir / "ACTIVE")

    def all_generations(self) -> list[str]:
        """Generation folders on disk, oldest first."""
        if not self.generations_dir.exists():
            return []
        return sorted(p.name for p in self.generations_dir.iterdir() if p.is_dir())

    def remove(self, generation: str) -> None:
        """Delete a generation folder."""
        shutil.rmtree(self.path(generation), ignore_errors=True)

    @contextmanager
    def refresh_lock(self) -> Iterator[None]:
        """A lock file in the index folder, held while a refresh runs."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        with (self.index_dir / "refresh.lock").open("w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IndexBusyError(f"another refresh is running on the {self.describe()}") from None
            yield


class EmbeddingCache:
    """SQLite cache of vectors keyed by (model, content hash): unchanged chunks are never re-embedded."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, hash TEXT NOT NULL, "
            "vector BLOB NOT NULL, PRIMARY KEY (model, hash))"
        )
        self._db.commit()

    def get_many(self, model: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Cached vectors for the hashes that have one."""
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT hash, vector FROM embeddings WHERE model = ? AND hash IN ({marks})", [model, *part]
            )
            for digest, blob in rows:
                found[digest] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, model: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Store vectors; committed at once so an interrupted refresh keeps the work done."""
        self._db.executemany(
            "INSERT OR REPLACE INTO embeddings (model, hash, vector) VALUES (?, ?, ?)",
            [(model, digest, np.asarray(vec, dtype=np.float32).tobytes()) for digest, vec in items],
        )
        self._db.commit()

    def close(self) -> None:
        """Close the database."""
        self._db.close()
