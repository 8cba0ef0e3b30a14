"""The pure text machinery and the measured floor of duplicate detection."""

from __future__ import annotations

import random

from app.complaints.summary import public_summary
from app.core.config import Settings
from app.duplicates import evaluate
from app.duplicates.similarity import cosine, distance_m, group, similarity, vector


def test_the_same_problem_in_other_words_and_dialect_scores_above_a_different_one() -> None:
    a = "我们3组通往学校那段路的路灯坏了快一个月了，晚上娃儿放学黑黢黢的"
    same = "三组到小学那条路上的路灯一直不亮，晚上学生走路看不到"
    other = "五组垃圾池满了一个多星期没人清运，臭得很"
    assert similarity(a, same) > Settings().duplicate_threshold > similarity(a, other)


def test_similarity_is_symmetric_bounded_and_empty_safe() -> None:
    a, b = "村口水管爆了", "桥头自来水管破了在冒水"
    assert similarity(a, b) == similarity(b, a)
    assert 0.0 <= similarity(a, b) <= 1.0
    assert similarity(a, a) == 1.0
    assert similarity("", a) == 0.0 and similarity("!!!", "???") == 0.0


def test_groups_are_single_link_and_largest_first() -> None:
    texts = [
        "三组路灯坏了一个月没人修",
        "低保名单里有开门市的人",
        "三组的路灯一直不亮没人修",
        "三组路灯坏了晚上看不到路",
    ]
    groups = group(texts, 0.3)
    assert groups[0] == [0, 2, 3] and [1] in groups


def _all_pairs(texts: list[str], threshold: float) -> list[list[int]]:
    """The definition, naively: every pair compared, components by flooding."""
    n = len(texts)
    edges = {
        (i, j)
        for i in range(n)
        for j in range(n)
        if i != j and cosine(vector(texts[i]), vector(texts[j])) >= threshold
    }
    seen: set[int] = set()
    out = []
    for start in range(n):
        if start in seen:
            continue
        members, todo = {start}, [start]
        while todo:
            i = todo.pop()
            for j in range(n):
                if (i, j) in edges and j not in members:
                    members.add(j)
                    todo.append(j)
        seen |= members
        out.append(sorted(members))
    return sorted(out, key=lambda g: (-len(g), g[0]))


def test_groups_equal_comparing_every_pair_with_repeats_and_empty_texts() -> None:
    """group() skips repeated texts and already joined pairs; the groups must be
    those of the plain definition, repeated and token-less texts included."""
    pool = [
        "三组路灯坏了一个月没人修",
        "三组的路灯一直不亮没人修",
        "路灯坏了晚上看不到路",
        "低保名单里有开门市的人",
        "低保评得不公平名单不公开",
        "五组垃圾池满了一个多星期没人清运",
        "",
        "!!!",
    ]
    rnd = random.Random(16)
    for _ in range(60):
        texts = [rnd.choice(pool) for _ in range(rnd.randint(0, 14))]
        for threshold in (0.0, 0.25, 0.5, 1.0):
            assert group(texts, threshold) == _all_pairs(texts, threshold), (texts, threshold)


def test_public_summary_masks_numbers_and_self_introductions_and_is_short() -> None:
    text = "我叫张三，电话13912345678，身份证511702199001011234，" + "路灯坏了" * 40
    out = public_summary(text, limit=80)
    assert "张三" not in out and "13912345678" not in out and "511702199001011234" not in out
    assert len(out) <= 80


def test_distance_is_metres() -> None:
    assert 100 < distance_m(31.2, 107.5, 31.201, 107.5) < 120


def test_precision_and_recall_on_the_labelled_pairs_hold_the_line() -> None:
    """The README quotes these figures (`ydt duplicates evaluate`)."""
    pairs = evaluate.load_pairs()
    assert len(pairs) * 2 >= 150 and {p.duplicate for p in pairs} == {True, False}
    scores = evaluate.at(evaluate.scored(pairs), Settings().duplicate_threshold)
    assert scores.precision >= 0.85 and scores.recall >= 0.80, scores.line()
