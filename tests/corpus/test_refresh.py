"""Incremental refresh: add / change / delete, crash mid-way, bad files, HTTP 304 and errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from corpus.errors import CorpusError
from corpus.manifest import load_manifest
from corpus.refresh import Refresher, SourceState
from retrieval.embedders import FakeEmbedder
from retrieval.errors import ModelMismatchError
from retrieval.search import HybridRetriever
from retrieval.vector_index import ExactIndex
from tests.fakes import CrashingIndex

NOTE_A = """# Innovatiepartnerschap

## Wat is het?
Een innovatiepartnerschap laat een gemeente een nieuwe oplossing ontwikkelen en daarna aankopen.

## Fasen
Het partnerschap verloopt in fasen met tussentijdse doelen.
"""

NOTE_B = """# Marktconsultatie

## Waarom?
Een marktconsultatie toont wat de markt kan leveren voor je een opdracht plaatst.
"""


def _manifest(folder: Path, extra: str = "") -> Path:
    path = folder / "sources.yaml"
    path.write_text(
        "sources:\n"
        "  - id: notes\n    title: Nota's\n    kind: guidance\n    location: 'notes/*.md'\n" + extra,
        encoding="utf-8",
    )
    return path


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    (folder / "notes").mkdir(parents=True)
    (folder / "notes" / "a.md").write_text(NOTE_A, encoding="utf-8")
    (folder / "notes" / "b.md").write_text(NOTE_B, encoding="utf-8")
    return folder


def _refresher(home: Path, embedder: FakeEmbedder | None = None, vectors: ExactIndex | None = None) -> Refresher:
    return Refresher(home=home, embedder=embedder or FakeEmbedder(), vectors=vectors or ExactIndex())


def test_first_refresh_indexes_everything_and_search_finds_it(home: Path, corpus_dir: Path) -> None:
    refresher = _refresher(home)
    summary = refresher.refresh(load_manifest(_manifest(corpus_dir)))
    assert summary.failed == []
    assert summary.added == 3 and summary.removed == 0
    assert summary.switched
    retriever = HybridRetriever(store=refresher.store, vectors=refresher.vectors, embedder=refresher.embedder)
    [top, *_] = retriever.search("marktconsultatie voor een opdracht", k=3)
    assert top.chunk.title == "Marktconsultatie"


def test_no_change_refresh_embeds_nothing_and_keeps_the_generation(home: Path, corpus_dir: Path) -> None:
    embedder = FakeEmbedder()
    refresher = _refresher(home, embedder)
    manifest = load_manifest(_manifest(corpus_dir))
    first = refresher.refresh(manifest)
    calls = embedder.calls
    second = refresher.refresh(manifest)
    assert embedder.calls == calls
    assert second.embedded == 0 and second.unchanged == 3
    assert (second.added, second.changed, second.removed) == (0, 0, 0)
    assert second.generation == first.generation and not second.switched
    assert second.sources[0].status == "unchanged"


def test_changed_added_and_deleted_chunks(home: Path, corpus_dir: Path) -> None:
    embedder = FakeEmbedder()
    refresher = _refresher(home, embedder)
    manifest = load_manifest(_manifest(corpus_dir))
    refresher.refresh(manifest)
    (corpus_dir / "notes" / "a.md").write_text(
        NOTE_A.replace("tussentijdse doelen", "tussentijdse doelen en een evaluatie per fase")
        .replace("## Wat is het?\nEen innovatiepartnerschap laat een gemeente een nieuwe oplossing ontwikkelen "
                 "en daarna aankopen.\n\n", "")
        + "\n## Intellectuele eigendom\nSpreek vooraf af wie de rechten krijgt.\n",
        encoding="utf-8",
    )
    calls = embedder.calls
    summary = refresher.refresh(manifest)
    assert (summary.added, summary.changed, summary.removed, summary.unchanged) == (1, 1, 1, 1)
    assert embedder.calls - calls == 2  # only the changed and the new chunk
    (corpus_dir / "notes" / "b.md").unlink()
    summary = refresher.refresh(manifest)
    assert summary.removed == 1
    chunks = refresher.store.read_chunks(refresher.store.require_active())
    assert all("Marktconsultatie" != c.title for c in chunks)


def test_crash_mid_refresh_leaves_the_previous_index_serving(home: Path, corpus_dir: Path) -> None:
    vectors = CrashingIndex()
    refresher = _refresher(home, vectors=vectors)
    manifest = load_manifest(_manifest(corpus_dir))
    first = refresher.refresh(manifest)
    (corpus_dir / "notes" / "b.md").write_text(NOTE_B + "\n## Hoe?\nNodig bedrijven uit voor een infosessie.\n",
                                               encoding="utf-8")
    vectors.crash = True
    with pytest.raises(KeyboardInterrupt):
        refresher.refresh(manifest)
    assert refresher.store.active() == first.generation
    retriever = HybridRetriever(store=refresher.store, vectors=vectors, embedder=refresher.embedder)
    assert retriever.search("marktconsultatie", k=1)[0].chunk.title == "Marktconsultatie"
    assert len(refresher.store.all_generations()) == 2  # the abandoned stage is still on disk ...
    vectors.crash = False
    summary = refresher.refresh(manifest)
    assert summary.switched and summary.added == 1
    assert summary.embedded == 0  # ... and its embeddings were cached before the crash
    assert set(refresher.store.all_generations()) == {first.generation, summary.generation}


def test_bad_sources_are_reported_by_name_and_the_rest_still_refresh(home: Path, corpus_dir: Path) -> None:
    (corpus_dir / "empty.md").write_bytes(b"")
    (corpus_dir / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<>> garbage")
    extra = (
        "  - id: empty\n    title: Leeg\n    kind: guidance\n    location: empty.md\n"
        "  - id: broken\n    title: Kapot\n    kind: guidance\n    location: broken.pdf\n"
        "  - id: missing\n    title: Weg\n    kind: guidance\n    location: nothing-here.md\n"
        "  - id: mystery\n    title: Raadsel\n    kind: guidance\n    location: notes/a.md\n    format: csv\n"
        "    columns: {id: nope, text: nope}\n"
    )
    summary = _refresher(home).refresh(load_manifest(_manifest(corpus_dir, extra)))
    by_id = {r.source_id: r for r in summary.sources}
    assert by_id["notes"].status == "ok" and by_id["notes"].chunks == 3
    assert {r.source_id for r in summary.failed} == {"empty", "broken", "missing", "mystery"}
    assert "empty" in by_id["empty"].error
    assert "not found" in by_id["missing"].error
    assert "nope" in by_id["mystery"].error
    state = SourceState(home / "state.sqlite")
    assert state.get("broken")["last_error"] == by_id["broken"].error
    assert state.get("notes")["chunks"] == 3


def test_a_failing_source_keeps_its_previous_chunks(home: Path, corpus_dir: Path) -> None:
    refresher = _refresher(home)
    manifest = load_manifest(_manifest(corpus_dir))
    refresher.refresh(manifest)
    for f in (corpus_dir / "notes").iterdir():
        f.write_bytes(b"\x00\x01binary")
    summary = refresher.refresh(manifest)
    assert summary.failed and summary.removed == 0
    assert len(refresher.store.read_chunks(refresher.store.require_active())) == 3


def test_dry_run_writes_nothing(home: Path, corpus_dir: Path) -> None:
    refresher = _refresher(home)
    summary = refresher.refresh(load_manifest(_manifest(corpus_dir)), dry_run=True)
    assert summary.added == 3 and not summary.switched
    assert refresher.store.active() is None


def test_only_selected_sources_are_read(home: Path, corpus_dir: Path) -> None:
    (corpus_dir / "other.md").write_text("# Ander\n\n## Deel\nTekst over drempels.\n", encoding="utf-8")
    extra = "  - id: other\n    title: Ander\n    kind: faq\n    location: other.md\n"
    refresher = _refresher(home)
    manifest = load_manifest(_manifest(corpus_dir, extra))
    refresher.refresh(manifest)
    (corpus_dir / "notes" / "a.md").write_bytes(b"")  # would fail if it were read
    summary = refresher.refresh(manifest, only=["other"])
    assert [r.source_id for r in summary.sources] == ["other"]
    assert summary.failed == []
    with pytest.raises(CorpusError):
        refresher.refresh(manifest, only=["no-such-source"])


def test_model_change_needs_rebuild(home: Path, corpus_dir: Path) -> None:
    manifest = load_manifest(_manifest(corpus_dir))
    _refresher(home, FakeEmbedder(dim=64)).refresh(manifest)
    other = _refresher(home, FakeEmbedder(dim=32))
    with pytest.raises(ModelMismatchError):
        other.refresh(manifest)
    summary = other.refresh(manifest, rebuild=True)
    assert summary.switched and summary.embedded == 3
    assert other.store.read_meta(other.store.require_active()).model == "fake-hash-32"


class _Site:
    """A local web server standing in for an official site: ETag, 304, errors on demand."""

    def __init__(self) -> None:
        self.body = b"<html><head><title>Wet</title></head><body><h1>Wet</h1><h2>Art. 1</h2><p>Eerste regel.</p></body></html>"
        self.status = 200
        self.requests: list[dict[str, str]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                site.requests.append(dict(self.headers))
                etag = f'"v{hash(site.body) & 0xFFFF}"'
                if site.status != 200:
                    self.send_response(site.status)
                    self.end_headers()
                    return
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(site.body)))
                self.end_headers()
                self.wfile.write(site.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/wet.html"


@pytest.fixture
def site() -> Iterator[_Site]:
    s = _Site()
    thread = threading.Thread(target=s.server.serve_forever, daemon=True)
    thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()


def _web_manifest(folder: Path, url: str) -> Path:
    path = folder / "web.yaml"
    path.write_text(f"sources:\n  - id: web\n    title: Wet\n    kind: legislation\n    location: '{url}'\n",
                    encoding="utf-8")
    return path


def test_http_source_uses_etag_and_304_keeps_the_chunks(home: Path, tmp_path: Path, site: _Site) -> None:
    refresher = _refresher(home)
    manifest = load_manifest(_web_manifest(tmp_path, site.url))
    first = refresher.refresh(manifest)
    assert first.failed == [] and first.added >= 1
    second = refresher.refresh(manifest)
    assert "If-None-Match" in site.requests[-1]
    assert second.sources[0].status == "unchanged" and second.unchanged == first.added
    site.body = site.body.replace(b"Eerste regel.", b"Gewijzigde regel.")
    third = refresher.refresh(manifest)
    assert third.changed == 1


def test_http_errors_fail_the_source_but_keep_the_index(home: Path, tmp_path: Path, site: _Site) -> None:
    refresher = _refresher(home)
    manifest = load_manifest(_web_manifest(tmp_path, site.url))
    refresher.refresh(manifest)
    site.status = 500
    summary = refresher.refresh(manifest)
    assert summary.failed[0].error == f"HTTP 500 from {site.url}"
    assert summary.removed == 0
    assert SourceState(home / "state.sqlite").get("web")["last_error"].startswith("HTTP 500")


def test_http_size_limit_and_unreachable_host(tmp_path: Path, site: _Site) -> None:
    from corpus.errors import SourceReadError
    from corpus.fetch import fetch_source

    spec = load_manifest(_web_manifest(tmp_path, site.url)).sources[0]
    with pytest.raises(SourceReadError, match="limit"):
        fetch_source(spec, tmp_path, max_bytes=10)
    dead = load_manifest(_web_manifest(tmp_path, "http://127.0.0.1:9/x.html")).sources[0]
    with pytest.raises(SourceReadError, match="could not fetch"):
        fetch_source(dead, tmp_path, timeout=2)


def test_format_detection_by_name_and_bytes() -> None:
    from corpus.errors import SourceReadError
    from corpus.loaders import detect_format

    assert detect_format("wet.xml", b'<?xml version="1.0"?><toestand bwb-id="X">') == "bwb-xml"
    assert detect_format("gdpr.xml", b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">') == "html"
    assert detect_format("download", b"%PDF-1.7 ...") == "pdf"
    assert detect_format("nota.MD", b"# Titel") == "markdown"
    with pytest.raises(SourceReadError, match="unknown format"):
        detect_format("blob.bin", b"\x00\x01")
    with pytest.raises(SourceReadError, match="neither"):
        detect_format("other.xml", b"<?xml version='1.0'?><root/>")


def test_a_changed_link_is_a_change_without_re_embedding(home: Path, corpus_dir: Path) -> None:
    embedder = FakeEmbedder()
    refresher = _refresher(home, embedder)
    path = _manifest(corpus_dir)
    refresher.refresh(load_manifest(path))
    calls = embedder.calls
    path.write_text(path.read_text() + "    link: 'https://example.org/nota/'\n", encoding="utf-8")
    summary = refresher.refresh(load_manifest(path))
    assert summary.changed == 3 and summary.switched
    assert embedder.calls == calls  # same text, so the cached vectors serve
    chunks = refresher.store.read_chunks(refresher.store.require_active())
    assert {c.url.split("#")[0] for c in chunks} == {"https://example.org/nota/a.md", "https://example.org/nota/b.md"}
