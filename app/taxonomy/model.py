"""The learned half of suggestion: a character n-gram linear model fused with BM25.

BM25 (``search.py``) only knows the words an item is described with; residents
write in their own words. A linear classifier over character 1–3-grams and the
ranker's own tokens learns those words from examples: the item descriptions,
the shipped corpus of resident texts written for every item
(``training/residents_*.jsonl``), the labelled tuning texts of categories 57–83
(``training/tuning_57_83.jsonl``, a copy a test keeps identical to the one under
``tests/``) and staff corrections (reclassified cases). The held-out labelled
file (categories 01–56) is never read here.

The model is trained at seed/retrain time, not per request: one joblib file per
shipped-data fingerprint under ``Settings.model_dir``, rebuilt if missing,
loaded once per process and reloaded when a retrain replaces the file. joblib
rather than skops: the file is written and read by this same code on this
machine, never downloaded, so pickle's trust problem does not arise.

Fusion: the BM25 scores divided by their best, plus ``FUSION_WEIGHT`` times the
model's softmax (temperature ``TEMPERATURE``) divided by its best. Both knobs
were chosen on the tuning file with a model that had not seen it (README).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from app.taxonomy.search import IndexedItem, normalise, positive_guidance, tokens

logger = logging.getLogger(__name__)

MODEL_FORMAT = 2
_SPACES = re.compile(r"\s\s+")
TRAINING_DIR = Path(__file__).resolve().parent / "training"
TUNING_FILE = "tuning_57_83.jsonl"
FUSION_WEIGHT = 0.5
TEMPERATURE = 5.0
MAX_FEATURES = 15_000  # per feature kind; more adds memory, not accuracy
PRUNE_BELOW = 0.01  # weights this small change no ranking; dropping them keeps the file small
CORRECTION_REPEAT = 3  # a staff correction is worth more than one written example


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    item: str


def ranker_tokens(text: str) -> list[str]:
    """The BM25 ranker's tokens (jieba words, bigrams, pinyin) as model features."""
    return list(tokens(normalise(text)).elements())


def description_examples(items: Iterable[IndexedItem]) -> list[Example]:
    out: list[Example] = []
    for it in items:
        out.append(Example(f"{it.name} {' '.join(it.keywords)}", it.code))
        out.append(
            Example(f"{it.name} {it.category_name} {positive_guidance(it.guidance)}", it.code)
        )
    return out


def _read(path: Path) -> list[Example]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [Example(row["text"], row["item"]) for row in rows]


def corpus_examples(directory: Path = TRAINING_DIR) -> list[Example]:
    return [e for path in sorted(directory.glob("*.jsonl")) for e in _read(path)]


def fingerprint(items: Sequence[IndexedItem], examples: Sequence[Example]) -> str:
    h = hashlib.sha256(f"format={MODEL_FORMAT}".encode())
    for it in items:
        h.update(f"\x1e{it.code}\x1f{it.name}\x1f{'|'.join(it.keywords)}\x1f{it.guidance}".encode())
    for ex in examples:
        h.update(f"\x1d{ex.item}\x1f{ex.text}".encode())
    return h.hexdigest()


def char_ngrams(text: str, low: int = 1, high: int = 3) -> list[str]:
    """scikit-learn's ``char_wb`` analyzer, reimplemented so a request needs no
    vectoriser object (a test holds the two equal)."""
    out: list[str] = []
    for word in _SPACES.sub(" ", text.lower()).split():
        w = f" {word} "
        for n in range(low, high + 1):
            out.extend(w[i : i + n] for i in range(max(len(w) - n + 1, 1)))
            if len(w) <= n:  # a short word counts once
                break
    return out


