"""Adaptive Cards for Teams: promotions, failures, violations, cleanups, the periodic summary.

Pure functions of plain data (`shared.notify.notices`, re-exported here), never of MLflow objects.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from shared.notify.blocks import (
    LIST_PREFIX,
    MORE_SUFFIX,
    Card,
    Element,
    age,
    card,
    container,
    day_time,
    dry_run_banner,
    duration,
    encode_envelope,
    envelope,
    facts,
    heading,
    item_list,
    link,
    md,
    num,
    open_url,
    plural,
    signed,
    text,
    title,
)
from shared.notify.notices import (
    CleanupNotice,
    DeletedRun,
    EstateSummary,
    ExperimentActivity,
    FailedAction,
    FailureNotice,
    PromotionNotice,
    Summary,
    Violation,
    WorkspaceActivity,
)
from shared.notify.sizing import DEFAULT_LIMIT_BYTES, fit, size_of

__all__ = [
    "DEFAULT_LIMIT_BYTES",
    "CleanupNotice",
    "DeletedRun",
    "EstateSummary",
    "ExperimentActivity",
    "FailedAction",
    "FailureNotice",
    "PromotionNotice",
    "Summary",
    "Violation",
    "WorkspaceActivity",
    "batch_card",
    "cleanup_card",
    "encode_envelope",
    "envelope",
    "estate_summary_card",
    "failure_card",
    "fit",
    "promotion_card",
    "size_of",
    "summary_card",
    "violations_card",
]

CAP_SETTING = "GOVERNANCE_CLEANUP_MAX_RUNS"
UNKNOWN_OWNER = "(no owner recorded)"


def _head(heading_text: str, dry_run: bool) -> list[Element]:
    return [title(heading_text, dry_run=dry_run)] + ([dry_run_banner()] if dry_run else [])


def promotion_card(notice: PromotionNotice) -> Card:
    n = notice
    version = f"v{md(n.version)}" if n.version else "(new version)"
    verb = "would promote" if n.dry_run else "Model promoted"
    comparison = "≥" if n.goal != "minimize" else "≤"
    result = f"{num(n.value)} (threshold {comparison} {num(n.threshold)})"
    if n.previous_value is not None:
        was = f"v{md(n.previous_version)}: " if n.previous_version else ""
        champion = f"{was}{num(n.previous_value)} ({signed(n.value - n.previous_value)})"
    else:
        champion = "none: first version to be promoted"
    rows = [
        ("Model", f"{md(n.model_name)} {version}"),
        ("Run", link(n.run_name or n.run_id, n.run_url)),
        ("Experiment", md(n.experiment)),
        (md(n.metric), result),
        ("Previous champion", champion),
    ]
    if n.alias:
        rows.append(("Alias", f"{md(n.alias)} {'would move' if n.dry_run else 'moved'} here"))
    body = [*_head(f"{verb}: {md(n.model_name)} {version}", n.dry_run), facts(rows)]
    return card(body, open_url("Open run", n.run_url))


def failure_card(notice: FailureNotice) -> Card:
    n = notice
    status = n.status.strip().upper() or "FAILED"
    word = {"KILLED": "killed", "FAILED": "failed"}.get(status, status.lower())
    rows = [
        ("Experiment", md(n.experiment)),
        ("Run", link(n.run_name or n.run_id, n.run_url)),
        ("Run id", md(n.run_id)),
        ("Owner", md(n.owner) if n.owner else UNKNOWN_OWNER),
        ("Status", md(status)),
        ("Duration", duration(n.duration_s)),
    ]
    heading_text = f"Run {word}: {md(n.run_name or n.run_id)} in {md(n.experiment)}"
    return card([*_head(heading_text, n.dry_run), facts(rows)], open_url("Open run", n.run_url))


def violations_card(violations: Sequence[Violation], *, dry_run: bool = False) -> Card:
    """Runs missing required tags, grouped by owner (most violations first)."""
    by_owner: dict[str, list[Violation]] = {}
    for v in violations:
        by_owner.setdefault(v.owner.strip() or UNKNOWN_OWNER, []).append(v)
    owners = sorted(by_owner.items(), key=lambda kv: (kv[0] == UNKNOWN_OWNER, -len(kv[1]), kv[0]))
    body = _head(f"{plural(len(violations), 'runs')} missing required tags", dry_run)
    verb = "would be" if dry_run else "are"
    body.append(text(f"These runs {verb} tagged governance.compliance = noncompliant until fixed."))
    groups: list[Element] = []
    for i, (owner, runs) in enumerate(owners):
        rows = [
            text(
                f"{link(v.run_name or v.run_id, v.run_url)} in {md(v.experiment)}: "
                f"missing {', '.join(md(t) for t in v.missing)}",
                spacing="None",
            )
            for v in runs
        ]
        groups.append(
            container(
                [text(f"**{md(owner)}** ({len(runs)})"), item_list("runs", f"owner{i}", rows)],
                separator=i > 0,
            )
        )
    body.append(item_list("owners", "violations", groups))
    return card(body)


def cleanup_card(notice: CleanupNotice) -> Card:
    n = notice
    if n.guard_tripped:
        body = _head(f"Cleanup stopped: {n.candidates} runs matched, cap is {n.cap}", n.dry_run)
        body += [
            text(
                f"Nothing was deleted: {n.candidates} runs qualified for cleanup in one sweep, "
                f"more than {CAP_SETTING} = {n.cap}. A sudden jump usually means a policy "
                "change or an outage; check GOVERNANCE_CLEANUP_STATUSES and "
                "GOVERNANCE_CLEANUP_AFTER_HOURS first.",
                color="Attention",
            ),
            text(f"If the number is expected, raise {CAP_SETTING} above {n.candidates}."),
        ]
        return card(body)
    count = len(n.deleted)
    verb = "would be deleted" if n.dry_run else "deleted"
    body = _head(f"Cleanup: {plural(count, 'runs')} {verb}", n.dry_run)
    rows = [
        text(
            f"{link(r.run_name or r.run_id, r.run_url)} in {md(r.experiment)}: "
            f"{md(r.status)}, ended {age(r.age_hours)} ago",
            spacing="None",
        )
        for r in n.deleted
    ]
    body.append(item_list("runs", "deleted", rows))
    if count and not n.dry_run:
        body += [
            heading("To undo"),
            text(
                "Deletion is soft. This restores every run this tool deleted "
                f"in the last {n.restore_hours} hours:"
            ),
            text(f"mlgov restore --since {n.restore_hours}", monospace=True),
        ]
    return card(body)


def summary_card(summary: Summary) -> Card:
    """Totals first, then the experiments with activity (most active first), then details."""
    s = summary
    body = _head("MLflow governance summary", s.dry_run)
    hours = (s.window_end - s.window_start).total_seconds() / 3600
    scope = f"{md(s.source)} · last {hours:g} h" if s.source else f"Last {hours:g} h"
    body.append(text(scope, subtle=True))
    span = f"{day_time(s.window_start)} → {day_time(s.window_end)} UTC"
    body.append(text(span, subtle=True, spacing="None"))
    body.append(facts((md(k), str(v)) for k, v in s.totals.items()))
    active = sorted(
        (e for e in s.experiments if e.activity), key=lambda e: (-e.activity, e.experiment)
    )
    if active:
        body.append(heading("Experiments"))
        rows = [_experiment_row(e, s.metric) for e in active]
        body.append(item_list("experiments", "active", rows))
    quiet = len(s.experiments) - len(active)
    if quiet:
        body.append(text(f"{plural(quiet, 'experiments')} in scope had no activity.", subtle=True))
    if not active and not s.promotions and not s.failed_actions:
        body.append(text("No runs finished and no governance action was needed in this window."))
    if s.promotions:
        body.append(heading("Promotions"))
        body.append(item_list("promotions", "summary", [_promotion_row(p) for p in s.promotions]))
    if s.failed_actions:
        body.append(heading("Failed actions"))
        rows = [
            text(
                f"{md(a.action)} on {link(a.run_name or a.run_id, a.run_url)} "
                f"({md(a.experiment)}): {md(a.reason, 240)}",
                color="Attention",
                spacing="None",
            )
            for a in s.failed_actions
        ]
        body.append(item_list("actions", "failed", rows))
    return card(body)


def estate_summary_card(summary: EstateSummary) -> Card:
    """The estate's totals first, then one row per workspace (its link, its non-zero counts,
    or why it has none); the size guard shortens the rows, never the totals."""
    s = summary
    body = _head("MLflow governance summary", s.dry_run)
    hours = (s.window_end - s.window_start).total_seconds() / 3600
    count = len(s.workspaces)
    noun = "workspace" if count == 1 else "workspaces"
    body.append(text(f"{count} {noun} · last {hours:g} h", subtle=True))
    span = f"{day_time(s.window_start)} → {day_time(s.window_end)} UTC"
    body.append(text(span, subtle=True, spacing="None"))
    body.append(facts((md(k), str(v)) for k, v in s.totals.items()))
    if s.workspaces:
        body.append(heading("Workspaces"))
        rows = [_workspace_row(w) for w in s.workspaces]
        body.append(item_list("workspaces", "estate", rows))
    return card(body)


def _workspace_row(w: WorkspaceActivity) -> Element:
    items = [text(f"**{link(w.name, w.url)}**")]
    if w.error is not None:
        items.append(text(f"not summarised: {md(w.error, 240)}", color="Attention", spacing="None"))
    else:
        counts = [f"{v} {k.lower()}".replace(" ", "\u00a0") for k, v in w.totals.items() if v]
        items.append(text(" · ".join(counts) or "no activity", spacing="None", subtle=True))
    return container(items, spacing="Small")


def _experiment_row(e: ExperimentActivity, metric: str | None) -> Element:
    counts = [
        f"{e.finished} finished",
        f"{e.failed} failed",
        f"{e.killed} killed",
        f"{e.deleted} deleted",
        f"{e.restored} restored",
        f"{e.promotions} promoted",
        f"{e.noncompliant} noncompliant",
        plural(e.failed_actions, "failed actions"),
    ]
    # Non-breaking spaces keep "1 failed action" on one line when the row wraps.
    line = " · ".join(c.replace(" ", "\u00a0") for c in counts if not c.startswith("0 "))
    items = [text(f"**{md(e.experiment)}**"), text(line, spacing="None", subtle=True)]
    if metric and e.best_value is not None:
        best = f"best {md(metric)} {num(e.best_value)}"
        if e.best_run_name:
            best += f" ({link(e.best_run_name, e.best_run_url)})"
        items.append(text(best, spacing="None"))
    return container(items, spacing="Small")


def _promotion_row(p: PromotionNotice) -> Element:
    version = f" v{md(p.version)}" if p.version else ""
    was = f" (was {num(p.previous_value)})" if p.previous_value is not None else ""
    return text(
        f"**{md(p.model_name)}{version}** from {link(p.run_name or p.run_id, p.run_url)}: "
        f"{md(p.metric)} {num(p.value)}{was}",
        spacing="None",
    )


def batch_card(cards: Sequence[Mapping[str, Any]], *, heading_text: str | None = None) -> Card:
    """Several notices of one invocation merged into ONE card (one message, one throttle slot).

    Each notice keeps its body; their buttons are dropped (the bodies carry the same links).
    """
    if len(cards) == 1:
        return copy.deepcopy(dict(cards[0]))
    sections: list[Element] = []
    for i, sub in enumerate(cards):
        items = copy.deepcopy(list(sub.get("body", [])))
        _suffix_list_ids(items, f".n{i}")
        sections.append(container(items, separator=i > 0, spacing="Large" if i else None))
    label = heading_text or f"mlgov: {plural(len(cards), 'notices')}"
    return card([text(label, subtle=True), item_list("notices", "batch", sections)])


def _suffix_list_ids(node: Any, suffix: str) -> None:
    """Keeps element ids unique once several cards share one body (the renderer requires it)."""
    if isinstance(node, dict):
        node_id = str(node.get("id", ""))
        if node_id.startswith(LIST_PREFIX):
            base, more = (
                (node_id.removesuffix(MORE_SUFFIX), MORE_SUFFIX)
                if node_id.endswith(MORE_SUFFIX)
                else (node_id, "")
            )
            node["id"] = base + suffix + more
        for value in node.values():
            _suffix_list_ids(value, suffix)
    elif isinstance(node, list):
        for value in node:
            _suffix_list_ids(value, suffix)
