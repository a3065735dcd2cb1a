"""The periodic summary, built from MLflow alone: runs, deleted runs and this tool's own tags.

Per experiment in scope: runs that ended in the window by status, governance deletions and
restores, promotions, noncompliant runs, the best run by the promotion metric, and actions
that visibly did not complete. Five searches cover every experiment together (where the
server allows); runs are streamed page by page and only counts are kept.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from shared import tags as T
from shared.engine.report import Report
from shared.errors import TrackingError, TrackingUnavailable
from shared.model import Experiment, Run
from shared.notify.notices import ExperimentActivity, FailedAction, PromotionNotice, Summary
from shared.redact import uri_host
from shared.settings import Policy, Settings
from shared.tracking.gateway import RunQuery, TrackingGateway
from shared.usecases.outage import Outage
from shared.usecases.sweep import experiments_in_scope

TOTAL_LABELS = {
    "finished": "Runs finished",
    "failed": "Runs failed",
    "killed": "Runs killed",
    "deleted": "Runs deleted by governance",
    "restored": "Runs restored",
    "promotions": "Models promoted",
    "noncompliant": "Noncompliant runs",
    "failed_actions": "Failed actions",
}
_STATUS_FIELD = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    def __contains__(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment < self.end


@dataclass(slots=True)
class _Counts:
    """One experiment's figures while its runs stream past."""

    finished: int = 0
    failed: int = 0
    killed: int = 0
    deleted: int = 0
    restored: int = 0
    promotions: int = 0
    noncompliant: int = 0
    failed_actions: int = 0
    best: Run | None = None
    best_value: float | None = None
    promoted: list[PromotionNotice] = field(default_factory=list)
    failures: list[FailedAction] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SummaryResult:
    report: Report
    summary: Summary


