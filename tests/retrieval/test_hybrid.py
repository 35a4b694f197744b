"""Hybrid ranking, twin folding and HNSW against exact search, on small fixture corpora."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from corpus.chunking import chunk_document
from corpus.documents import LoadedDocument, Section
from retrieval.embedders import FakeEmbedder
from retrieval.lexical import LexicalIndex
from retrieval.search import FusionParams, HybridRetriever
from retrieval.store import GenerationStore
from retrieval.vector_index import ChromaIndex, ExactIndex

ARTICLES = [
    ("Deel 2 Klassieke sectoren", "art. 2.1", "De aanbestedende dienst raamt de waarde van de opdracht exclusief btw."),
    ("Deel 2 Klassieke sectoren", "art. 2.2", "Een innovatiepartnerschap kan worden aangegaan voor de ontwikkeling "
                                              "van innovatieve producten die nog niet op de markt zijn."),
    ("Deel 2 Klassieke sectoren", "art. 2.3", "De opschortende termijn bedraagt ten minste twintig kalenderdagen "
                                              "na de bekendmaking van de gunningsbeslissing."),
    ("Deel 3 Speciale sectoren", "art. 3.1", "De opschortende termijn bedraagt ten minste twintig kalenderdagen "
                                             "na de bekendmaking van de gunningsbeslissing."),
    ("Deel 2 Klassieke sectoren", "art. 2.4", "Een inschrijving met een abnormaal lage prijs wordt onderzocht."),
]


def _build(home: Path, vectors, embedder=None, articles=ARTICLES) -> HybridRetriever:
    embedder = embedder or FakeEmbedder()
    sections = tuple(Section(text=f"Artikel {label[5:]}\n{text}", label=label, heading_path=(part,), is_article=True)
                     for part, label, text in articles)
    doc = LoadedDocument(doc_id="aw", title="Testwet", sections=sections, url="https://example.org/aw")
    chunks = chunk_document(doc, source_id="aw", kind="legislation")
    matrix = embedder.embed_passages([c.embedding_text() for c in chunks])
    store = GenerationStore(home / "index")
    gen = store.new_generation_id()
    store.write(gen, chunks, model=embedder.name, dim=embedder.dim)
    store.write_lexical(gen, LexicalIndex.build([c.embedding_text() for c in chunks]))
    vectors.create(gen)
    vectors.add(gen, [c.id for c in chunks], matrix)
    store.activate(gen)
    return HybridRetriever(store=store, vectors=vectors, embedder=embedder)


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_each_mode_finds_the_article_and_returns_one_hit_per_unit(home: Path, mode: str) -> None:
    retriever = _build(home, ExactIndex())
    hits = retriever.search("Hoe raam ik de waarde van de opdracht exclusief btw?", k=5, mode=mode)
    assert hits[0].chunk.label == "art. 2.1"
    assert len({h.chunk.unit_id for h in hits}) == len(hits)
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_flemish_wording_reaches_statute_wording_through_terminology(home: Path) -> None:
    retriever = _build(home, ExactIndex())
    # "offerte" never occurs in the statute, which says "inschrijving": only the terminology group connects them.
    hits = retriever.search("Wat met een offerte?", k=3, mode="bm25")
    assert [h.chunk.label for h in hits][:1] == ["art. 2.4"]
    retriever.params = FusionParams(expand_terms=False)
    assert retriever.search("Wat met een offerte?", k=3, mode="bm25") == []


def test_a_french_question_reaches_the_dutch_text_and_a_dutch_one_is_not_expanded_with_french(home: Path) -> None:
    retriever = _build(home, ExactIndex())
    # "partenariat d'innovation" and "offre anormalement basse" occur nowhere in the Dutch corpus.
    assert [h.chunk.label for h in retriever.search("Qu'est-ce qu'un partenariat d'innovation ?", k=3,
                                                   mode="bm25")][:1] == ["art. 2.2"]
    assert [h.chunk.label for h in retriever.search("Une offre anormalement basse ?", k=3,
                                                   mode="bm25")][:1] == ["art. 2.4"]
    retriever.params = FusionParams(expand_terms=False)
    assert retriever.search("Qu'est-ce qu'un partenariat d'innovation ?", k=3, mode="bm25") == []


def test_the_french_terms_expand_one_way() -> None:
    from retrieval.lexical import analyse
    from retrieval.terminology import expand

    french = expand(analyse("Qu'est-ce qu'un partenariat d'innovation ?"))
    assert set(analyse("innovatiepartnerschap")) <= set(french)
    # A French term reaches the whole Dutch group of its counterpart ("soumissionnaire" -> inschrijver, bieder).
    assert set(analyse("inschrijver bieder offerant")) <= set(expand(analyse("le soumissionnaire")))
    # The other way round nothing changes: a Dutch question searches no French words.
    dutch = analyse("Wanneer mag ik een innovatiepartnerschap met een inschrijver aangaan?")
    assert not set(expand(dutch)) & set(analyse("partenariat innovation soumissionnaire"))


def test_twin_articles_fold_into_the_general_rule(home: Path) -> None:
    retriever = _build(home, ExactIndex())
    hits = retriever.search("Hoe lang is de opschortende termijn na de gunningsbeslissing?", k=5)
    labels = [h.chunk.label for h in hits]
    assert labels[0] == "art. 2.3"
    assert "art. 3.1" not in labels
    assert hits[0].twins == ("aw:testwet:art-3-1",)


def test_twin_named_by_the_question_wins(home: Path) -> None:
    retriever = _build(home, ExactIndex())
    hits = retriever.search("opschortende termijn in de speciale sectoren", k=5)
    assert hits[0].chunk.label == "art. 3.1"
    assert hits[0].twins == ("aw:testwet:art-2-3",)


def test_empty_query_and_unknown_mode(home: Path) -> None:
    retriever = _build(home, ExactIndex())
    assert retriever.search("   ") == []
    with pytest.raises(ValueError):
        retriever.search("x", mode="magic")


def test_chroma_on_disk_gives_the_same_ranking_as_exact_search(home: Path) -> None:
    exact = _build(home / "a", ExactIndex())
    chroma = _build(home / "b", ChromaIndex(path=home / "b" / "chroma"))
    for query in ("innovatiepartnerschap", "opschortende termijn", "abnormaal lage prijs", "raming btw"):
        assert [h.chunk.id for h in chroma.search(query, mode="dense")] == \
               [h.chunk.id for h in exact.search(query, mode="dense")]


def test_hnsw_matches_exact_search_on_near_duplicates(tmp_path: Path) -> None:
    """Near-duplicate vectors are where HNSW loses neighbours; the tuned ef values must not."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(40, 64))
    vectors = np.vstack([c + rng.normal(scale=0.02, size=(50, 64)) for c in centres]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"v{i}" for i in range(len(vectors))]
    chroma = ChromaIndex(path=tmp_path / "chroma")
    exact = ExactIndex()
    for index in (chroma, exact):
        index.create("g1")
        index.add("g1", ids, vectors)
    queries = vectors[rng.choice(len(vectors), 30, replace=False)] + rng.normal(scale=0.01, size=(30, 64))
    overlap = []
    for q in queries.astype(np.float32):
        q /= np.linalg.norm(q)
        got = {i for i, _ in chroma.query("g1", q, 10)}
        want = {i for i, _ in exact.query("g1", q, 10)}
        overlap.append(len(got & want) / 10)
    assert float(np.mean(overlap)) >= 0.99


