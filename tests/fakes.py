"""Test doubles for our own ports."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.vector_index import ExactIndex


class CrashingIndex(ExactIndex):
    """A vector index that dies while a refresh is adding vectors (simulates a crash mid-refresh)."""

    def __init__(self) -> None:
        super().__init__()
        self.crash = False

    def add(self, generation: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add vectors, or raise when told to crash."""
        if self.crash:
            raise KeyboardInterrupt("simulated crash during refresh")
        super().add(generation, ids, vectors)
