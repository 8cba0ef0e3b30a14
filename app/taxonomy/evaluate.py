"""Measuring suggestion quality against the committed labelled set.

``python -m app.taxonomy.evaluate`` prints top-1/top-3/top-5 accuracy overall
and by writing style; the README quotes its output and a test holds the line.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from app.reference.loader import ReferenceBundle, load_bundle
from app.taxonomy.search import IndexedItem, TaxonomyIndex, positive_guidance

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


def evaluate(index: TaxonomyIndex, cases: list[Case]) -> Report:
    report = Report()
    for case in cases:
        ranked = [s.code for s in index.suggest(case.text, limit=5)]
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


def main() -> int:
    report = evaluate(index_from_bundle(load_bundle()), load_cases())
    print(report.render())
    if "-v" in sys.argv:
        for case, ranked in report.misses:
            print(f"MISS {case.item} [{case.style}] {case.text[:60]} -> {ranked}")
    return 0


__all__ = ["Case", "Report", "evaluate", "index_from_bundle", "load_cases", "positive_guidance"]

if __name__ == "__main__":
    sys.exit(main())
