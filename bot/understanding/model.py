"""The intent model: TF-IDF over character n-grams (2-5), stemmed words (1-2) and words of the prepared
text (``features.prepare``), a linear SVM whose scores become probabilities by a softmax with one temperature
fitted on held-out scores (2-fold, minimum log-loss: "temperature scaling"), trained deterministically from
``data/training.yaml`` plus the merchant's FAQ topics. No network, no file written: trained in the process
that needs it (well under a second for the shipped set) and kept in memory per FAQ configuration.

The merchant's FAQ topics are intents too. An active topic that reads as one of the shipped FAQ intents
(its title, keywords and example questions are classified as ``faq_frete``, say) answers that intent and adds
its examples to it; any other topic becomes an intent of its own, ``faq:<topic>``, trained from its title,
keywords (in a few question frames) and example questions. Saving a topic changes the configuration's
signature, and the next message trains the model for it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import Stemmer
import yaml
from rapidfuzz import fuzz, process
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from scipy.optimize import minimize_scalar
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.understanding.features import prepare
from core.text import normalize
from models import FaqEntry

DATA_DIR = Path(__file__).parent / "data"
TRAINING_FILE = DATA_DIR / "training.yaml"
SHIPPED_FAQ = ("faq_frete", "faq_pagamento", "faq_trocas", "faq_horario", "faq_tamanhos", "faq_endereco")
CUSTOM_PREFIX = "faq:"
# A keyword alone is a poor example; these frames make it read like the questions shoppers send.
KEYWORD_FRAMES = ("{k}", "e {k}?", "sobre {k}", "qual {k}?", "duvida sobre {k}", "como funciona {k}?",
                  "me fala de {k}", "queria saber de {k}")
MODELS_KEPT = 4


@dataclass(frozen=True)
class Guess:
    intent: str
    confidence: float


@dataclass(frozen=True)
class FaqTopic:
    """An active FAQ entry as the model sees it."""

    topic: str
    title: str
    keywords: tuple[str, ...]
    examples: tuple[str, ...]

    def texts(self) -> list[str]:
        keywords = [k for k in self.keywords if k.strip()]
        framed = [frame.format(k=k) for k in keywords for frame in KEYWORD_FRAMES]
        return [self.title, *framed, *self.examples]


_STEMMER = Stemmer.Stemmer("portuguese")


def _stems(prepared: str) -> str:
    """'devolver devolucao' -> 'devolv devoluca': one feature for a word's forms; placeholders are kept."""
    return " ".join(w if w[:1] == "q" and w[1:] in _PLACEHOLDERS else _STEMMER.stemWord(w)
                    for w in prepared.split())


_PLACEHOLDERS = {"cor", "num", "dois", "tres", "dinheiro", "tam", "risos"}


