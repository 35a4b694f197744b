"""Index generations in the deployment's database, so workers on several machines serve the same one.

The files store (``retrieval/store.py``) keeps chunks, the BM25 files and the ACTIVE pointer on the disk of the
machine that ran the refresh; a worker elsewhere would never see them. Here they are rows (the vectors are in the
Chroma server, ``VRAAGBAAK_CHROMA_URL``):

    index_generations   generation, model, dim, chunk count, created, chunks (gzip JSONL), lexical (gzip tar)
    index_active        one row: the generation the workers serve

A generation is written whole before the pointer names it, and the pointer moves in one UPDATE, so a worker reads
either the old generation or the new one. Readers cache the pointer for ``active_ttl`` seconds: every question
checks it, and a two-second delay before a refresh is served costs nothing.
"""

from __future__ import annotations

import fcntl
import gzip
import io
import json
import logging
import tarfile
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from common.database import create_tables, database_engine, shown_url
from retrieval.errors import (
    IndexBusyError,
    IndexNotReadyError,
    IndexUnavailableError,
    RetrievalError,
)
from retrieval.lexical import LexicalIndex
from retrieval.store import GenerationMeta, new_generation_id
from retrieval.types import Chunk

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

index_generations = sa.Table(
    "index_generations", metadata,
    sa.Column("generation", sa.String(64), primary_key=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("chunk_count", sa.Integer, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("chunks", sa.LargeBinary, nullable=False),
    sa.Column("lexical", sa.LargeBinary),
)

index_active = sa.Table(
    "index_active", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("generation", sa.String(64), nullable=False),
    sa.Column("switched_at", sa.Float, nullable=False),
)

ACTIVE_TTL_SECONDS = 2.0
"""How long a worker trusts the pointer it read: a refresh is served at most this much later."""
MAX_BLOB_BYTES = 512 * 1024 * 1024
"""A stored generation larger than this (compressed) is refused when read: the corpus is text, a few MB."""
_REFRESH_LOCK_KEY = 0x56424958
"""PostgreSQL advisory lock of a refresh ("VBIX"): one refresh per deployment at a time."""


class DatabaseGenerationStore:
    """The ``GenerationStore`` interface over SQLite or PostgreSQL (``VRAAGBAAK_DATABASE_URL``)."""

    def __init__(self, url: str, *, active_ttl: float = ACTIVE_TTL_SECONDS) -> None:
        self.url = url
        self.engine = database_engine(url, pool_pre_ping=True)
        self.active_ttl = active_ttl
        self._cached: tuple[float, str | IndexUnavailableError | None] | None = None
        self._cache_lock = threading.Lock()
        try:
            create_tables(self.engine, metadata)
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise IndexUnavailableError(self._unreachable(exc)) from None

    def describe(self) -> str:
        """Where the index lives, for maintainers."""
        return f"database {shown_url(self.url)}"

    def _unreachable(self, exc: SQLAlchemyError) -> str:
        cause = getattr(exc, "orig", None) or exc
        return f"the index database {shown_url(self.url)} cannot be reached: {type(cause).__name__}"

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sa.Connection]:
        try:
            with (self.engine.begin() if write else self.engine.connect()) as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise IndexUnavailableError(self._unreachable(exc)) from None

    def new_generation_id(self) -> str:
        """A fresh, sortable generation id."""
        return new_generation_id()

    def write(self, generation: str, chunks: Sequence[Chunk], *, model: str, dim: int) -> None:
        """Store the chunks and metadata of a generation (not yet active)."""
        lines = "".join(json.dumps(c.to_record(), ensure_ascii=False) + "\n" for c in chunks)
        with self._connect(write=True) as conn:
            conn.execute(index_generations.insert().values(
                generation=generation, model=model, dim=dim, chunk_count=len(chunks), created=time.time(),
                chunks=gzip.compress(lines.encode("utf-8"), compresslevel=6)))

    def write_lexical(self, generation: str, index: LexicalIndex) -> None:
        """Store a generation's BM25 index (its files, as one compressed archive)."""
        with tempfile.TemporaryDirectory(prefix="vraagbaak-bm25-") as tmp:
            index.save(Path(tmp))
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                for path in sorted(Path(tmp).iterdir()):
                    tar.add(path, arcname=path.name)
        with self._connect(write=True) as conn:
            conn.execute(index_generations.update().where(index_generations.c.generation == generation)
                         .values(lexical=buffer.getvalue()))

    def _row(self, generation: str, *columns: sa.Column) -> sa.Row:
        with self._connect() as conn:
            row = conn.execute(sa.select(*columns).where(index_generations.c.generation == generation)).first()
        if row is None:
            raise RetrievalError(f"index generation {generation} is not in the {self.describe()}")
        return row

    def read_meta(self, generation: str) -> GenerationMeta:
        """Metadata of a generation."""
        c = index_generations.c
        row = self._row(generation, c.model, c.dim, c.chunk_count, c.created)
        return GenerationMeta(generation, row.model, row.dim, row.chunk_count, row.created)

    def read_chunks(self, generation: str) -> list[Chunk]:
        """All chunks of a generation, in index order."""
        blob = _bounded(self._row(generation, index_generations.c.chunks).chunks, generation)
        try:
            text = _gunzip(blob).decode("utf-8")
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
            raise RetrievalError(f"index generation {generation} has unreadable chunks: {exc}") from None
        return [Chunk.from_record(json.loads(line)) for line in text.splitlines() if line.strip()]

    def read_lexical(self, generation: str) -> LexicalIndex:
        """A generation's BM25 index."""
        blob = self._row(generation, index_generations.c.lexical).lexical
        if blob is None:
            raise RetrievalError(f"index generation {generation} has no lexical index (an interrupted refresh)")
        _bounded(blob, generation)
        with tempfile.TemporaryDirectory(prefix="vraagbaak-bm25-") as tmp:
            try:
                with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
                    # Our own archive, but read as data: plain files by name only, nothing outside the folder.
                    tar.extractall(tmp, filter="data")
            except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                raise RetrievalError(f"index generation {generation} has an unreadable lexical index: {exc}") \
                    from None
            return LexicalIndex.load(Path(tmp))

    def active(self) -> str | None:
        """The generation the workers serve, or None before the first refresh (cached ``active_ttl`` seconds)."""
        now = time.monotonic()
        cached = self._cached
        if cached is not None and now - cached[0] < self.active_ttl:
            if isinstance(cached[1], IndexUnavailableError):
                raise cached[1]  # asked again within the TTL: no new connection attempt per question
            return cached[1]
        try:
            with self._connect() as conn:
                generation = conn.execute(
                    sa.select(index_active.c.generation).join(
                        index_generations, index_generations.c.generation == index_active.c.generation)
                    .where(index_active.c.id == 1, index_generations.c.lexical.is_not(None))).scalar()
        except IndexUnavailableError as exc:
            with self._cache_lock:
                self._cached = (now, exc)
            raise
        with self._cache_lock:
            self._cached = (now, generation)
        return generation

    def require_active(self) -> str:
        """The active generation, or a clear error telling the maintainer to refresh."""
        generation = self.active()
        if generation is None:
            raise IndexNotReadyError(f"no index yet in the {self.describe()}: run `vraagbaak corpus refresh` first")
        return generation

    def activate(self, generation: str) -> None:
        """Make ``generation`` the one every worker serves, in one statement."""
        now = time.time()
        with self._connect(write=True) as conn:
            updated = conn.execute(index_active.update().where(index_active.c.id == 1)
                                   .values(generation=generation, switched_at=now)).rowcount
            if not updated:
                conn.execute(index_active.insert().values(id=1, generation=generation, switched_at=now))
        with self._cache_lock:
            self._cached = None

    def all_generations(self) -> list[str]:
        """Stored generations, oldest first."""
        with self._connect() as conn:
            return sorted(conn.execute(sa.select(index_generations.c.generation)).scalars())

    def remove(self, generation: str) -> None:
        """Delete a generation (never the active one: the pointer would name nothing)."""
        with self._connect(write=True) as conn:
            conn.execute(index_generations.delete().where(
                index_generations.c.generation == generation,
                index_generations.c.generation.not_in(sa.select(index_active.c.generation))))

    @contextmanager
    def refresh_lock(self) -> Iterator[None]:
        """Held while a refresh runs: a second refresh of the same deployment, on any machine, is refused."""
        if self.engine.dialect.name == "postgresql":
            # A session lock on a connection of its own, in autocommit: not a transaction left open for the whole
            # refresh (which idle_in_transaction_session_timeout would end, and the lock with it).
            try:
                conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                taken = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _REFRESH_LOCK_KEY}).scalar()
            except SQLAlchemyError as exc:
                raise IndexUnavailableError(self._unreachable(exc)) from None
            try:
                if not taken:
                    raise IndexBusyError(f"another refresh is running on the {self.describe()}")
                yield
            finally:
                try:
                    if taken:
                        conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _REFRESH_LOCK_KEY})
                    conn.close()
                except SQLAlchemyError as exc:  # the connection is gone, and its lock with it
                    logger.warning("refresh lock not released explicitly (%s)", type(exc).__name__)
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            yield  # an in-memory database lives in this process only
            return
        with open(database + ".refresh.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IndexBusyError(f"another refresh is running on the {self.describe()}") from None
            yield

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()


def _bounded(blob: bytes, generation: str) -> bytes:
    if len(blob) > MAX_BLOB_BYTES:
        raise RetrievalError(f"index generation {generation} is larger than {MAX_BLOB_BYTES} bytes: refused")
    return blob


def _gunzip(blob: bytes) -> bytes:
    """Decompress, refusing output beyond the bound (a stored blob is ours, but a bound costs nothing)."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = decompressor.decompress(blob, MAX_BLOB_BYTES + 1)
    if len(out) > MAX_BLOB_BYTES or decompressor.unconsumed_tail:
        raise OSError("decompressed chunks exceed the size bound")
    return out
