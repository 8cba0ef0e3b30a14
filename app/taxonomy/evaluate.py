"""Measuring suggestion quality against the committed labelled set.

``python -m app.taxonomy.evaluate`` prints top-1/top-3/top-5 accuracy on the
held-out file (categories 01–56), the tuning file (57–83) and both, and by
writing style, for BM25 alone and fused with the learned model; the README
quotes its output and a test holds the line. This module only *scores* on the
held-out file: no training or tuning code reads it.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from app.reference.loader import ReferenceBundle, load_bundle
from app.taxonomy.search import IndexedItem, Reranker, TaxonomyIndex, positive_guidance

LABELLED_DIR = Path(__file__).resolve().parents[2] / "tests" / "taxonomy" / "labelled"


@dataclass(frozen=True, slots=True)
class Case:
    text: str
    item: str
    style: str


@dataclass
class Report:
    total: int = 0
    hits: Counter[int] = field(default_factory=Counter)
    by_style: dict[str, Counter[str]] = field(default_factory=dict)
    misses: list[tuple[Case, list[str]]] = field(default_factory=list)

    def rate(self, k: int) -> float:
        return self.hits[k] / self.total if self.total else 0.0

    def render(self) -> str:
        lines = [
            f"labelled texts: {self.total}",
            f"top-1 {self.rate(1):.1%}   top-3 {self.rate(3):.1%}   top-5 {self.rate(5):.1%}",
        ]
        for style, c in sorted(self.by_style.items()):
            n = c["n"]
            lines.append(f"  {style:<8} n={n:<4} top-1 {c['1'] / n:.0%}  top-3 {c['3'] / n:.0%}")
        return "\n".join(lines)


def load_cases(directory: Path = LABELLED_DIR) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                cases.append(Case(row["text"], row["item"], row.get("style", "plain")))
    return cases


def index_from_bundle(bundle: ReferenceBundle) -> TaxonomyIndex:
    tx = bundle.taxonomies[-1]
    categories = {c.code: c.name for c in tx.categories}
    return TaxonomyIndex(
        IndexedItem(
            code=it.code,
            name=it.name,
            category_code=it.category,
            category_name=categories[it.category],
            keywords=it.keywords,
            guidance=it.guidance,
            pinyin_initials=it.pinyin_initials,
            klass=it.klass.value,
        )
        for it in tx.items
        if not it.retired
    )


def evaluate(index: TaxonomyIndex, cases: list[Case], model: Reranker | None = None) -> Report:
    report = Report()
    for case in cases:
        ranked = [s.code for s in index.suggest(case.text, limit=5, model=model)]
        report.total += 1
        style = report.by_style.setdefault(case.style, Counter())
        style["n"] += 1
        for k in (1, 3, 5):
            if case.item in ranked[:k]:
                report.hits[k] += 1
                style[str(k)] += 1
        if case.item not in ranked[:3]:
            report.misses.append((case, ranked))
    return report


def held_out(cases: list[Case]) -> list[Case]:
    return [c for c in cases if c.item < "57"]


def tuning(cases: list[Case]) -> list[Case]:
    return [c for c in cases if c.item >= "57"]


def render_sets(index: TaxonomyIndex, cases: list[Case], model: Reranker | None) -> str:
    """One line per set (held-out, tuning, all), then the styles of the held-out set."""
    lines = []
    for name, subset in (("held-out", held_out(cases)), ("tuning", tuning(cases)), ("all", cases)):
        r = evaluate(index, subset, model)
        lines.append(
            f"{name:<9} n={r.total:<4} top-1 {r.rate(1):.1%}  top-3 {r.rate(3):.1%}  "
            f"top-5 {r.rate(5):.1%}"
        )
        if name == "held-out":
            styles = [
                f"{st} {c['3'] / c['n']:.0%}" for st, c in sorted(r.by_style.items()) if c["n"]
            ]
            lines.append("          held-out top-3 by style: " + ", ".join(styles))
    return "\n".join(lines)


def fusion_grid(index: TaxonomyIndex, cases: list[Case]) -> str:
    """How the fusion weight and temperature were chosen: a model trained without
    the tuning file, scored on the tuning file only (never on the held-out one)."""
    from dataclasses import replace

    from app.taxonomy import model as learned

    items = [d.item for d in index.docs]
    base = learned.train(learned.shipped_examples(items, with_tuning=False))
    lines = ["top-3 on the tuning file, model trained without it (w = model weight):"]
    for t in (2.0, 5.0, 10.0):
        row = []
        for w in (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0):
            r = evaluate(index, tuning(cases), replace(base, fusion_weight=w, temperature=t))
            row.append(f"w={w:.1f} {r.rate(3):.1%}")
        lines.append(f"  T={t:<4} " + "  ".join(row))
    return "\n".join(lines)


def main() -> int:
    from app.core.config import get_settings
    from app.taxonomy import model as learned

    index = index_from_bundle(load_bundle())
    items = [d.item for d in index.docs]
    cases = load_cases()
    if "--fusion-grid" in sys.argv:
        print(fusion_grid(index, cases))
        return 0
    print("BM25 alone:")
    print(render_sets(index, cases, None))
    path = learned.model_path(get_settings().model_dir, learned.shipped_fingerprint(items))
    model = learned.load(path)
    if model is None:
        model = learned.build(items)
        learned.save(model, path)
    print(f"BM25 + learned model ({model.corrections} corrections, {path.name}):")
    print(render_sets(index, cases, model))
    if "-v" in sys.argv:  # misses of the tuning file only: the held-out texts stay unread
        for case, ranked in evaluate(index, tuning(cases), model).misses:
            print(f"MISS {case.item} [{case.style}] {case.text[:60]} -> {ranked}")
    return 0


__all__ = [
    "Case",
    "Report",
    "evaluate",
    "fusion_grid",
    "held_out",
    "index_from_bundle",
    "load_cases",
    "positive_guidance",
    "render_sets",
    "tuning",
]

if __name__ == "__main__":
    sys.exit(main())
