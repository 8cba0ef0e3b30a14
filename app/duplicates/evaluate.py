"""Measuring duplicate detection against the committed labelled pairs.

``ydt duplicates evaluate`` prints precision and recall at the configured
threshold (and a sweep around it); the README quotes its output and a test
holds the line. The pairs are residents' texts written for the purpose, in
dialect and with typos, half of them the same problem told by two people,
half a different problem of the same kind (the hard case).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from app.duplicates.similarity import similarity

LABELLED = Path(__file__).resolve().parents[2] / "tests" / "duplicates" / "labelled" / "pairs.jsonl"


@dataclass(frozen=True, slots=True)
class Pair:
    a: str
    b: str
    duplicate: bool
    style: str


@dataclass(frozen=True, slots=True)
class Scores:
    threshold: float
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def line(self) -> str:
        return (
            f"threshold {self.threshold:.2f}  precision {self.precision:.1%}  "
            f"recall {self.recall:.1%}  (tp {self.tp} fp {self.fp} fn {self.fn} tn {self.tn})"
        )


def load_pairs(path: Path = LABELLED) -> list[Pair]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.append(Pair(row["a"], row["b"], bool(row["duplicate"]), row.get("style", "plain")))
    return out


def scored(pairs: list[Pair]) -> list[tuple[float, Pair]]:
    return [(similarity(p.a, p.b), p) for p in pairs]


def at(results: list[tuple[float, Pair]], threshold: float) -> Scores:
    tp = sum(1 for s, p in results if s >= threshold and p.duplicate)
    fp = sum(1 for s, p in results if s >= threshold and not p.duplicate)
    fn = sum(1 for s, p in results if s < threshold and p.duplicate)
    return Scores(threshold, tp, fp, fn, len(results) - tp - fp - fn)


def report(results: list[tuple[float, Pair]], threshold: float) -> str:
    texts = 2 * len(results)
    dups = sum(1 for _, p in results if p.duplicate)
    lines = [
        f"labelled pairs: {len(results)} ({dups} duplicate, "
        f"{len(results) - dups} not; {texts} texts)",
        "chosen " + at(results, threshold).line(),
        "sweep:",
    ]
    for t in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4):
        lines.append("  " + at(results, t).line())
    return "\n".join(lines)


def main(threshold: float, *, verbose: bool = False) -> int:
    results = scored(load_pairs())
    print(report(results, threshold))
    if verbose:
        for s, p in sorted(results, key=lambda r: r[0]):
            wrong = (s >= threshold) != p.duplicate
            if wrong:
                print(f"{'FN' if p.duplicate else 'FP'} {s:.3f} {p.a[:30]} | {p.b[:30]}")
    return 0
