"""Suggestion quality, measured on the committed labelled set (507 texts).

The 57–83 file was used to tune the few global knobs of the ranker (BM25
k1/b, token-kind weights, the intent boost, the fusion weight) and is part of
the learned model's training data; the 01–56 file was never looked at while
tuning or training and is the held-out figure. The goal is held-out top-3 >=
90%; the README reports where we stand. These floors guard against regressions
at the measured level minus a small margin (they are not the goal).
"""

from __future__ import annotations

import pytest

from app.reference.loader import load_bundle
from app.taxonomy.evaluate import Case, evaluate, held_out, load_cases
from app.taxonomy.model import TextModel
from app.taxonomy.search import TaxonomyIndex


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return load_cases()


def test_labelled_set_is_large_varied_and_valid(cases: list[Case]) -> None:
    codes = {it.code for it in load_bundle().taxonomies[-1].items}
    assert len(cases) >= 300
    assert all(c.item in codes for c in cases)
    assert {"plain", "dialect", "typo", "long", "short", "elderly"} <= {c.style for c in cases}
    assert len({c.item[:2] for c in cases}) == 83  # every category is represented


def test_bm25_alone_accuracy(index: TaxonomyIndex, cases: list[Case]) -> None:
    report = evaluate(index, cases)
    print("\n" + report.render())
    assert report.rate(3) >= 0.84
    assert report.rate(1) >= 0.66
    assert evaluate(index, held_out(cases)).rate(3) >= 0.82


def test_overall_accuracy(index: TaxonomyIndex, text_model: TextModel, cases: list[Case]) -> None:
    report = evaluate(index, cases, text_model)
    print("\n" + report.render())
    assert report.rate(3) >= 0.92  # measured 93.5%
    assert report.rate(1) >= 0.83  # measured 85.4%


def test_held_out_accuracy(index: TaxonomyIndex, text_model: TextModel, cases: list[Case]) -> None:
    report = evaluate(index, held_out(cases), text_model)
    print("\n" + report.render())
    assert report.rate(3) >= 0.89  # measured 90.2%
    assert report.rate(1) >= 0.76  # measured 78.1%
    long = report.by_style["long"]
    assert long["3"] / long["n"] >= 0.84  # measured 88%, was 79% with BM25 alone


def test_homophone_typo_still_finds_dibao(index: TaxonomyIndex) -> None:
    ranked = [s.code for s in index.suggest("村上评低宝全是干部屋头的亲戚", limit=3)]
    assert ranked and ranked[0][:2] in ("04", "47")


def test_a_question_prefers_the_consultation_item(
    index: TaxonomyIndex, text_model: TextModel
) -> None:
    text = "想问一下低保申请要什么条件？一个月能领好多钱"
    assert index.suggest(text, limit=1)[0].code == "0405"
    assert index.suggest(text, limit=1, model=text_model)[0].code == "0405"
