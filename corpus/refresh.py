"""Refresh the index from the manifest: incremental, staged, and safe to interrupt.

A refresh reads every selected source, chunks it, embeds only chunks whose content hash is not
in the embedding cache, writes a complete new index generation and only then switches the
active pointer. A crash at any point leaves the previous generation serving.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from corpus.chunking import chunk_document
from corpus.documents import LoadedDocument
from corpus.errors import CorpusError
from corpus.fetch import FetchResult, fetch_source, resolve_location
from corpus.loaders import load_file
from corpus.loaders.templates import load_templates
from corpus.manifest import Manifest, SourceSpec
from retrieval.embedders import Embedder
from retrieval.errors import IndexBusyError, ModelMismatchError
from retrieval.lexical import LexicalIndex
from retrieval.store import EmbeddingCache, GenerationStore, IndexStore
from retrieval.types import Chunk
from retrieval.vector_index import VectorIndex

logger = logging.getLogger(__name__)

CHUNKER_VERSION = "2"
"""Bump when loaders or chunking change, so unchanged files are parsed again."""
EMBED_BATCH = 32

Progress = Callable[[int, int], None]


@dataclass
class SourceReport:
    """Outcome for one source."""

    source_id: str
    status: str = "ok"
    """ok | unchanged | failed | skipped"""
    chunks: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class RefreshSummary:
    """What a refresh did, for the summary line and the exit status."""

    sources: list[SourceReport]
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    embedded: int = 0
    generation: str | None = None
    switched: bool = False
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def failed(self) -> list[SourceReport]:
        """Sources that could not be read."""
        return [s for s in self.sources if s.status == "failed"]


class SourceState:
    """Per-source bookkeeping (last refresh, chunk count, last error, HTTP validators) in SQLite."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sources (id TEXT PRIMARY KEY, last_refresh REAL, last_success REAL, "
            "chunks INTEGER, last_error TEXT, validators TEXT, raw_hash TEXT)"
        )
        self._db.commit()

    def get(self, source_id: str) -> dict:
        """The stored row for a source (empty dict when never refreshed)."""
        cur = self._db.execute(
            "SELECT id, last_refresh, last_success, chunks, last_error, validators, raw_hash FROM sources "
            "WHERE id = ?", (source_id,))
        row = cur.fetchone()
        if row is None:
            return {}
        keys = ("id", "last_refresh", "last_success", "chunks", "last_error", "validators", "raw_hash")
        record = dict(zip(keys, row))
        record["validators"] = json.loads(record["validators"] or "{}")
        return record

    def record(self, report: SourceReport, *, validators: dict[str, str] | None = None,
               raw_hash: str | None = None) -> None:
        """Store the outcome of one source's refresh."""
        now = time.time()
        old = self.get(report.source_id)
        ok = report.status in ("ok", "unchanged")
        self._db.execute(
            "INSERT OR REPLACE INTO sources (id, last_refresh, last_success, chunks, last_error, validators, "
            "raw_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (report.source_id, now, now if ok else old.get("last_success"), report.chunks,
             None if ok else report.error,
             json.dumps(validators if validators is not None else old.get("validators", {})),
             raw_hash if raw_hash is not None else old.get("raw_hash")),
        )
        self._db.commit()

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def _exists(spec: SourceSpec, base_dir: Path) -> bool:
    path = resolve_location(spec, base_dir)
    return any(path.parent.glob(path.name)) if path.parent.exists() else False


def _raw_hash(fetched: FetchResult) -> str:
    digest = hashlib.sha256(CHUNKER_VERSION.encode())
    for raw in fetched.files:
        digest.update(raw.name.encode() + b"\0" + (raw.link or "").encode() + b"\0")
        digest.update(hashlib.sha256(raw.data).digest())
    return digest.hexdigest()


def _documents(spec: SourceSpec, fetched: FetchResult, report: SourceReport) -> Iterator[tuple[str, LoadedDocument]]:
    """(file name, document) for every document of the source."""
    if spec.catalogue:
        documents, warnings = load_templates(fetched.files, catalogue=spec.catalogue,
                                             load=lambda raw, fmt: load_file(raw, spec, fmt))
        report.warnings.extend(warnings)
        yield from ((dict(doc.meta)["file_name"], doc) for doc in documents)
        return
    for raw in fetched.files:
        for doc in load_file(raw, spec):
            yield raw.name, doc