class IntentModel:
    def __init__(self, examples: list[tuple[str, str]], *, c: float = 1.0, temperature: float | None = None) -> None:
        """``temperature``: the softmax's, when known (a store's model takes the shipped set's); fitted else."""
        texts = [prepare(text) for text, _ in examples]
        labels = np.array([label for _, label in examples])
        # Character n-grams across word boundaries ("o 2", "me ve"), stems and their pairs, and the words as typed.
        self.vectorizers = [
            TfidfVectorizer(analyzer="char", ngram_range=(2, 5), sublinear_tf=True, dtype=np.float32),
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+",
                            preprocessor=_stems, dtype=np.float32),
            TfidfVectorizer(analyzer="word", sublinear_tf=True, token_pattern=r"\S+", dtype=np.float32),
        ]
        self.words = self.vectorizers[1]
        matrix = hstack([v.fit_transform(texts) for v in self.vectorizers]).tocsr()
        self.classifier = LinearSVC(C=c, random_state=0).fit(matrix, labels)
        self.labels: list[str] = [str(label) for label in self.classifier.classes_]
        # The vectorisers see every text; only the classifier is refitted per fold: scores a little optimistic,
        # which a larger temperature would absorb; measured by the evaluation's confidence figures.
        self.temperature = _fit_temperature(matrix, labels, c) if temperature is None else temperature
        # For one message at a time: sklearn's transform costs ~1 ms per vectoriser in checks and conversions,
        # so rank() computes the same features from these (a test holds both paths equal).
        self._analyzers = [v.build_analyzer() for v in self.vectorizers]
        offsets = np.cumsum([0, *(len(v.vocabulary_) for v in self.vectorizers)])
        self._vocabularies = [{term: int(index + offset) for term, index in v.vocabulary_.items()}
                              for v, offset in zip(self.vectorizers, offsets)]
        self._idf = np.concatenate([v.idf_ for v in self.vectorizers]).astype(np.float64)
        self._weights = np.ascontiguousarray(self.classifier.coef_.T)  # features x intents
        self._intercept = self.classifier.intercept_.astype(np.float64)
        self._typed = [w for w in self.vectorizers[2].vocabulary_ if len(w) >= 4]

    def _matrix(self, texts: list[str]):
        prepared = [prepare(t) for t in texts]
        return hstack([v.transform(prepared) for v in self.vectorizers]).tocsr()

    def probabilities(self, texts: list[str]) -> np.ndarray:
        return _softmax(self.classifier.decision_function(self._matrix(texts)), self.temperature)

    def scores(self, text: str) -> np.ndarray:
        """decision_function for one message, without sklearn's per-call overhead: sublinear tf x idf, each
        vectoriser's block L2-normalised, times the weights."""
        prepared = prepare(text)
        columns: list[int] = []
        values: list[float] = []
        for analyze, vocabulary in zip(self._analyzers, self._vocabularies):
            counts: dict[int, int] = {}
            for term in analyze(prepared):
                column = vocabulary.get(term)
                if column is not None:
                    counts[column] = counts.get(column, 0) + 1
            if not counts:
                continue
            block = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) \
                * self._idf[block]
            columns.extend(block.tolist())
            values.extend((weights / np.linalg.norm(weights)).tolist())
        if not columns:
            return self._intercept.copy()
        return np.asarray(values) @ self._weights[columns] + self._intercept

    def rank(self, text: str, top: int = 3) -> list[Guess]:
        """The ``top`` likeliest intents, best first."""
        probabilities = _softmax(self.scores(text)[None, :], self.temperature)[0]
        order = np.argsort(-probabilities)[:top]
        return [Guess(self.labels[i], float(probabilities[i])) for i in order]

    def known_words(self, text: str) -> int:
        """How many words of the message the model has seen in training, as typed or one typo away
        ("finalisar", "vendendor"): 0 for "xkdjfh qpwo"."""
        vocabulary = self.words.vocabulary_
        count = 0
        for word in prepare(text).split():
            if _stems(word) in vocabulary:
                count += 1
            elif len(word) >= 4 and process.extractOne(word, self._typed, scorer=fuzz.ratio, score_cutoff=80):
                count += 1
        return count

    def predict(self, texts: list[str]) -> list[str]:
        return [str(label) for label in self.classifier.predict(self._matrix(texts))]


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    scaled = scores * temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def _fit_temperature(matrix, labels: np.ndarray, c: float) -> float:
    """The softmax temperature that makes held-out scores honest probabilities (least log-loss)."""
    scores, truth = [], []
    for train, test in StratifiedKFold(2, shuffle=True, random_state=0).split(matrix, labels):
        fold = LinearSVC(C=c, random_state=0).fit(matrix[train], labels[train])
        index = {label: i for i, label in enumerate(fold.classes_)}
        known = np.array([label in index for label in labels[test]])
        scores.append(fold.decision_function(matrix[test])[known])
        truth.append(np.array([index[label] for label in labels[test][known]]))
    held, gold = np.vstack(scores), np.concatenate(truth)

    def loss(t: float) -> float:
        p = _softmax(held, t)[np.arange(len(gold)), gold]
        return float(-np.log(np.clip(p, 1e-9, 1.0)).mean())

    return float(minimize_scalar(loss, bounds=(0.1, 50.0), method="bounded").x)