def test_record_rows_of_one_article_form_one_unit_cited_by_its_first_row(home: Path) -> None:
    """A record file may spread an article over rows (one per lid): the article is one hit."""
    embedder = FakeEmbedder()
    rows = [("DOC1", "Artikel 8", "Een ontheffing kan slechts worden verleend indien de aanvrager dit aantoont."),
            ("DOC2", "Artikel 8", "Een ontheffing kan voorts worden verleend voor het telen van hennep."),
            ("DOC3", "Artikel 9", "De minister houdt een register van ontheffingen bij.")]
    chunks = []
    for doc_id, label, text in rows:
        doc = LoadedDocument(doc_id=doc_id, title=f"Opiumwet {label}",
                             sections=(Section(text=text, label=label, is_article=True),))
        chunks += chunk_document(doc, source_id="lqa", kind="legislation", start_position=len(chunks))
    matrix = embedder.embed_passages([c.embedding_text() for c in chunks])
    store = GenerationStore(home / "index")
    store.write("g1", chunks, model=embedder.name, dim=embedder.dim)
    store.write_lexical("g1", LexicalIndex.build([c.embedding_text() for c in chunks]))
    vectors = ExactIndex()
    vectors.create("g1")
    vectors.add("g1", [c.id for c in chunks], matrix)
    store.activate("g1")
    retriever = HybridRetriever(store=store, vectors=vectors, embedder=embedder)
    hits = retriever.search("ontheffing voor het telen van hennep", k=5)
    assert [h.chunk.doc_id for h in hits] == ["DOC1", "DOC3"]
    assert hits[0].doc_ids == ("DOC1", "DOC2")
    assert hits[0].passage.doc_id == "DOC2"  # the row that matched is the one to quote


