"""Composition root: settings -> embedder, vector index, retriever, refresher."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

from corpus.refresh import Refresher
from retrieval.embedders import Embedder, make_embedder
from retrieval.search import HybridRetriever
from retrieval.settings import RetrievalSettings
from retrieval.store import GenerationStore
from retrieval.vector_index import ChromaIndex, VectorIndex

logger = logging.getLogger(__name__)


@dataclass
class App:
    """Builds the long-lived components lazily, each once, from one settings object."""

    settings: RetrievalSettings
    embedder_override: Embedder | None = None

    @cached_property
    def embedder(self) -> Embedder:
        """The configured embedder (loaded on first use: model loading takes a moment)."""
        return self.embedder_override or make_embedder(self.settings.embedder)

    @cached_property
    def vectors(self) -> VectorIndex:
        """chromadb on disk, or the configured Chroma server."""
        return ChromaIndex(path=self.settings.index_dir / "chroma", url=self.settings.chroma_url,
                           ef_search=self.settings.hnsw_ef_search,
                           ef_construction=self.settings.hnsw_ef_construction)

    @cached_property
    def store(self) -> GenerationStore:
        """Index generations on disk."""
        return GenerationStore(self.settings.index_dir)

    def refresher(self) -> Refresher:
        """A refresher writing into this app's data dir."""
        return Refresher(home=self.settings.home, embedder=self.embedder, vectors=self.vectors)

    @cached_property
    def retriever(self) -> HybridRetriever:
        """The hybrid retriever over the active generation."""
        return HybridRetriever(store=self.store, vectors=self.vectors, embedder=self.embedder)