@dataclass
class TextModel:
    """Vocabularies and idf of the two feature kinds, and a pruned sparse weight
    matrix (features × items). Plain arrays, so the file holds no code."""

    fingerprint: str
    classes: tuple[str, ...]
    char_vocab: dict[str, int]
    char_idf: np.ndarray[Any, np.dtype[np.float32]]
    token_vocab: dict[str, int]
    token_idf: np.ndarray[Any, np.dtype[np.float32]]
    weights: sp.csr_matrix
    bias: np.ndarray[Any, np.dtype[np.float32]]
    corrections: int = 0
    fusion_weight: float = FUSION_WEIGHT
    temperature: float = TEMPERATURE

    def features(self, text: str, query: Counter[str] | None = None) -> sp.csr_matrix:
        """TF-IDF (sublinear tf, l2 per kind) exactly as the vectorisers computed it."""
        toks = query if query is not None else Counter(ranker_tokens(text))
        cols: list[int] = []
        vals: list[float] = []
        offset = len(self.char_vocab)
        for grams, vocab, idf, base in (
            (Counter(char_ngrams(text)), self.char_vocab, self.char_idf, 0),
            (toks, self.token_vocab, self.token_idf, offset),
        ):
            part = [(vocab[g], n) for g, n in grams.items() if g in vocab]
            if not part:
                continue
            v = np.array([(1 + math.log(n)) * idf[j] for j, n in part], dtype=np.float32)
            v /= float(np.linalg.norm(v)) or 1.0
            cols.extend(base + j for j, _ in part)
            vals.extend(v.tolist())
        width = offset + len(self.token_vocab)
        return sp.csr_matrix((vals, ([0] * len(cols), cols)), shape=(1, width))

    def relative(self, text: str, query: Counter[str] | None = None) -> dict[str, float]:
        """Each item's softmax score divided by the best one (1.0 for the top item);
        nothing for a text with no known feature, rather than the items' biases."""
        x = self.features(text, query)
        if not x.nnz:
            return {}
        raw = (x @ self.weights).toarray().ravel() + self.bias
        p = np.exp(self.temperature * (raw - raw.max()))
        return dict(zip(self.classes, p.tolist(), strict=True))


def train(examples: Sequence[Example], *, fp: str = "", corrections: int = 0) -> TextModel:
    texts = [e.text for e in examples]
    labels = [e.item for e in examples]
    common = {"sublinear_tf": True, "min_df": 2, "max_features": MAX_FEATURES}
    char_vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), **common)
    token_vec = TfidfVectorizer(analyzer=ranker_tokens, **common)
    x = sp.hstack([char_vec.fit_transform(texts), token_vec.fit_transform(texts)], format="csr")
    clf = LinearSVC(C=0.5)
    clf.fit(x, labels)
    coef = clf.coef_.astype(np.float32)
    coef[np.abs(coef) < PRUNE_BELOW] = 0.0
    return TextModel(
        fingerprint=fp,
        classes=tuple(str(c) for c in clf.classes_),
        char_vocab={str(k): int(v) for k, v in char_vec.vocabulary_.items()},
        char_idf=char_vec.idf_.astype(np.float32),
        token_vocab={str(k): int(v) for k, v in token_vec.vocabulary_.items()},
        token_idf=token_vec.idf_.astype(np.float32),
        weights=sp.csr_matrix(coef.T),
        bias=clf.intercept_.astype(np.float32),
        corrections=corrections,
    )


def shipped_examples(items: Sequence[IndexedItem], *, with_tuning: bool = True) -> list[Example]:
    """Descriptions and the shipped texts; ``with_tuning=False`` leaves out the
    tuning file, so the fusion knobs can be chosen on texts the model has not seen."""
    codes = {it.code for it in items}
    corpus = [
        e
        for path in sorted(TRAINING_DIR.glob("*.jsonl"))
        if with_tuning or path.name != TUNING_FILE
        for e in _read(path)
    ]
    return [e for e in [*description_examples(items), *corpus] if e.item in codes]


def build(items: Sequence[IndexedItem], corrections: Sequence[Example] = ()) -> TextModel:
    """Train on the shipped data plus corrections (for items that still exist)."""
    codes = {it.code for it in items}
    fixes = [c for c in corrections if c.item in codes and c.text.strip()]
    examples = shipped_examples(items) + [c for c in fixes for _ in range(CORRECTION_REPEAT)]
    return train(examples, fp=shipped_fingerprint(items), corrections=len(fixes))


def shipped_fingerprint(items: Sequence[IndexedItem]) -> str:
    return fingerprint(items, shipped_examples(items))


def model_path(model_dir: Path, fp: str) -> Path:
    return model_dir / f"suggest-{fp[:24]}.joblib"


def save(model: TextModel, path: Path) -> None:
    """Write then rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump(model, tmp, compress=3)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(path: Path) -> TextModel | None:
    try:
        model = joblib.load(path)
    except FileNotFoundError:
        return None
    except Exception:  # a truncated or foreign file: rebuild rather than fail requests
        logger.warning("suggestion model %s unreadable; it will be rebuilt", path)
        return None
    return model if isinstance(model, TextModel) else None