FRAMEWORKS = [
    ("Deel 2 Overheidsopdrachten", "art. 2.140",
     "De looptijd van een raamovereenkomst bedraagt ten hoogste vier jaar, tenzij de looptijd anders is."),
    ("Deel 3 Speciale-sectoropdrachten", "art. 3.80",
     "De looptijd van een raamovereenkomst van een speciale-sectorbedrijf bedraagt ten hoogste acht jaar; de "
     "looptijd van die raamovereenkomst kan in uitzonderlijke gevallen langer zijn."),
    ("Deel 2 Overheidsopdrachten", "art. 2.141", "Een opdracht op grond van een raamovereenkomst wordt gegund "
     "volgens de voorwaarden van die overeenkomst, aan de partijen bij de overeenkomst, voor de leveringen."),
]


def test_a_special_regime_ranks_below_the_general_rule_unless_the_question_names_it(home: Path) -> None:
    retriever = _build(home, ExactIndex(), articles=FRAMEWORKS)
    question = "Wat is de looptijd van een raamovereenkomst?"
    assert retriever.search(question, k=2, mode="bm25")[0].chunk.label == "art. 2.140"
    named = retriever.search("Wat is de looptijd van een raamovereenkomst bij een nutsbedrijf?", k=2, mode="bm25")
    assert named[0].chunk.label == "art. 3.80"
    retriever.params = FusionParams(special_regimes=False)
    # Without the regimes the special-sector article, which repeats the query's words, outranks the rule that applies.
    assert retriever.search(question, k=2, mode="bm25")[0].chunk.label == "art. 3.80"


@pytest.mark.parametrize("mode", ["hybrid", "bm25"])
def test_a_special_regime_comes_after_the_general_rules_even_when_it_matches_far_better(home: Path,
                                                                                       mode: str) -> None:
    retriever = _build(home, ExactIndex(), articles=FRAMEWORKS)
    # Only art. 3.80 has "uitzonderlijke gevallen" and "langer": lowering its score is not enough to rank it second.
    question = "Mag de looptijd van een raamovereenkomst in uitzonderlijke gevallen langer zijn?"
    labels = [h.chunk.label for h in retriever.search(question, k=3, mode=mode)]
    assert labels[-1] == "art. 3.80" and labels[0] == "art. 2.140"
    named = retriever.search(question.replace("?", " bij een nutsbedrijf?"), k=3, mode=mode)
    assert named[0].chunk.label == "art. 3.80"


def test_the_first_hits_do_not_depend_on_how_many_are_asked_for(home: Path) -> None:
    # 25 special-sector units match better than the one general article, which the fused order puts below the
    # first 20: asking for 30 hits must not move it first when asking for 5 does not.
    special = [("Deel 3 Speciale-sectoropdrachten", f"art. 3.{i}", f"De looptijd van een raamovereenkomst bedraagt "
                f"ten hoogste acht jaar; de looptijd van de raamovereenkomst {i} telt.") for i in range(1, 26)]
    general = [("Deel 2 Overheidsopdrachten", "art. 2.9", "Een opdracht kan ook een raamovereenkomst zijn.")]
    retriever = _build(home, ExactIndex(), articles=general + special)
    question = "Wat is de looptijd van een raamovereenkomst?"
    few = [h.chunk.label for h in retriever.search(question, k=5, mode="bm25")]
    many = [h.chunk.label for h in retriever.search(question, k=30, mode="bm25")]
    assert "art. 2.9" in many[20:]
    assert few == many[:5]


