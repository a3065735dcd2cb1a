"""Markdown for bench/RESULTS.md: one generated section per size and backend, between markers,
so a later run of one size replaces only its own section and hand-written text stays."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

CONTENDER_ORDER = ("baseline", "floor", "mlgov")


def _mb(value: float) -> str:
    return f"{value / 1e6:.2f}"


def _time(row: dict[str, Any]) -> str:
    mark = (
        ""
        if row["runs"] >= 3
        else f" ({'single run' if row['runs'] == 1 else str(row['runs']) + ' runs'})"
    )
    return f"{row['seconds']:.1f}{mark}"


def _sweep_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| scenario | latency | contender | time s | requests | MB read | MB sent "
        "| CPU s | peak RSS MiB | same end state |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        same = "yes" if row["same_end_state"] else "**no**: " + "; ".join(row["differences"][:2])
        if row["exit_codes"] != [0]:
            same += f" (exit {','.join(map(str, row['exit_codes']))})"
        lines.append(
            f"| {row['scenario']} | {row['latency_ms']:g} ms | {row['contender']} | {_time(row)} | "
            f"{row['requests']:,} | {_mb(row['bytes_read'])} | {_mb(row['bytes_sent'])} | "
            f"{row['cpu_seconds']:.1f} | {row['peak_rss_mib']:.0f} | {same} |"
        )
    return lines


def _ratios(rows: list[dict[str, Any]]) -> list[str]:
    by = {(r["scenario"], r["latency_ms"], r["contender"]): r for r in rows}
    lines = [
        "| scenario | latency | baseline ÷ mlgov (target ≥ 5) | mlgov ÷ floor (target ≤ 1.25) |",
        "|---|---:|---:|---:|",
    ]
    for scenario, latency in dict.fromkeys((r["scenario"], r["latency_ms"]) for r in rows):
        mlgov = by.get((scenario, latency, "mlgov"))
        base = by.get((scenario, latency, "baseline"))
        floor = by.get((scenario, latency, "floor"))
        if not mlgov:
            continue
        speedup = f"{base['seconds'] / mlgov['seconds']:.2f}" if base else "-"
        over = f"{mlgov['seconds'] / floor['seconds']:.2f}" if floor and floor["seconds"] else "-"
        lines.append(f"| {scenario} | {latency:g} ms | {speedup} | {over} |")
    return lines


def _endpoints(rows: list[dict[str, Any]]) -> list[str]:
    """Requests per endpoint (the same at every latency: taken from the first latency)."""
    lines: list[str] = []
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        first_latency = next(r["latency_ms"] for r in rows if r["scenario"] == scenario)
        mine = {
            r["contender"]: r
            for r in rows
            if r["scenario"] == scenario and r["latency_ms"] == first_latency
        }
        names = sorted({e for r in mine.values() for e in r["endpoints"]})
        lines += [
            f"Requests per endpoint, {scenario} (median run; bytes read in brackets):",
            "",
            "| endpoint | " + " | ".join(c for c in CONTENDER_ORDER if c in mine) + " |",
            "|---|" + "---:|" * len(mine),
        ]
        for name in names:
            cells = []
            for contender in CONTENDER_ORDER:
                if contender not in mine:
                    continue
                got = mine[contender]["endpoints"].get(name)
                cells.append(f"{got['requests']:,} ({_mb(got['bytes_read'])} MB)" if got else "")
            lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _events(events: dict[str, Any]) -> list[str]:
    lines = [
        f"Event path at {events['latency_ms']:g} ms per request (medians; warm = the Functions "
        "handler called again in one process, first event excluded; fresh = one `mlgov "
        "handle-event` process per event, interpreter start included):",
        "",
        "| event | warm s | warm requests (max) | fresh s | fresh requests |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in ("noop", "tagging", "promotion"):
        warm, fresh = events["warm"].get(kind), events["fresh"].get(kind)
        if not warm:
            continue
        fresh_cells = f"{fresh['seconds']:.2f} | {fresh['requests']:g}" if fresh else "- | -"
        lines.append(
            f"| {kind} | {warm['seconds']:.3f} | {warm['requests']:g} ({warm['max_requests']}) "
            f"| {fresh_cells} |"
        )
    effect = events.get("warm_effect")
    if effect:
        lines += [
            "",
            f"The warm events registered {effect['versions_registered']} model versions and "
            f"marked {effect['runs_marked']} runs compliant or noncompliant.",
        ]
    lines += ["", "Cold start (medians of 3 fresh processes, one tagging event each):", ""]
    lines += [
        "| imports | `import azure.functions` s | `import function_app` beyond it s "
        "| start to first event handled s |",
        "|---|---:|---:|---:|",
    ]
    labels = {"deployed": "lazy, deployed requirements only (mlflow-skinny)"}
    for mode in ("lazy", "eager", "deployed"):
        cold = events.get(f"cold_{mode}")
        if cold:
            lines.append(
                f"| {labels.get(mode, mode)} | {cold['import_azure_functions']:.2f} "
                f"| {cold['import_function_app']:.2f} | {cold['first_event_from_start']:.2f} |"
            )
    lines += ["", "Requests of one warm event, per endpoint:", ""]
    for kind, endpoints in events.get("warm_endpoints", {}).items():
        shown = ", ".join(f"`{k}` {v['requests']}" for k, v in endpoints.items())
        lines.append(f"- {kind}: {shown}")
    return lines


def section(result: dict[str, Any]) -> str:
    m, seed = result["machine"], result["seed"]
    load = ", ".join(f"{x:.1f}" for x in m["load"])
    after = ", ".join(f"{x:.1f}" for x in result.get("load_after", ()))
    how = (
        "GOVERNANCE_CONCURRENCY set for mlgov and the floor"
        if result["concurrency_explicit"]
        else "mlgov's default; the floor the same"
    )
    lines = [
        f"### {result['size']:,} runs, {result['backend']}",
        "",
        f"- Date: {result['date']}; command: `{result['command']}`; mlgov: {result['tree']}",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; Python {m['python']}, "
        f"MLflow {m['mlflow']}; load average at start {load}, at end {after}",
        (
            "- mlgov's sweep: only the deployed `requirements.txt` importable (`python -S`, "
            "mlflow-skinny), as the Function App runs it; the baseline and the floor in the "
            "development environment"
            if result.get("mlgov_env", "development") == "deployed"
            else "- mlgov's sweep: in the development environment (full `mlflow`, pandas)"
        ),
        f"- Server: `mlflow server`, {result['workers']} workers, {result['backend']} store; "
        f"concurrency {result['concurrency']} "
        f"({how})",
        f"- Seeded in {seed['seconds']:.1f} s: {seed['runs']:,} runs over 100 experiments, "
        f"{seed['failed_old']:,} failed past the grace period, {seed['in_window']:,} in the 24 h "
        f"window ({seed['missing_owner']} without `owner`, {seed['missing_project']} without "
        f"`project`), {seed['promotable']} above the promotion threshold with a model",
        *(
            [
                "- The proxy refused run filters on "
                + ", ".join(f"`{f}`" for f in result["refused_filters"])
                + " with `INVALID_PARAMETER_VALUE` (a server like Azure ML may be); the "
                "baseline filtered in pandas"
            ]
            if result.get("refused_filters")
            else []
        ),
        (
            f"- Times are medians of {result['reps']} runs unless marked."
            if result["reps"] > 1
            else "- Times are from a single run of each contender."
        ),
        "",
        *_sweep_table(result["rows"]),
        "",
        *_ratios(result["rows"]),
        "",
        *_endpoints(result["rows"]),
    ]
    if "events" in result:
        lines += [*_events(result["events"]), ""]
    if "installed_mib" in result:
        lines += [
            f"Installed size of `requirements.txt` (`pip install --target` into an empty folder): "
            f"{result['installed_mib']:.0f} MiB.",
            "",
        ]
    return "\n".join(lines)


def write(path: Path, result: dict[str, Any]) -> None:
    key = f"{result['size']}-{result['backend']}"
    begin, end = f"<!-- bench:{key} begin -->", f"<!-- bench:{key} end -->"
    block = f"{begin}\n{section(result)}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        anchor = "<!-- bench:generated -->"
        text = (
            text.replace(anchor, f"{anchor}\n\n{block}")
            if anchor in text
            else f"{text.rstrip()}\n\n{block}\n"
        )
    path.write_text(text, encoding="utf-8")
