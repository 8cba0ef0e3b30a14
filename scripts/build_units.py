#!/usr/bin/env python3
"""Regenerate app/reference/data/units.json from regions.json and the resident groups.

Units follow the real structure: the city and every county have a commission
(纪委监委) and its resident groups (派驻纪检监察组); every township/street a
committee (乡镇纪委 / 街道纪工委); every village/community a supervision
committee (村务监督委员会 / 居务监督委员会). Run after editing regions.json and
commit the result: the data file, not this script, is what ``ydt seed`` loads.
"""

from __future__ import annotations

import json
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "app" / "reference" / "data"
ORDINALS = "一二三四五六七八九十"


def ordinal(n: int) -> str:
    if n <= 10:
        return ORDINALS[n - 1]
    return "十" + ORDINALS[n - 11] if n < 20 else str(n)


def main() -> None:
    regions = json.loads((DATA / "regions.json").read_text(encoding="utf-8"))
    groups = json.loads((DATA / "taxonomy" / "v1" / "categories.json").read_text(encoding="utf-8"))[
        "groups"
    ]
    by_code = {r["code"]: r for r in regions}
    units: list[dict[str, object]] = []

    def commission_code(region: dict[str, str]) -> str:
        return f"JW-{region['code'][:6] if region['level'] == 'county' else region['code'][:4]}"

    for r in regions:
        level = r["level"]
        if level in ("city", "county"):
            code = commission_code(r)
            parent = None if level == "city" else commission_code(by_code[r["parent"]])
            units.append(
                {
                    "code": code,
                    "name": f"{r['name']}纪委监委",
                    "kind": "commission",
                    "level": level,
                    "region": r["code"],
                    "group": None,
                    "parent": parent,
                }
            )
            for i, g in enumerate(groups, start=1):
                units.append(
                    {
                        "code": f"{code}-{g['code']}",
                        "name": f"{r['name']}纪委监委派驻第{ordinal(i)}纪检监察组",
                        "kind": "resident_group",
                        "level": level,
                        "region": r["code"],
                        "group": g["code"],
                        "parent": code,
                    }
                )
        elif level == "township":
            county = by_code[r["parent"]]
            suffix = "纪工委" if r["kind"] == "street" else "纪委"
            units.append(
                {
                    "code": f"XZ-{r['code'][:9]}",
                    "name": f"{r['name']}{suffix}",
                    "kind": "township_committee",
                    "level": "township",
                    "region": r["code"],
                    "group": None,
                    "parent": commission_code(county),
                }
            )
        else:
            suffix = "居务监督委员会" if r["kind"] == "community" else "村务监督委员会"
            units.append(
                {
                    "code": f"CW-{r['code']}",
                    "name": f"{r['name']}{suffix}",
                    "kind": "village_committee",
                    "level": "village",
                    "region": r["code"],
                    "group": None,
                    "parent": f"XZ-{r['parent'][:9]}",
                }
            )
    out = DATA / "units.json"
    out.write_text(json.dumps(units, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(units)} units to {out}")


if __name__ == "__main__":
    main()
