"""Text similarity between two residents' descriptions.

The taxonomy suggester's tokens (jieba words, character bigrams, pinyin
bigrams, single characters, dialect normalised) are reused so a typo or a
Sichuan word matches here as it does there; Arabic digits are read as Chinese
numerals first (3组 = 三组). Cosine of the two weighted bags is the
similarity, 0..1. Character bigrams weigh most: two neighbours describe one
broken pipe in different words far more often than in the same segmentation.
IDF weights (from the taxonomy's item texts or from the residents' texts of
the suggestion set) were tried and measured worse on the labelled pairs
(`ydt duplicates evaluate`), so tokens are weighted by kind only.

Pure functions: the API, the staff list, the class-case alert and the
evaluation command all call these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from app.taxonomy.search import normalise, tokens

# Words carry identity of the problem best; bigrams survive segmentation
# differences; pinyin survives homophone typos; single characters are noise.
KIND_WEIGHT = {"w": 0.6, "c": 1.0, "p": 0.6, "u": 0.5}
_DIGITS_AS_HANZI = str.maketrans("0123456789", "〇一二三四五六七八九")
EARTH_RADIUS_M = 6_371_000.0

Vector = dict[str, float]


@lru_cache(maxsize=4096)
def vector(text: str) -> Vector:
    """Cached: the same open cases are compared again with every keystroke's
    hint and every staff list, and tokenising (jieba, pinyin) is the cost.
    Callers must not mutate the result."""
    bag = tokens(normalise(text.translate(_DIGITS_AS_HANZI)))
    return {tok: (1 + math.log(n)) * KIND_WEIGHT.get(tok[0], 0.5) for tok, n in bag.items()}


def _norm(a: Vector) -> float:
    return math.sqrt(sum(w * w for w in a.values()))


def _cosine(a: Vector, b: Vector, na: float, nb: float) -> float:
    if not a or not b:
        return 0.0
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    dot = sum(w * large.get(t, 0.0) for t, w in small.items())
    return dot / (na * nb) if na and nb else 0.0


def cosine(a: Vector, b: Vector) -> float:
    return _cosine(a, b, _norm(a), _norm(b))


def similarity(a: str, b: str) -> float:
    return round(cosine(vector(a), vector(b)), 4)


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine), metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def box(lat: float, lng: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lat/lng box around a point that contains the circle: an indexable
    pre-filter, the exact distance is checked after."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlng = dlat / max(math.cos(math.radians(lat)), 0.01)
    return lat - dlat, lat + dlat, lng - dlng, lng + dlng


def group(texts: Sequence[str], threshold: float) -> list[list[int]]:
    """Single-link groups of texts at least ``threshold`` similar, largest first:
    a class case is a chain of look-alike reports, not only a tight clique.

    The same groups as comparing every pair, for less: each distinct text is
    compared once (a repeated text joins its first occurrence if it is similar
    to itself, which only an empty text is not), each norm is computed once,
    and a pair already joined through others is not compared, since single
    link needs no more evidence. The rankings' class-case alert groups up to
    20 × 50 texts per request (bench/README.md)."""
    vecs = [vector(t) for t in texts]
    first: dict[str, int] = {}
    rep = [first.setdefault(t, i) for i, t in enumerate(texts)]
    distinct = sorted(first.values())
    norms = {i: _norm(vecs[i]) for i in distinct}
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Whether a text is similar to itself: once per distinct text, not per
    # repeat (the class-case alert's clusters repeat a few texts many times).
    selfsame = {r: _cosine(vecs[r], vecs[r], norms[r], norms[r]) >= threshold for r in distinct}
    for i, r in enumerate(rep):
        if r != i and selfsame[r]:
            parent[find(i)] = find(r)
    for k, i in enumerate(distinct):
        for j in distinct[k + 1 :]:
            root_i, root_j = find(i), find(j)
            if root_i == root_j:
                continue
            if _cosine(vecs[i], vecs[j], norms[i], norms[j]) >= threshold:
                parent[root_j] = root_i
    groups: dict[int, list[int]] = {}
    for i in range(len(texts)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))
