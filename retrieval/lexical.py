"""BM25 over Dutch text: stemming (Snowball via PyStemmer), stopwords and legal-number tokens."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_DUTCH

# Article numbers ("2.31a", "42/1", "7bis") stay one token so "artikel 2.31a" can match exactly.
_TOKEN = re.compile(r"\d+(?:[./]\d+)*[a-z]*|[^\W\d_]+", re.UNICODE)
_EXTRA_STOPWORDS = {"wel", "welke", "wanneer", "moet", "mag", "kan", "kunnen", "mijn", "onze", "we", "wij", "ik"}
_STOPWORDS = frozenset(STOPWORDS_DUTCH) | _EXTRA_STOPWORDS


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("dutch")


def fold(text: str) -> str:
    """Lowercase without diacritics."""
    # Drop diacritics so "één" and "een", "geïnteresseerd" and "geinteresseerd" meet.
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def analyse(text: str) -> list[str]:
    """Tokens as indexed: folded, stopwords removed, stemmed (numbers kept whole)."""
    tokens = [t for t in _TOKEN.findall(fold(text)) if t not in _STOPWORDS and (len(t) > 1 or t.isdigit())]
    return _stemmer().stemWords(tokens)


class LexicalIndex:
    """A BM25 index over chunk texts, addressed by chunk position."""

    def __init__(self, model: bm25s.BM25, size: int) -> None:
        self._model = model
        self._size = size

    @classmethod
    def build(cls, texts: Sequence[str]) -> "LexicalIndex":
        """Index texts (position i = chunk i)."""
        # b=0.5: legal units vary a lot in length and long articles are not less relevant (tuned on
        # LegalQA-NL dev, docs/EVALUATION.md).
        model = bm25s.BM25(k1=1.2, b=0.5)
        # bm25s cannot index an empty document list or empty token lists; a placeholder keeps positions.
        corpus_tokens = [analyse(t) or ["\u2205"] for t in texts] or [["\u2205"]]
        model.index(corpus_tokens, show_progress=False)
        return cls(model, len(texts))

    def search(self, tokens: list[str], k: int) -> list[tuple[int, float]]:
        """Top-k (position, score) pairs for analysed query tokens, positive scores only, best first."""
        if not tokens or self._size == 0:
            return []
        vocab = self._model.vocab_dict
        known = [t for t in tokens if t in vocab]
        if not known:
            return []
        scores = self._model.get_scores(known)
        k = min(k, self._size)
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]

    def save(self, folder: Path) -> None:
        """Write the index to ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        self._model.save(str(folder), show_progress=False)
        (folder / "size.json").write_text(json.dumps({"size": self._size}))

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        """Read an index written by ``save``."""
        size = json.loads((folder / "size.json").read_text())["size"]
        model = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)
        return cls(model, size)
