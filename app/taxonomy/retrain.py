"""``ydt taxonomy retrain``: rebuild the suggestion model from shipped data plus
staff corrections, and show what it changed.

The evaluation before and after is the labelled set (when the source tree with
``tests/`` is present) and the corrections themselves: a correction that the
old model missed and the new one ranks in its top 3 is the point of retraining.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.taxonomy import model as learned
from app.taxonomy import service
from app.taxonomy.evaluate import LABELLED_DIR, Case, evaluate, load_cases, render_sets
from app.taxonomy.search import TaxonomyIndex


def _report(
    index: TaxonomyIndex,
    cases: list[Case],
    fixes: list[Case],
    model: learned.TextModel | None,
) -> str:
    lines = []
    if cases:
        lines.append(render_sets(index, cases, model))
    if fixes:
        r = evaluate(index, fixes, model)
        lines.append(f"corrections n={r.total:<4} top-1 {r.rate(1):.1%}  top-3 {r.rate(3):.1%}")
    return "\n".join(lines) or "(nothing to evaluate)"


async def retrain(session: AsyncSession, model_dir: Path) -> str:
    snap = await service.snapshot(session)
    path = learned.model_path(model_dir, snap.model_fp)
    before = await asyncio.to_thread(learned.load, path)
    corrections = await service.corrections(session)
    fixes = [Case(c.text, c.item, "correction") for c in corrections if c.item in snap.items]
    cases = load_cases() if LABELLED_DIR.is_dir() else []
    label = "BM25 alone" if before is None else f"{before.corrections} corrections"
    out = [f"before ({label}):"]
    out.append(await asyncio.to_thread(_report, snap.index, cases, fixes, before))
    after = await service.rebuild_model(session, model_dir)
    out.append(f"after ({after.corrections} corrections, {path.name}):")
    out.append(await asyncio.to_thread(_report, snap.index, cases, fixes, after))
    return "\n".join(out)