def _generation(store: GenerationStore, vectors: ExactIndex, embedder: FakeEmbedder, articles: list) -> tuple[str, set]:
    """Write one more generation (not activated) and return its id and chunk ids."""
    sections = tuple(Section(text=f"Artikel {label[5:]}\n{text}", label=label, heading_path=(part,), is_article=True)
                     for part, label, text in articles)
    chunks = chunk_document(LoadedDocument(doc_id="aw", title="Testwet", sections=sections), source_id="aw",
                            kind="legislation")
    gen = store.new_generation_id()
    store.write(gen, chunks, model=embedder.name, dim=embedder.dim)
    store.write_lexical(gen, LexicalIndex.build([c.embedding_text() for c in chunks]))
    vectors.create(gen)
    vectors.add(gen, [c.id for c in chunks], embedder.embed_passages([c.embedding_text() for c in chunks]))
    return gen, {c.id for c in chunks}


def test_searches_during_a_switch_each_see_one_whole_generation_and_it_is_loaded_once(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refresh that shrinks the corpus while threads search and check for a switch, as the channels do."""
    embedder, vectors, store = FakeEmbedder(), ExactIndex(), GenerationStore(home / "index")
    wide = [("Deel 2 Klassieke sectoren", f"art. 2.{n}", f"De aanbestedende dienst raamt de waarde van opdracht "
             f"{n} exclusief btw en vermeldt de termijn van {n} dagen.") for n in range(1, 61)]
    first, first_ids = _generation(store, vectors, embedder, wide)
    store.activate(first)
    retriever = HybridRetriever(store=store, vectors=vectors, embedder=embedder)
    second, second_ids = _generation(store, vectors, embedder, wide[:3])

    loads: list[str] = []
    real_read, real_load = GenerationStore.read_chunks, LexicalIndex.load

    def counted_read(self: GenerationStore, generation: str):
        loads.append(generation)
        return real_read(self, generation)

    def slow_load(path: Path) -> LexicalIndex:
        time.sleep(0.2)  # a big BM25 index: the window in which a half-switched retriever would be seen
        return real_load(path)

    monkeypatch.setattr(GenerationStore, "read_chunks", counted_read)
    monkeypatch.setattr(LexicalIndex, "load", staticmethod(slow_load))
    errors: list[BaseException] = []
    mixed: list[list[str]] = []
    stop = threading.Event()

    def officer() -> None:
        while not stop.is_set():
            try:
                retriever.refresh_if_switched()
                ids = {h.matched.id for h in retriever.search("waarde van de opdracht exclusief btw", k=10)}
                if not (ids <= first_ids or ids <= second_ids):
                    mixed.append(sorted(ids))
            except BaseException as exc:  # noqa: BLE001 - the test reports whatever a search raised
                errors.append(exc)
                return

    threads = [threading.Thread(target=officer) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    store.activate(second)
    time.sleep(0.6)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    assert not errors and not mixed
    assert retriever.generation == second
    assert loads.count(second) == 1  # four threads noticed the switch; one loaded it


def test_a_switch_serves_the_newest_pointer_not_the_one_read_before_waiting_for_the_lock(home: Path) -> None:
    embedder, vectors, store = FakeEmbedder(), ExactIndex(), GenerationStore(home / "index")
    articles = [("Deel 2 Klassieke sectoren", "art. 2.1", "De aanbestedende dienst raamt de waarde.")]
    first, _ = _generation(store, vectors, embedder, articles)
    store.activate(first)
    retriever = HybridRetriever(store=store, vectors=vectors, embedder=embedder)
    second, _ = _generation(store, vectors, embedder, articles)
    third, _ = _generation(store, vectors, embedder, articles)
    # As seen by a thread that read the pointer, then waited while another refresh activated a newer one.
    pointers = iter([second, third])
    store.active = lambda: next(pointers)  # type: ignore[method-assign]
    assert retriever.refresh_if_switched()
    assert retriever.generation == third