def _chunk_source(spec: SourceSpec, fetched: FetchResult, report: SourceReport) -> list[Chunk]:
    chunks: list[Chunk] = []
    window = {k: v for k, v in (("valid_from", spec.valid_from), ("valid_until", spec.valid_until)) if v}
    for name, doc in _documents(spec, fetched, report):
        if spec.effective_date and not doc.effective_date:
            doc = replace(doc, effective_date=spec.effective_date)
        if window:
            own = dict(doc.meta)
            doc = replace(doc, meta=tuple({**window, **own}.items()))  # a document's own window wins
        report.warnings.extend(f"{name}: {w}" for w in doc.warnings)
        chunks.extend(chunk_document(doc, source_id=spec.id, kind=spec.kind))
    if not chunks:
        raise CorpusError("no text found in the source")
    ids = [c.id for c in chunks]
    if len(set(ids)) != len(ids):
        # Two documents of one source with the same id would overwrite each other's citations.
        dupes = sorted({i for i in ids if ids.count(i) > 1})[:3]
        raise CorpusError(f"duplicate chunk ids, e.g. {', '.join(dupes)}")
    return chunks


class Refresher:
    """Builds index generations from a manifest."""

    def __init__(self, *, home: Path, embedder: Embedder, vectors: VectorIndex, store: IndexStore | None = None
                 ) -> None:
        self.home = home
        self.store: IndexStore = store if store is not None else GenerationStore(home / "index")
        self.embedder = embedder
        self.vectors = vectors
        self.state_path = home / "state.sqlite"
        self.cache_path = home / "cache" / "embeddings.sqlite"

    def refresh(self, manifest: Manifest, *, only: list[str] | None = None, dry_run: bool = False,
                rebuild: bool = False, online: bool = False, progress: Progress | None = None) -> RefreshSummary:
        """Refresh the selected sources (all by default) and switch to the new index."""
        started = time.monotonic()
        with ExitStack() as held:
            try:
                held.enter_context(self.store.refresh_lock())
            except IndexBusyError as exc:
                raise CorpusError(str(exc)) from None
            state = SourceState(self.state_path)
            try:
                summary = self._refresh(manifest, state, only=only, dry_run=dry_run, rebuild=rebuild,
                                        online=online, progress=progress)
            finally:
                state.close()
        summary.seconds = time.monotonic() - started
        return summary

    def _previous(self, rebuild: bool) -> tuple[str | None, dict[str, list[Chunk]]]:
        generation = self.store.active()
        if generation is None:
            return None, {}
        meta = self.store.read_meta(generation)
        if meta.model != self.embedder.name and not rebuild:
            raise ModelMismatchError(
                f"the index was built with {meta.model}, the embedder is now {self.embedder.name}: "
                "run `vraagbaak corpus refresh --rebuild`")
        by_source: dict[str, list[Chunk]] = {}
        for chunk in self.store.read_chunks(generation):
            by_source.setdefault(chunk.source_id, []).append(chunk)
        return generation, by_source

    def _refresh(self, manifest: Manifest, state: SourceState, *, only: list[str] | None, dry_run: bool,
                 rebuild: bool, online: bool, progress: Progress | None) -> RefreshSummary:
        selected = {manifest.get(i).id for i in only} if only else {s.id for s in manifest.sources}
        previous_gen, previous = self._previous(rebuild)
        reports: list[SourceReport] = []
        new_by_source: dict[str, list[Chunk]] = {}
        pending_state: list[tuple[SourceReport, dict[str, str] | None, str | None]] = []
        for spec in manifest.sources:
            kept = previous.get(spec.id, [])
            if spec.id not in selected:
                new_by_source[spec.id] = kept
                continue
            report = SourceReport(spec.id)
            reports.append(report)
            if spec.online and not online:
                report.status, report.chunks = "skipped", len(kept)
                report.error = "online source: refreshed only with --online"
                new_by_source[spec.id] = kept
                continue
            old = state.get(spec.id)
            if spec.optional and not spec.is_remote and not _exists(spec, manifest.base_dir):
                report.status, report.chunks, report.error = "skipped", 0, "nothing there yet (optional source)"
                new_by_source[spec.id] = []
                continue
            try:
                fetched = fetch_source(spec, manifest.base_dir, validators=old.get("validators"))
                raw_hash = None if fetched.not_modified else _raw_hash(fetched)
                if kept and not rebuild and (fetched.not_modified or raw_hash == old.get("raw_hash")):
                    report.status, chunks = "unchanged", kept
                else:
                    chunks = _chunk_source(spec, fetched, report)
            except CorpusError as exc:
                report.status, report.error, report.chunks = "failed", str(exc), len(kept)
                logger.warning("source %s failed: %s", spec.id, exc)
                new_by_source[spec.id] = kept
                pending_state.append((report, None, None))
                continue
            except Exception as exc:  # a parser bug on one odd file must not stop the other sources
                logger.exception("source %s failed unexpectedly", spec.id)
                report.status, report.error, report.chunks = "failed", f"{exc.__class__.__name__}: {exc}", len(kept)
                new_by_source[spec.id] = kept
                pending_state.append((report, None, None))
                continue
            report.chunks = len(chunks)
            new_by_source[spec.id] = chunks
            pending_state.append((report, fetched.validators, raw_hash))

        chunks = _renumber([c for spec in manifest.sources for c in new_by_source.get(spec.id, [])])
        # Compared whole (text and citation metadata), position aside: a changed link or label is a change too.
        old_chunks = {c.id: replace(c, position=0) for cs in previous.values() for c in cs}
        summary = RefreshSummary(sources=reports, dry_run=dry_run)
        new_ids = {c.id for c in chunks}
        for chunk in chunks:
            if chunk.id not in old_chunks:
                summary.added += 1
            elif old_chunks[chunk.id] != replace(chunk, position=0):
                summary.changed += 1
            else:
                summary.unchanged += 1
        summary.removed = sum(1 for cid in old_chunks if cid not in new_ids)
        structural_change = summary.added or summary.changed or summary.removed
        if not dry_run:
            if structural_change or rebuild or previous_gen is None or _order_changed(previous, chunks):
                summary.generation = self._build(chunks, progress, summary)
                summary.switched = True
            else:
                summary.generation = previous_gen
            # Source state is written only once the index it describes is live.
            for report, validators, raw_hash in pending_state:
                state.record(report, validators=validators, raw_hash=raw_hash)
        return summary

    def _build(self, chunks: list[Chunk], progress: Progress | None, summary: RefreshSummary) -> str:
        vectors = self._embed(chunks, progress, summary)
        generation = self.store.new_generation_id()
        self.store.write(generation, chunks, model=self.embedder.name, dim=int(vectors.shape[1]))
        self.store.write_lexical(generation, LexicalIndex.build([c.embedding_text() for c in chunks]))
        self.vectors.create(generation)
        self.vectors.add(generation, [c.id for c in chunks], vectors)
        previous = self.store.active()
        self.store.activate(generation)
        self._collect_garbage(keep={generation, previous})
        return generation

    def _embed(self, chunks: list[Chunk], progress: Progress | None, summary: RefreshSummary) -> np.ndarray:
        cache = EmbeddingCache(self.cache_path)
        try:
            model = self.embedder.name
            found = cache.get_many(model, (c.content_hash for c in chunks))
            missing: dict[str, str] = {}
            for chunk in chunks:
                if chunk.content_hash not in found:
                    missing.setdefault(chunk.content_hash, chunk.embedding_text())
            todo = list(missing.items())
            if progress:
                progress(0, len(todo))
            for start in range(0, len(todo), EMBED_BATCH):
                batch = todo[start : start + EMBED_BATCH]
                vecs = self.embedder.embed_passages([text for _, text in batch])
                pairs = [(digest, vec) for (digest, _), vec in zip(batch, vecs)]
                cache.put_many(model, pairs)
                found.update(pairs)
                summary.embedded += len(batch)
                if progress:
                    progress(min(start + EMBED_BATCH, len(todo)), len(todo))
            dim = getattr(self.embedder, "dim", 0)
            if not chunks:
                return np.zeros((0, dim), dtype=np.float32)
            return np.vstack([found[c.content_hash] for c in chunks]).astype(np.float32)
        finally:
            cache.close()

    def _collect_garbage(self, keep: set[str | None]) -> None:
        # The previous generation stays: a running bot may still be answering from it. Only collections of
        # generations this store holds go: a Chroma server may serve another data dir or deployment too.
        known = set(self.store.all_generations())
        for generation in known - keep:
            self.store.remove(generation)
        for generation in self.vectors.generations():
            if generation in known and generation not in keep:
                self.vectors.drop(generation)


def _renumber(chunks: list[Chunk]) -> list[Chunk]:
    return [c if c.position == i else replace(c, position=i) for i, c in enumerate(chunks)]


def _order_changed(previous: dict[str, list[Chunk]], chunks: list[Chunk]) -> bool:
    old_order = [c.id for cs in previous.values() for c in cs]
    return old_order != [c.id for c in chunks] and sorted(old_order) == sorted(c.id for c in chunks)
