"""The learned model: what it is trained on, that corrections teach it, and its cost."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from app.taxonomy import model as learned
from app.taxonomy.evaluate import LABELLED_DIR
from app.taxonomy.search import TaxonomyIndex

# Not a case any item's words describe: BM25 and the shipped model place it elsewhere.
ODD_TEXT = "村口那家人天天半夜在河沟里用电瓶电鱼，鱼虾都电绝了，喊他也不听"
TARGET = "8002"  # 调解员收受当事人好处: deliberately far from the text


def rank(index: TaxonomyIndex, model: learned.TextModel, text: str, code: str) -> int:
    codes = [s.code for s in index.suggest(text, limit=len(index), model=model)]
    return codes.index(code) if code in codes else len(codes)


def test_the_shipped_tuning_copy_matches_the_labelled_tuning_file() -> None:
    shipped = learned.TRAINING_DIR / "tuning_57_83.jsonl"
    assert shipped.read_bytes() == (LABELLED_DIR / "complaints_57_83.jsonl").read_bytes()


def test_training_data_covers_every_item_and_never_the_held_out_file(
    index: TaxonomyIndex,
) -> None:
    names = {p.name for p in learned.TRAINING_DIR.glob("*.jsonl")}
    assert not any("01_56" in n for n in names)
    corpus = [
        e
        for p in sorted(learned.TRAINING_DIR.glob("residents_*.jsonl"))
        for e in learned.corpus_examples(p.parent)
        if p.name.startswith("residents_")
    ]
    written = learned.corpus_examples(learned.TRAINING_DIR)
    codes = {d.item.code for d in index.docs}
    per_item: dict[str, int] = {}
    for e in written:
        assert e.item in codes
        per_item[e.item] = per_item.get(e.item, 0) + 1
    assert set(per_item) == codes and min(per_item.values()) >= 2
    assert corpus


def test_a_correction_improves_the_next_suggestion(
    index: TaxonomyIndex, text_model: learned.TextModel
) -> None:
    items = [d.item for d in index.docs]
    before = rank(index, text_model, ODD_TEXT, TARGET)
    assert before >= 3
    corrected = learned.build(items, [learned.Example(ODD_TEXT, TARGET)])
    assert corrected.corrections == 1
    after = rank(index, corrected, ODD_TEXT, TARGET)
    print(f"\nrank of the corrected item: {before + 1} -> {after + 1}")
    assert after < before and after < 3
    # A correction is one example, not a rule: other texts keep their items.
    assert index.suggest("村上评低宝全是干部屋头的亲戚", limit=3, model=corrected)[0].code[:2] in (
        "04",
        "47",
    )


def test_corrections_for_unknown_items_or_empty_texts_are_ignored(
    index: TaxonomyIndex, tmp_path: Path
) -> None:
    items = [d.item for d in index.docs][:20]
    model = learned.build(
        items, [learned.Example("随便写点", "9999"), learned.Example("   ", items[0].code)]
    )
    assert model.corrections == 0 and set(model.classes) <= {it.code for it in items}
    path = tmp_path / "m.joblib"
    learned.save(model, path)
    assert learned.load(path) is not None
    path.write_bytes(b"not a model")
    assert learned.load(path) is None  # unreadable: rebuilt, never a 500
    assert learned.load(tmp_path / "missing.joblib") is None


def test_suggest_latency_with_the_model(
    index: TaxonomyIndex, text_model: learned.TextModel
) -> None:
    texts = [
        "村上评低保全是干部的亲戚",
        "我家的地被征了青苗费没给",
        "楼下烧烤摊半夜吵得睡不着",
        "老师在屋头办补习班收钱，不去补课的娃儿就不管",
        "我们村修路的工程款拖了两年没给，包工头天天找我要钱，村上说镇上没拨款",
    ]
    for t in texts:
        index.suggest(t, model=text_model)  # warm jieba and the vectorisers
    # CPU time of this process: what a call costs, not how long the 2-core
    # machine shared with other jobs kept it waiting (wall time printed too).
    cpu: list[float] = []
    wall: list[float] = []
    for i in range(200):
        c0, w0 = time.process_time(), time.perf_counter()
        index.suggest(texts[i % len(texts)] + str(i), model=text_model)
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    cpu.sort()
    wall.sort()

    def p(xs: list[float], q: float) -> float:
        return xs[min(int(len(xs) * q), len(xs) - 1)]

    print(
        f"\nsuggest with model: cpu p50 {p(cpu, 0.5):.1f} ms p99 {p(cpu, 0.99):.1f} ms; "
        f"wall p50 {p(wall, 0.5):.1f} ms p99 {p(wall, 0.99):.1f} ms"
    )
    assert p(cpu, 0.5) < 20
    assert p(cpu, 0.99) < 50


def test_request_features_equal_the_vectorisers() -> None:
    texts = [
        "村上评低宝全是干部屋头的亲戚",
        "  12345 热线打了  没人管 ABC ",
        "我 a 要\t反映",
        "路灯坏了。",
    ]
    common = {"sublinear_tf": True, "min_df": 1}
    char_vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), **common)
    token_vec = TfidfVectorizer(analyzer=learned.ranker_tokens, **common)
    expected = sp.hstack([char_vec.fit_transform(texts), token_vec.fit_transform(texts)]).toarray()
    width = expected.shape[1]
    m = learned.TextModel(
        fingerprint="",
        classes=("x",),
        char_vocab={str(k): int(v) for k, v in char_vec.vocabulary_.items()},
        char_idf=char_vec.idf_.astype(np.float32),
        token_vocab={str(k): int(v) for k, v in token_vec.vocabulary_.items()},
        token_idf=token_vec.idf_.astype(np.float32),
        weights=sp.csr_matrix((width, 1), dtype=np.float32),
        bias=np.zeros(1, dtype=np.float32),
    )
    analyzer = char_vec.build_analyzer()
    for i, t in enumerate(texts):
        assert learned.char_ngrams(t) == analyzer(t)
        assert np.allclose(m.features(t).toarray().ravel(), expected[i], atol=1e-5)