def load_training(path: Path = TRAINING_FILE) -> list[tuple[str, str]]:
    """(text, intent) pairs from the shipped YAML (intent -> list of examples)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [(str(text), str(intent)) for intent, texts in data.items() for text in texts or []]


@lru_cache(maxsize=1)
def _shipped() -> tuple[tuple[str, str], ...]:
    return tuple(load_training())


@lru_cache(maxsize=1)
def base_model() -> IntentModel:
    """The model of the shipped set alone: the store's when it has no FAQ topic of its own to add."""
    return IntentModel(list(_shipped()))


def faq_topics(session: Session) -> list[FaqTopic]:
    rows = session.scalars(select(FaqEntry).where(FaqEntry.active).order_by(FaqEntry.position, FaqEntry.id))
    return [FaqTopic(topic=row.topic, title=row.title, keywords=tuple(row.keywords or ()),
                     examples=tuple(row.examples or ())) for row in rows]


class _Centroids:
    """Each intent of the shipped set as the mean of its examples' character n-grams: enough to tell which
    shipped intent a merchant's topic is about, at a fraction of a classifier's training time."""

    def __init__(self, examples: list[tuple[str, str]]) -> None:
        self.vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(2, 5), sublinear_tf=True, dtype=np.float32)
        matrix = self.vectorizer.fit_transform([prepare(text) for text, _ in examples])
        self.labels = sorted({label for _, label in examples})
        index = {label: i for i, label in enumerate(self.labels)}
        membership = csr_matrix((np.ones(len(examples), dtype=np.float32),
                                 ([index[label] for _, label in examples], np.arange(len(examples)))),
                                shape=(len(self.labels), len(examples)))
        centroids = (membership @ matrix).toarray()  # the sum of each intent's rows: the mean's direction
        self.centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)

    def nearest(self, texts: list[str]) -> list[str]:
        similarity = self.vectorizer.transform([prepare(text) for text in texts]) @ self.centroids.T
        return [self.labels[i] for i in np.asarray(similarity).argmax(axis=1)]


@lru_cache(maxsize=1)
def _centroids() -> _Centroids:
    return _Centroids(list(_shipped()))


def place_topics(topics: list[FaqTopic]) -> dict[str, FaqTopic]:
    """intent -> the topic that answers it. A topic takes the shipped FAQ intent most of its texts are nearest
    to (first come, first served: two topics about shipping make the second a topic of its own); otherwise
    ``faq:<topic>``."""
    placed: dict[str, FaqTopic] = {}
    centroids = _centroids() if topics else None
    for topic in topics:
        texts = [topic.title, *topic.keywords, *topic.examples]
        votes = Counter(label for label in centroids.nearest(texts) if label in SHIPPED_FAQ)
        label, count = votes.most_common(1)[0] if votes else (None, 0)
        if label is not None and count * 2 >= len(texts) and label not in placed:
            placed[label] = topic
        else:
            placed[CUSTOM_PREFIX + topic.topic] = topic
    return placed


def signature(topics: list[FaqTopic]) -> str:
    # The content only (the topic key is unique): the same FAQ in another database, or saved again unchanged,
    # is the same model.
    payload = json.dumps([[t.topic, t.title, list(t.keywords), list(t.examples)] for t in topics])
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class StoreModel:
    model: IntentModel
    topics: dict[str, FaqTopic]  # intent -> the merchant's topic answering it


def build(topics: list[FaqTopic]) -> StoreModel:
    placed = place_topics(topics)
    if not placed:
        return StoreModel(base_model(), {})
    examples = list(_shipped())
    seen = {normalize(text) for text, _ in examples}
    for label, topic in placed.items():
        for text in topic.texts():
            key = normalize(text)
            if key and key not in seen:  # a keyword that is also a shipped example keeps its shipped intent
                seen.add(key)
                examples.append((text, label))
    return StoreModel(IntentModel(examples), placed)  # its own temperature: the base model is never needed


_lock = threading.Lock()
_models: OrderedDict[str, StoreModel] = OrderedDict()


def store_model(session: Session) -> StoreModel:
    """The model for the store's current FAQ, trained on first use after a change."""
    topics = faq_topics(session)
    key = signature(topics)
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
        built = build(topics)
        _models[key] = built
        while len(_models) > MODELS_KEPT:
            _models.popitem(last=False)
        return built
