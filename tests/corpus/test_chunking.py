"""Chunk boundaries: never across articles, long articles at §/lid, labels repeated, stable ids."""

from __future__ import annotations

from corpus.chunking import MAX_CHARS, TARGET_CHARS, chunk_document, split_article
from corpus.documents import LoadedDocument, Section


def _article(label: str, text: str) -> Section:
    return Section(text=text, label=label, heading_path=("Hoofdstuk 1",), anchor=label.replace(" ", ""),
                   is_article=True)


def _doc(*sections: Section) -> LoadedDocument:
    return LoadedDocument(doc_id="wet", title="Testwet", sections=sections, url="https://example.org/wet",
                          effective_date="2024-01-01")


def test_short_articles_become_one_chunk_each_and_never_merge() -> None:
    doc = _doc(_article("art. 1", "Art. 1. Korte regel."), _article("art. 2", "Art. 2. Nog een korte regel."))
    chunks = chunk_document(doc, source_id="src", kind="legislation")
    assert [c.label for c in chunks] == ["art. 1", "art. 2"]
    assert [c.id for c in chunks] == ["src:wet:art-1:0", "src:wet:art-2:0"]
    assert chunks[0].unit_id != chunks[1].unit_id
    assert chunks[0].url == "https://example.org/wet#art.1"
    assert chunks[0].effective_date == "2024-01-01"
    assert chunks[0].heading_path == ("Hoofdstuk 1",)


def test_long_article_splits_at_paragraphs_and_repeats_the_label() -> None:
    par = "De aanbestedende overheid doet iets belangrijks met een lange zin die blijft doorgaan. " * 12
    text = f"Art. 41.\n§ 1. {par}\n§ 2. {par}\n§ 3. {par}"
    pieces = split_article(_article("art. 41", text))
    assert [label for label, _ in pieces] == ["art. 41, § 1", "art. 41, § 2", "art. 41, § 3"]
    assert pieces[1][1].startswith("art. 41 (vervolg)\n§ 2.")
    assert all(len(t) <= MAX_CHARS for _, t in pieces)
    # Every word of the article survives the split.
    joined = " ".join(t for _, t in pieces)
    assert joined.count("belangrijks") == 36


def test_definitions_article_is_cut_finer_than_an_ordinary_one() -> None:
    items = "\n".join(f"{n}° begrip{n}: een omschrijving van het begrip nummer {n} met wat uitleg erbij."
                      for n in range(1, 41))
    text = "Art. 2. Voor de toepassing van deze wet wordt verstaan onder:\n" + items
    pieces = split_article(_article("art. 2", text))
    assert len(pieces) >= 4
    assert max(len(t) for _, t in pieces) < TARGET_CHARS
    # A definition is never cut in half.
    for n in range(1, 41):
        assert sum(f"begrip{n}:" in t for _, t in pieces) == 1


def test_guidance_sections_stay_whole_and_ids_are_stable_when_a_section_is_inserted() -> None:
    first = _doc(Section(text="Over PCP.", label="PCP"), Section(text="Over dialoog.", label="Dialoog"))
    second = _doc(Section(text="Nieuw.", label="Inleiding"), Section(text="Over PCP.", label="PCP"),
                  Section(text="Over dialoog.", label="Dialoog"))
    a = {c.id: c.content_hash for c in chunk_document(first, source_id="g", kind="guidance")}
    b = {c.id: c.content_hash for c in chunk_document(second, source_id="g", kind="guidance")}
    assert set(a) <= set(b)
    assert all(a[i] == b[i] for i in a)


def test_repeated_labels_get_distinct_units() -> None:
    doc = _doc(Section(text="Een.", label="Voorbeeld"), Section(text="Twee.", label="Voorbeeld"))
    chunks = chunk_document(doc, source_id="g", kind="guidance")
    assert len({c.unit_id for c in chunks}) == 2


def test_pdf_sections_link_to_their_page() -> None:
    doc = LoadedDocument(doc_id="nota", title="Nota", sections=(Section(text="Tekst.", label="Inleiding", page=3),),
                         url="https://example.org/nota.pdf")
    [chunk] = chunk_document(doc, source_id="p", kind="guidance")
    assert chunk.url == "https://example.org/nota.pdf#page=3"
    assert chunk.page == 3