def tag_time(run: Run, key: str) -> datetime | None:
    """A timestamp tag this tool wrote (ISO 8601; naive means UTC), or None."""
    try:
        moment = datetime.fromisoformat(run.tags.get(key, "").strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def source_label(tracking_uri: str) -> str:
    """A name for the tracking server that carries no credential: workspace, host or store."""
    if tracking_uri.startswith("azureml://"):
        workspace = tracking_uri.rstrip("/").rsplit("/workspaces/", 1)
        return workspace[1].split("/")[0] if len(workspace) == 2 else "Azure ML"
    host = uri_host(tracking_uri)
    if host is not None and tracking_uri.lower().startswith(("http://", "https://")):
        return host
    return "local MLflow store"


def summary_metric(settings: Settings, experiments: list[Experiment]) -> str | None:
    """The metric the card names: the default policy's, else the first experiment's."""
    if settings.default_policy.promotion_metric:
        return settings.default_policy.promotion_metric
    metrics = (settings.policy_for(e.name).promotion_metric for e in experiments)
    return next((m for m in metrics if m), None)


def _better(value: float, than: float | None, goal: str) -> bool:
    return than is None or (value > than if goal == "maximize" else value < than)


def _ended(
    run: Run, counts: _Counts, experiment: Experiment, policy: Policy, metric: str | None
) -> None:
    """Count one run that ended in the window (active, or deleted since)."""
    status_field = _STATUS_FIELD.get(run.status)
    if status_field is None:
        return
    setattr(counts, status_field, getattr(counts, status_field) + 1)
    if run.tags.get(T.COMPLIANCE) == T.NONCOMPLIANT:
        counts.noncompliant += 1
    if run.deleted:
        return  # a deleted run is neither linked as the best run nor as a promotion
    value = run.metrics.get(metric) if metric else None
    if promoted := run.tags.get(T.PROMOTED_TO, ""):
        counts.promotions += 1
        if value is not None and math.isfinite(value):
            counts.promoted.append(_promotion(run, experiment, promoted, policy, value))
    if (
        run.status == "FINISHED"
        and value is not None
        and math.isfinite(value)
        and policy.promotion_metric == metric
        and _better(value, counts.best_value, policy.promotion_goal)
    ):
        counts.best, counts.best_value = run, value


def _promotion(
    run: Run, experiment: Experiment, promoted_to: str, policy: Policy, value: float
) -> PromotionNotice:
    name, _, version = promoted_to.rpartition(":")
    return PromotionNotice(
        model_name=name or promoted_to,
        version=version if name else "",
        run_id=run.run_id,
        run_name=run.run_name,
        experiment=experiment.name,
        metric=policy.promotion_metric or "",
        value=value,
        threshold=policy.promotion_threshold or 0.0,
        goal=policy.promotion_goal,
    )


def _scan(
    experiments: Sequence[Experiment],
    gateway: TrackingGateway,
    settings: Settings,
    window: Window,
    metric: str | None,
    links: dict[str, str | None],
) -> dict[str, _Counts]:
    """Counts per experiment id, from five searches over all of `experiments` together."""
    by_id = {e.experiment_id: e for e in experiments}
    policies = {e.experiment_id: settings.policy_for(e.name) for e in experiments}
    found = {exp_id: _Counts() for exp_id in by_id}
    ended = RunQuery("", finished_after=window.start, finished_before=window.end).across(by_id)
    for run in _chain(gateway.iter_runs(ended), gateway.iter_runs(_deleted(ended))):
        if run.is_terminal:
            exp_id = run.experiment_id
            _ended(run, found[exp_id], by_id[exp_id], policies[exp_id], metric)
    # Governance deletions: the deleted runs carrying this tool's tags (whenever they ended).
    gone = RunQuery("", tags_present=frozenset({T.DELETED_AT}), deleted=True).across(by_id)
    for run in gateway.iter_runs(gone):
        found[run.experiment_id].deleted += int(tag_time(run, T.DELETED_AT) in window)
    restored = RunQuery("", tags_present=frozenset({T.RESTORED_AT})).across(by_id)
    for run in gateway.iter_runs(restored):
        found[run.experiment_id].restored += int(tag_time(run, T.RESTORED_AT) in window)
    # Tagged for deletion yet still active: the deletion failed after tagging (and the
    # handler could not take the tags back). Nothing else in MLflow records a failed action.
    stuck = RunQuery("", tags_present=frozenset({T.DELETED_AT})).across(by_id)
    for run in gateway.iter_runs(stuck):
        if tag_time(run, T.DELETED_AT) in window:
            found[run.experiment_id].failures.append(
                FailedAction(
                    experiment=by_id[run.experiment_id].name,
                    run_id=run.run_id,
                    run_name=run.run_name,
                    action="delete-run",
                    reason=f"tagged for deletion at {run.tags[T.DELETED_AT]} but still active",
                    run_url=gateway.run_url(run),
                )
            )
    for exp_id, counts in found.items():
        counts.failed_actions = len(counts.failures)
        if counts.best is not None:
            links[exp_id] = gateway.run_url(counts.best)
    return found


def _scan_each(
    experiments: Sequence[Experiment],
    gateway: TrackingGateway,
    settings: Settings,
    window: Window,
    metric: str | None,
    links: dict[str, str | None],
    report: Report,
    outage: Outage,
) -> dict[str, _Counts]:
    """`_scan` over all experiments at once; should that break, over each alone, so one
    experiment's 5xx is reported and the others are counted."""
    if not experiments:
        return {}
    try:
        found = _scan(experiments, gateway, settings, window, metric, links)
    except (TrackingError, TrackingUnavailable) as exc:
        if len(experiments) == 1:
            (experiment,) = experiments
            # One experiment's 5xx is reported; only a server down for all of them raises.
            report.add(outage.experiment_failed(experiment, "summary", exc))
            counts = _Counts(failed_actions=1)
            counts.failures.append(
                FailedAction(experiment.name, "", "(whole experiment)", "summary", str(exc))
            )
            return {experiment.experiment_id: counts}
        found = {}
        for experiment in experiments:
            found.update(
                _scan_each([experiment], gateway, settings, window, metric, links, report, outage)
            )
        return found
    for experiment in experiments:
        outage.ok(experiment)
    return found


def _deleted(query: RunQuery) -> RunQuery:
    return dataclasses.replace(query, deleted=True)


def _chain(*runs: Iterator[Run]) -> Iterator[Run]:
    for each in runs:
        yield from each


def summarize(
    gateway: TrackingGateway,
    settings: Settings,
    now: datetime,
    *,
    window_hours: float | None = None,
) -> SummaryResult:
    """The summary of the `window_hours` (default GOVERNANCE_SUMMARY_WINDOW_HOURS) before now."""
    hours = window_hours if window_hours is not None else settings.summary_window_hours
    window = Window(now - timedelta(hours=hours), now)
    report = Report(command="summary", dry_run=settings.dry_run)
    experiments = list(experiments_in_scope(gateway, settings))
    metric = summary_metric(settings, experiments)
    rows: list[ExperimentActivity] = []
    promotions: list[PromotionNotice] = []
    failures: list[FailedAction] = []
    links: dict[str, str | None] = {}
    outage = Outage()
    scanned = _scan_each(experiments, gateway, settings, window, metric, links, report, outage)
    for experiment in experiments:
        counts = scanned[experiment.experiment_id]
        promotions += counts.promoted
        failures += counts.failures
        rows.append(_activity(experiment, counts, links.get(experiment.experiment_id)))
    outage.raise_if_down(experiments)
    totals = {
        label: sum(int(getattr(row, key)) for row in rows) for key, label in TOTAL_LABELS.items()
    }
    summary = Summary(
        window_start=window.start,
        window_end=window.end,
        totals=totals,
        experiments=rows,
        promotions=sorted(promotions, key=lambda p: (p.experiment, p.model_name, p.version)),
        failed_actions=failures,
        metric=metric,
        source=source_label(gateway.tracking_uri),
    )
    report.extra["summary"] = _as_json(summary)
    report.extra["experiments"] = [_row(r) for r in _active_first(rows)]
    return SummaryResult(report, summary)


def _activity(experiment: Experiment, counts: _Counts, best_url: str | None) -> ExperimentActivity:
    best = counts.best
    return ExperimentActivity(
        experiment=experiment.name,
        finished=counts.finished,
        failed=counts.failed,
        killed=counts.killed,
        deleted=counts.deleted,
        restored=counts.restored,
        promotions=counts.promotions,
        noncompliant=counts.noncompliant,
        failed_actions=counts.failed_actions,
        best_run_name=best.run_name if best else None,
        best_value=counts.best_value,
        best_run_url=best_url,
    )


def _active_first(rows: list[ExperimentActivity]) -> list[ExperimentActivity]:
    return sorted(rows, key=lambda e: (-e.activity, e.experiment))


def _row(activity: ExperimentActivity) -> dict[str, object]:
    """The table's per-experiment columns (counts only; links and names are in `summary`)."""
    data = asdict(activity)
    for key in ("best_run_name", "best_value", "best_run_url"):
        data.pop(key)
    return data


def _as_json(summary: Summary) -> dict[str, object]:
    return {
        "window_start": summary.window_start.isoformat(timespec="seconds"),
        "window_end": summary.window_end.isoformat(timespec="seconds"),
        "window_hours": (summary.window_end - summary.window_start).total_seconds() / 3600,
        "source": summary.source,
        "metric": summary.metric,
        "totals": dict(summary.totals),
        "experiments": [
            {**asdict(e), "activity": e.activity} for e in _active_first(list(summary.experiments))
        ],
        "promotions": [asdict(p) for p in summary.promotions],
        "failed_actions": [asdict(a) for a in summary.failed_actions],
    }
