"""What does the officer want? Intent learned from labelled questions, plus the few rules that are precise.

Five intents: a general ``information`` question, the officer's ``own_case`` (a concrete file, dispute or risk a
lawyer must look at), a request for a ``person``, ``off_topic`` chat and ``vague`` messages. The model is a
logistic regression over the embedder's query vector and hashed word and character n-grams (the n-grams carry
what embeddings blur: "onze", "hebben gegund", "nu blijkt"), trained by `vraagbaak routing train` and stored as
plain numbers in ``bot/data/routing/`` (one file per embedding model, no pickle), so start-up only reads JSON and
prediction is a matrix product.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from retrieval.lexical import fold


class Intent(StrEnum):
    """What a message asks for."""

    INFORMATION = "information"
    OWN_CASE = "own_case"
    PERSON = "person"
    OFF_TOPIC = "off_topic"
    VAGUE = "vague"


ESCALATING = (Intent.OWN_CASE, Intent.PERSON)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def _slot(feature: str, dim: int) -> int:
    # blake2b, not hash(): Python salts str hashes per process, and the model must be deterministic.
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % dim


def lexical_vector(text: str, dim: int) -> np.ndarray:
    """Hashed word unigrams and bigrams and character 3-5-grams of the folded text, each block L2-normalised."""
    words = _WORD.findall(fold(text))
    word_block = np.zeros(dim, dtype=np.float64)
    char_block = np.zeros(dim, dtype=np.float64)
    grams = [f"w:{w}" for w in words] + [f"b:{a}_{b}" for a, b in zip(words, words[1:])]
    for gram in grams:
        word_block[_slot(gram, dim)] += 1.0
    for word in words:
        padded = f"<{word}>"
        for n in (3, 4, 5):
            for i in range(len(padded) - n + 1):
                char_block[_slot(f"c:{padded[i:i + n]}", dim)] += 1.0
    out = []
    for block in (word_block, char_block):
        block = np.log1p(block)
        norm = np.linalg.norm(block)
        out.append(block / norm if norm else block)
    return np.concatenate(out)


def feature_vector(text: str, vector: np.ndarray | None, *, lexical_dim: int, embedding_weight: float) -> np.ndarray:
    """[query embedding * embedding_weight, lexical n-grams]; the embedding is left out at weight 0."""
    lexical = lexical_vector(text, lexical_dim)
    if embedding_weight == 0:
        return lexical
    if vector is None:
        raise ValueError("this intent model needs the query embedding")
    return np.concatenate([np.asarray(vector, dtype=np.float64) * embedding_weight, lexical])


def decide(probabilities: Mapping[Intent, float], escalate_threshold: float) -> Intent:
    """Own case or person when together they reach the threshold (the likelier of the two), else the likeliest
    of the others."""
    if sum(probabilities.get(i, 0.0) for i in ESCALATING) >= escalate_threshold:
        return max(ESCALATING, key=lambda c: probabilities.get(c, 0.0))
    return max((c for c in probabilities if c not in ESCALATING), key=lambda c: probabilities[c])


@dataclass(frozen=True)
class IntentPrediction:
    """The predicted intent and the probability of each."""

    intent: Intent
    probabilities: Mapping[Intent, float]


@dataclass(frozen=True)
class IntentModel:
    """A multinomial logistic model; features are [embedding * embedding_weight, lexical n-grams]."""

    classes: tuple[Intent, ...]
    lexical_dim: int
    embedding_weight: float
    """0 for the model-independent default (no embedding used)."""
    embedding_dim: int
    coef: np.ndarray
    intercept: np.ndarray
    escalate_threshold: float
    """Own case or person when their probabilities together reach this (below 0.5: recall matters most)."""

    @classmethod
    def from_dict(cls, data: Mapping) -> "IntentModel":
        """Read the ``intent`` part of a routing model file."""
        coef = np.array(data["coef"], dtype=np.float64)
        intercept = np.array(data["intercept"], dtype=np.float64)
        classes = tuple(Intent(c) for c in data["classes"])
        lexical_dim, embedding_dim = int(data["lexical_dim"]), int(data["embedding_dim"])
        if coef.shape != (len(classes), 2 * lexical_dim + embedding_dim) or intercept.shape != (len(classes),):
            raise ValueError("intent model: coef / intercept do not match the classes and feature sizes")
        return cls(classes=classes, lexical_dim=lexical_dim, embedding_weight=float(data["embedding_weight"]),
                   embedding_dim=embedding_dim, coef=coef, intercept=intercept,
                   escalate_threshold=float(data["escalate_threshold"]))

    @property
    def uses_embedding(self) -> bool:
        """True when the query vector is part of the features."""
        return self.embedding_weight > 0

    def features(self, text: str, vector: np.ndarray | None) -> np.ndarray:
        """The feature vector of one message (``vector``: its query embedding, when the model uses one)."""
        return feature_vector(text, vector, lexical_dim=self.lexical_dim, embedding_weight=self.embedding_weight)

    def predict_features(self, x: np.ndarray) -> IntentPrediction:
        """Probabilities and the decided intent for one feature vector."""
        if x.shape[0] != self.coef.shape[1]:
            raise ValueError(f"intent model expects {self.coef.shape[1]} features, got {x.shape[0]} "
                             "(was it trained for another embedding model?)")
        z = self.coef @ x + self.intercept
        p = np.exp(z - z.max())
        p /= p.sum()
        probabilities = {c: float(v) for c, v in zip(self.classes, p)}
        return IntentPrediction(decide(probabilities, self.escalate_threshold), probabilities)


class LearnedIntent:
    """Classifies a message with an ``IntentModel`` and the embedder it was trained with."""

    def __init__(self, model: IntentModel, embed: Callable[[str], np.ndarray] | None) -> None:
        if model.uses_embedding and embed is None:
            raise ValueError("this intent model needs the embedder it was trained with")
        self._model = model
        self._embed = embed

    def classify(self, text: str) -> IntentPrediction:
        """The intent of one message."""
        vector = self._embed(text) if self._model.uses_embedding else None
        return self._model.predict_features(self._model.features(text, vector))
