"""The results as goals met or missed, and as the Markdown table people read."""

from __future__ import annotations

from typing import Any

MEDIA_GROWTH_GOAL_MB = 64
P99_FACTOR = 3.0


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    load = report.get("load")
    if load:
        for what, label in (
            ("filing", "filing vs bare INSERT"),
            ("tracking", "tracking vs bare SELECT"),
        ):
            r = load[what]
            out.append(
                {
                    "goal": f"{label}: throughput ratio >= {r['goal']:.0%}",
                    "value": r["ratio"],
                    "met": r["met"],
                }
            )
        for what in ("filing", "tracking"):
            r = load[what]
            p99 = r["app"]["p99_ms"] / r["baseline"]["p99_ms"] if r["baseline"]["p99_ms"] else 0
            if what == "filing":
                out.append(
                    {
                        "goal": "filing p99 <= 3x the bare INSERT's",
                        "value": round(p99, 2),
                        "met": p99 <= P99_FACTOR,
                    }
                )
    emb = report.get("embedded")
    if emb:
        t = emb["tracking"]
        out.append(
            {
                "goal": "embedded (SQLite): tracking p99 <= 3x the bare aiosqlite SELECT's",
                "value": t.get("p99_vs_baseline"),
                "met": (t.get("p99_vs_baseline") or 99) <= P99_FACTOR,
            }
        )
    for check in report.get("guarantees", {}).get("checks", []):
        out.append(
            {"goal": f"guarantee: {check['check']}", "value": check["value"], "met": check["ok"]}
        )
    g = report.get("growth", {})
    for key in g.get("goal_keys", []):
        out.append(
            {
                "goal": f"{key}: {g['to']:,} time <= 2x the {g['from']:,} time",
                "value": g["ratio"][key],
                "met": g["met"][key],
            }
        )
    media = report.get("media")
    if media:
        growth = media["streamed"]["rss_growth_mb"]
        out.append(
            {
                "goal": f"RSS growth while {media['streamed']['upload_mb']} MB streams: <= 64 MB",
                "value": growth,
                "met": growth <= MEDIA_GROWTH_GOAL_MB,
            }
        )
        through = media["direct"]["media_bytes_through_app"]
        out.append(
            {
                "goal": "direct presigned upload: zero media bytes through the app",
                "value": through,
                "met": through == 0,
            }
        )
    return out


def _mark(met: bool | None) -> str:
    if met is None:
        return "reported"
    return "**met**" if met else "**missed**"


def _profile_lines(title: str, prof: dict[str, Any]) -> list[str]:
    if "app_inclusive_pct" not in prof:
        return []
    libs = ", ".join(f"{k} {v}%" for k, v in prof["library_self_pct"].items())
    lines = [
        "",
        f"### {title} (py-spy, {prof['samples']} samples)",
        "",
        f"Top frame by library: {libs}.",
        "",
        "| app function (inclusive) | % | top frame | % |",
        "|---|---|---|---|",
    ]
    inc = list(prof["app_inclusive_pct"].items())[:15]
    own = list(prof["self_pct"].items())[:15]
    for (fi, pi), (fs, ps) in zip(inc, own, strict=False):
        lines.append(f"| `{fi}` | {pi} | `{fs}` | {ps} |")
    return lines


def _postgres_profile_lines(what: str, prof: dict[str, Any]) -> list[str]:
    """PostgreSQL's CPU per request by what it was doing (bench.pgprofile),
    the app's load beside the bare baseline's."""
    app, base = prof.get("postgres", {}), prof.get("postgres_baseline", {})
    if "skipped" in app:
        return ["", f"PostgreSQL's side of {what} was not profiled: {app['skipped']}."]
    if "buckets_ms" not in app:
        return []
    base_ms = base.get("buckets_ms", {})
    lines = [
        "",
        f"### Where {what} spends PostgreSQL's CPU (perf, {app['samples']} samples; "
        f"the bare baseline {base.get('samples', 0)})",
        "",
        "Each sample of this database's backends and the shared writers, put in the "
        "first of these buckets any frame of its stack names (bench/pgprofile.py), "
        "times PostgreSQL's CPU per request measured in the rounds.",
        "",
        "| PostgreSQL was | bare baseline ms/req | Yidiantong ms/req | difference |",
        "|---|---|---|---|",
    ]
    names = list(app["buckets_ms"]) + [k for k in base_ms if k not in app["buckets_ms"]]
    for name in names:
        a, b = app["buckets_ms"].get(name, 0.0), base_ms.get(name, 0.0)
        lines.append(f"| {name} | {b:.3f} | {a:.3f} | {a - b:+.3f} |")
    a_total, b_total = app.get("cpu_ms_per_request", 0.0), base.get("cpu_ms_per_request", 0.0)
    lines.append(f"| **all** | {b_total:.3f} | {a_total:.3f} | {a_total - b_total:+.3f} |")
    top = ", ".join(f"`{k}` {v}%" for k, v in list(app.get("self_pct", {}).items())[:8])
    lines += ["", f"Top frames (Yidiantong): {top}."]
    return lines


