"""Benchmarks of the knowledge engine (not tests): index throughput, no-change refresh, query latency, RSS.

Usage (numbers go to docs/PERFORMANCE.md):

    python bench/bench_retrieval.py throughput --manifest bench/manifests/aanbestedingswet.yaml
    VRAAGBAAK_HOME=/path/with/index python bench/bench_retrieval.py refresh --manifest bench/manifests/legalqa.yaml
    VRAAGBAAK_HOME=/path/with/index python bench/bench_retrieval.py query --questions FILE.jsonl [--repeat 3]
    VRAAGBAAK_HOME=/path/with/index python bench/bench_retrieval.py reply --questions FILE.jsonl [--repeat 3]

Each prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus.manifest import load_manifest  # noqa: E402
from corpus.refresh import Refresher, _chunk_source  # noqa: E402
from corpus.fetch import fetch_source  # noqa: E402
from corpus.refresh import SourceReport  # noqa: E402
from retrieval.embedders import QueryCache, make_embedder  # noqa: E402
from retrieval.evaluation import percentile, read_questions  # noqa: E402
from retrieval.search import HybridRetriever  # noqa: E402
from retrieval.settings import RetrievalSettings  # noqa: E402
from retrieval.store import GenerationStore  # noqa: E402
from retrieval.vector_index import ChromaIndex  # noqa: E402


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def throughput(args: argparse.Namespace) -> dict:
    """Cold refresh into an empty data dir, against the embedder's raw speed on the same texts."""
    settings = RetrievalSettings.from_env(os.environ)
    embedder = make_embedder(settings.embedder)
    manifest = load_manifest(args.manifest, home=settings.home)
    chunks = []
    for spec in manifest.sources:
        chunks += _chunk_source(spec, fetch_source(spec, manifest.base_dir), SourceReport(spec.id))
    texts = [c.embedding_text() for c in chunks]
    started = time.perf_counter()
    embedder.embed_passages(texts)
    raw = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as home:
        refresher = Refresher(home=Path(home), embedder=embedder,
                              vectors=ChromaIndex(path=Path(home) / "index" / "chroma"))
        started = time.perf_counter()
        summary = refresher.refresh(manifest)
        total = time.perf_counter() - started
    return {
        "bench": "throughput", "manifest": str(args.manifest), "model": embedder.name, "chunks": len(chunks),
        "raw_embed_s": round(raw, 2), "raw_passages_per_s": round(len(texts) / raw, 2),
        "refresh_s": round(total, 2), "refresh_chunks_per_s": round(summary.added / total, 2),
        "pipeline_overhead_pct": round(100 * (total - raw) / raw, 1), "peak_rss_mb": round(_peak_rss_mb()),
        **_machine(),
    }


def refresh(args: argparse.Namespace) -> dict:
    """Time refreshes of an already indexed manifest where nothing changed."""
    settings = RetrievalSettings.from_env(os.environ)
    embedder = make_embedder(settings.embedder)
    refresher = Refresher(home=settings.home, embedder=embedder,
                          vectors=ChromaIndex(path=settings.index_dir / "chroma"))
    manifest = load_manifest(args.manifest, home=settings.home)
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        summary = refresher.refresh(manifest)
        times.append(time.perf_counter() - started)
        assert summary.embedded == 0 and not summary.switched, "the index was not up to date"
    return {"bench": "no-change refresh", "manifest": str(args.manifest), "chunks": summary.unchanged,
            "seconds": [round(t, 3) for t in times], "median_s": round(statistics.median(times), 3), **_machine()}


def query(args: argparse.Namespace) -> dict:
    """Warm hybrid query latency and the serving process's peak RSS."""
    settings = RetrievalSettings.from_env(os.environ)
    embedder = make_embedder(settings.embedder)
    retriever = HybridRetriever(store=GenerationStore(settings.index_dir),
                                vectors=ChromaIndex(path=settings.index_dir / "chroma"), embedder=embedder)
    questions = [q.question for path in args.questions for q in read_questions(path)]
    for q in questions[:5]:
        retriever.search(q, k=10)
    latencies = []
    for _ in range(args.repeat):
        for q in questions:
            started = time.perf_counter()
            retriever.search(q, k=10, mode=args.mode)
            latencies.append((time.perf_counter() - started) * 1000)
    return {"bench": "warm query", "mode": args.mode, "chunks": len(retriever.chunks), "queries": len(latencies),
            "p50_ms": round(statistics.median(latencies), 1), "p95_ms": round(percentile(latencies, 95), 1),
            "peak_rss_mb": round(_peak_rss_mb()), **_machine()}


def reply(args: argparse.Namespace) -> dict:
    """Warm end-to-end reply latency of the helpdesk (extractive answers), as a channel would call it."""
    from bot.audit import AuditLog
    from bot.core import HelpdeskService
    from bot.messages import Incoming

    settings = RetrievalSettings.from_env(os.environ)
    # As App builds it; small, so a repeated run of the same question is not served from the cache.
    embedder = QueryCache(make_embedder(settings.embedder), size=4)
    retriever = HybridRetriever(store=GenerationStore(settings.index_dir),
                                vectors=ChromaIndex(path=settings.index_dir / "chroma"), embedder=embedder)
    with tempfile.TemporaryDirectory() as tmp:
        shared = {}
        if args.shared_state:  # as `vraagbaak serve` runs it: memory and the ticket limit in the database
            from bot.shared_state import SharedConversationMemory, SharedRateLimiter, SharedState

            state = SharedState(f"sqlite:///{Path(tmp) / 'tickets.sqlite'}")
            shared = {"memory": SharedConversationMemory(state),
                      "ticket_limit": SharedRateLimiter(state, "tickets", 5, 3600)}
        audit = AuditLog(f"sqlite:///{Path(tmp) / 'audit.sqlite'}", key=b"b")
        helpdesk = HelpdeskService.create(retriever=retriever, audit=audit,
                                          model=embedder.name, embed=embedder.embed_query, **shared)
        questions = [q.question for path in args.questions for q in read_questions(path)]
        for n, q in enumerate(questions[:5]):
            helpdesk.handle(Incoming(channel="bench", conversation_id=f"w{n}", user_id="b", text=q))
        latencies = []
        decisions: dict[str, int] = {}
        for r in range(args.repeat):
            for n, q in enumerate(questions):
                started = time.perf_counter()
                out = helpdesk.handle(Incoming(channel="bench", conversation_id=f"{r}:{n}", user_id="b", text=q))
                latencies.append((time.perf_counter() - started) * 1000)
                decisions[str(out.decision)] = decisions.get(str(out.decision), 0) + 1
    return {"bench": "warm reply (extractive)" + (", shared state" if args.shared_state else ""),
            "chunks": len(retriever.chunks), "replies": len(latencies),
            "p50_ms": round(statistics.median(latencies), 1), "p95_ms": round(percentile(latencies, 95), 1),
            "decisions": decisions, "peak_rss_mb": round(_peak_rss_mb()), **_machine()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--manifest", type=Path, required=True)
    p = sub.add_parser("refresh")
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--repeat", type=int, default=3)
    p = sub.add_parser("query")
    p.add_argument("--questions", type=Path, nargs="+", required=True)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--mode", default="hybrid")
    p = sub.add_parser("reply")
    p.add_argument("--questions", type=Path, nargs="+", required=True)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--shared-state", action="store_true", help="memory and limits in SQLite, as `serve` has them")
    args = parser.parse_args()
    commands = {"throughput": throughput, "refresh": refresh, "query": query, "reply": reply}
    print(json.dumps(commands[args.cmd](args)))


if __name__ == "__main__":
    main()