def _worker_share(load: dict[str, Any]) -> list[str]:
    """How much of the app's CPU per request its `ydt worker` (the statistics
    projector) spent, in the worker and in the backends serving it."""
    parts = []
    for what in ("filing", "tracking"):
        s = load[what]["app"]
        if "worker_postgres_cpu_ms_per_request" not in s:
            return []
        parts.append(
            f"{what} {s['worker_cpu_ms_per_request']} ms in the worker and "
            f"{s['worker_postgres_cpu_ms_per_request']} ms in PostgreSQL"
        )
    return [
        "",
        "Of the app's CPU per request, its `ydt worker` (the statistics projector, "
        f"counted in both columns) spent: {'; '.join(parts)}.",
    ]


def _through_pgbouncer(pgb: dict[str, Any] | None) -> list[str]:
    if not pgb:
        return []
    if "skipped" in pgb:
        return ["", f"Through PgBouncer: not run ({pgb['skipped']})."]
    lines = [
        "",
        "Through PgBouncer (transaction mode, "
        f"{pgb['pool_size']} server connections; the app with `YDT_DATABASE_PGBOUNCER=true`, "
        "so every statement runs in a transaction through SQLAlchemy), against the same bare "
        "baseline straight to PostgreSQL, in rounds of their own:",
        "",
        "| scenario | server | req/s | ratio | p50 ms | p99 ms | server CPU ms/req "
        "| PostgreSQL CPU ms/req | non-2xx |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for what in ("filing", "tracking"):
        r = pgb[what]
        for who, name in (
            ("baseline", "bare FastAPI + asyncpg"),
            ("app", "Yidiantong via PgBouncer"),
        ):
            s = r[who]
            ratio = f"**{r['ratio']:.0%}**" if who == "app" else "baseline"
            lines.append(
                f"| {what} | {name} | {s['rps']:,.0f} | {ratio} | {s['p50_ms']} | {s['p99_ms']} "
                f"| {s['server_cpu_ms_per_request']} | {s['postgres_cpu_ms_per_request']} "
                f"| {s['non_2xx']} |"
            )
    return lines


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    pg = m["postgresql"]
    c = report["config"]
    lines = [
        "# Benchmark results",
        "",
        f"`{c['command']}` on {m['date']}, {report.get('seconds', '?')} s in all.",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {m['cpu_model']}, {m['cores']} cores |",
        f"| memory | {m['memory_gib']} GiB |",
        f"| OS | {m['os']}, kernel {m['kernel']} |",
        f"| Python | {m['python']} ({', '.join(f'{k} {v}' for k, v in m['packages'].items())}) |",
        f"| PostgreSQL | {pg['version'].split(' on ')[0]}; shared_buffers {pg['shared_buffers']}, "
        f"synchronous_commit {pg['synchronous_commit']} |",
        f"| load driver | {m['wrk']} |",
        f"| code | {m['git_commit']}{' + uncommitted changes' if m['git_dirty'] else ''} |",
        "",
        "## Goals",
        "",
        "| goal | value | |",
        "|---|---|---|",
        *[f"| {g['goal']} | {g['value']} | {_mark(g['met'])} |" for g in report["goals"]],
    ]
    load = report.get("load")
    if load:
        lines += [
            "",
            f"## Filing and tracking against the bare baseline ({load['size']:,} complaints)",
            "",
            f"wrk, {c['connections']} connections, {c['threads']} thread; {c['workers']} uvicorn "
            f"workers for both servers; {c['rounds']} interleaved rounds of {c['seconds']:g} s "
            f"after {c['warmup']:g} s of warm-up; medians. CPU per request is read from /proc "
            "for the server's processes and this database's PostgreSQL backends.",
            "",
            "| scenario | server | req/s | ratio (goal) | p50 ms | p99 ms | server CPU ms/req "
            "| PostgreSQL CPU ms/req | non-2xx |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for what, label in (
            ("filing", "filing `POST /complaints`"),
            ("tracking", "tracking `GET /complaints/{id}`"),
        ):
            r = load[what]
            for who, name in (("baseline", "bare FastAPI + asyncpg"), ("app", "Yidiantong")):
                s = r[who]
                ratio = (
                    f"**{r['ratio']:.0%}** (≥ {r['goal']:.0%}) {_mark(r['met'])}"
                    if who == "app"
                    else "baseline"
                )
                lines.append(
                    f"| {label} | {name} | {s['rps']:,.0f} | {ratio} | {s['p50_ms']} | "
                    f"{s['p99_ms']} | {s['server_cpu_ms_per_request']} | "
                    f"{s['postgres_cpu_ms_per_request']} | {s['non_2xx']} |"
                )
        lines += _worker_share(load)
        lines += _through_pgbouncer(load.get("pgbouncer"))
        lines += [
            "",
            "What this database's busy backends were doing (pg_stat_activity every 20 ms; "
            "`idle in transaction` means waiting for the app, `Lock:` for another transaction):",
            "",
            "| scenario | server | busy backends | top states, % of backend-samples |",
            "|---|---|---|---|",
        ]
        for what in ("filing", "tracking"):
            for who in ("baseline", "app"):
                b = load[what][who]["postgres_backends"]
                top = "; ".join(f"{k} {v}%" for k, v in list(b["share_pct"].items())[:5])
                lines.append(f"| {what} | {who} | {b['busy_backends_avg']} | {top} |")
        for what, prof in load.get("profile", {}).items():
            lines += _profile_lines(f"Where {what} spends the app's CPU", prof)
            lines += _postgres_profile_lines(what, prof)
    emb = report.get("embedded")
    if emb:
        lines += [
            "",
            "## The embedded default: SQLite, one worker, against bare aiosqlite",
            "",
            f"The {emb['size']:,}-complaint database copied into SQLite ({emb['copy_seconds']} s); "
            "one uvicorn worker for both servers; the same wrk scripts and interleaved rounds. "
            "No goal on the ratios; the goal is tracking p99 ≤ 3× the baseline's.",
            "",
            "| scenario | server | req/s | ratio | p50 ms | p99 ms | p99 vs baseline "
            "| server CPU ms/req | non-2xx |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for what in ("filing", "tracking"):
            r = emb[what]
            for who, name in (("baseline", "bare FastAPI + aiosqlite"), ("app", "Yidiantong")):
                s = r[who]
                ratio = f"**{r['ratio']:.1%}**" if who == "app" else "baseline"
                vs = r.get("p99_vs_baseline") if who == "app" else ""
                lines.append(
                    f"| {what} | {name} | {s['rps']:,.0f} | {ratio} | {s['p50_ms']} | "
                    f"{s['p99_ms']} | {vs} | {s['server_cpu_ms_per_request']} | {s['non_2xx']} |"
                )
        if "text_checks_deferred" in emb:
            lines += [
                "",
                "Each filing's text check went to the built-in WeChat stand-in at the "
                f"address the app serves; deferred as unreachable: {emb['text_checks_deferred']}.",
            ]
        lines += _profile_lines(
            "Where the embedded default's tracking read spends its CPU", emb.get("profile", {})
        )
    gu = report.get("guarantees")
    if gu:
        lines += [
            "",
            "## Guarantees, checked after the load",
            "",
            "| check | value | |",
            "|---|---|---|",
            *[f"| {c['check']} | {c['value']} | {_mark(c['ok'])} |" for c in gu["checks"]],
        ]
    g = report.get("growth")
    if g and g.get("sizes"):
        sizes = sorted(g["sizes"], key=int)
        lines += [
            "",
            "## Staff reads as data grows",
            "",
            f"One request at a time over HTTP, median of {c['growth_rounds']} after "
            f"{c['growth_warmup']} warm-up calls.",
            "",
            "| read | " + " | ".join(f"{int(n):,}" for n in sizes) + " | ratio |",
            "|---|" + "---|" * (len(sizes) + 1),
        ]
        first = g["sizes"][sizes[0]].get("median_ms", {})
        for key in first:
            cells = [f"{g['sizes'][n]['median_ms'][key]} ms" for n in sizes]
            ratio = g.get("ratio", {}).get(key)
            goal = key in g.get("goal_keys", [])
            shown = f"{ratio}×" if ratio is not None else "–"
            if goal and ratio is not None:
                shown += f" (≤ 2×) {_mark(ratio <= 2)}"
            lines.append(f"| {key} | " + " | ".join(cells) + f" | {shown} |")
        lines += [
            "",
            "| data | " + " | ".join(f"{int(n):,}" for n in sizes) + " |",
            "|---|" + "---|" * len(sizes),
        ]
        for key in ("complaints", "events", "citizens", "ratings", "stats_rows", "load_seconds"):
            lines.append(
                f"| {key} | " + " | ".join(f"{g['sizes'][n][key]:,}" for n in sizes) + " |"
            )
    media = report.get("media")
    if media:
        s, d = media["streamed"], media["direct"]
        lines += [
            "",
            "## Media memory",
            "",
            "| case | measure | result |",
            "|---|---|---|",
            f"| {s['upload_mb']} MB video through `POST /media` | RSS growth (peak − before) | "
            f"**{s['rss_growth_mb']} MB** ({s['rss_baseline_mb']} → {s['rss_peak_mb']} MB), "
            f"{s['throughput_mb_s']} MB/s |",
            f"| {d['upload_mb']} MB video by presigned POST | bytes the app read during the "
            f"upload | {d['app_bytes_read_during_upload']:,} (media bytes: "
            f"**{d['media_bytes_through_app']}**) |",
        ]
    return "\n".join(lines) + "\n"
