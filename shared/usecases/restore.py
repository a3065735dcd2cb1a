"""`restore`: bring back the runs this tool deleted in a window, found by its own tags.

A restored run keeps a `governance.restored_at` tag, so the next sweep does not delete it
again; the deletion tags are cleared.

Each experiment's deleted runs are listed in full before any is restored: restoring takes a
run out of the very result set being paged, so restoring while paging would skip runs. What
is held is one small action per run to restore, as the report holds one record per run.

Where the tracking server cannot restore a run (MLflow's `restore_run` on Azure ML), a
`Fallback` may restore it another way (azure-ai-ml's `jobs.restore`); its records say so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared import tags as T
from shared.engine.actions import Action, RestoreRun, Target
from shared.engine.executor import Executor
from shared.engine.handlers.cleanup import restore_run
from shared.engine.handlers.table import HANDLERS, Handler
from shared.engine.report import Report, carry
from shared.engine.results import RestoreUnsupported, Result
from shared.errors import RunNotFound, TrackingError, TrackingUnavailable
from shared.model import Run
from shared.settings import Settings
from shared.tracking.gateway import RunQuery, TrackingGateway
from shared.usecases.outage import Outage
from shared.usecases.sweep import experiments_in_scope

POLICY = "restore"


@dataclass(frozen=True, slots=True)
class Fallback:
    """Another way to restore a run (by id) where the tracking server cannot; `via` names it
    in the records' details (`restored_via`)."""

    via: str
    restore: Callable[[str], None]


@dataclass(frozen=True, slots=True)
class RestoredVia(Result):
    """Restored by the fallback, not by the tracking server."""

    via: str = ""

    def json_details(self) -> dict[str, str]:
        return {"restored_via": self.via}


def _with_fallback(fallback: Fallback) -> Handler:
    """`RestoreRun`'s handler, going to `fallback` once the server has said it cannot
    restore (asked once per invocation: it would say so for every run)."""
    server_refuses = threading.Event()

    def handler(gateway: TrackingGateway, action: Action) -> Result:
        assert isinstance(action, RestoreRun)
        why = "the tracking server cannot restore runs"
        if not server_refuses.is_set():
            result = restore_run(gateway, action)
            if not isinstance(result, RestoreUnsupported):
                return result
            server_refuses.set()
        run_id = action.target.run_id
        try:
            fallback.restore(run_id)
        except RunNotFound:
            return Result("skipped", f"run no longer exists ({fallback.via})")
        gateway.set_run_tags(run_id, action.set_tags, delete=action.clear_tags)
        return RestoredVia(
            reason=f"{action.reason}; restored with {fallback.via} ({why})", via=fallback.via
        )

    return handler


def deleted_at(run: Run) -> datetime | None:
    """When this tool deleted the run (its `governance.deleted_at` tag), if it did."""
    if T.DELETED_REASON not in run.tags:
        return None
    try:
        moment = datetime.fromisoformat(run.tags.get(T.DELETED_AT, ""))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def restore(
    gateway: TrackingGateway,
    settings: Settings,
    now: datetime,
    since_hours: float,
    *,
    fallback: Fallback | None = None,
) -> Report:
    """Restore every run in scope this tool deleted in the last `since_hours` hours."""
    report = Report(command="restore", dry_run=settings.dry_run)
    handlers = HANDLERS
    if fallback is not None:
        handlers = {**HANDLERS, RestoreRun: _with_fallback(fallback)}
    executor = Executor(gateway, dry_run=settings.dry_run, handlers=handlers, now=now)
    since = now - timedelta(hours=since_hours)
    unsupported: str | None = None
    # Listed up front: a failure here is not one experiment's, it fails the invocation.
    experiments = list(experiments_in_scope(gateway, settings))
    outage = Outage()
    for experiment in experiments:
        # Deleted runs carrying our tags; the window is checked on the tag's value here.
        query = RunQuery(
            experiment_id=experiment.experiment_id,
            tags_present=frozenset({T.DELETED_REASON, T.DELETED_AT}),
            deleted=True,
        )
        actions: list[RestoreRun] = []
        try:
            for run in gateway.iter_runs(query):
                moment = deleted_at(run)
                if moment is None or moment < since:
                    continue
                actions.append(
                    RestoreRun(
                        policy=POLICY,
                        target=Target.of(run, experiment.name),
                        reason=f"deleted by mlgov at {run.tags[T.DELETED_AT]}",
                        deleted_at=run.tags[T.DELETED_AT],
                        set_tags={T.RESTORED_AT: now.astimezone(UTC).isoformat(timespec="seconds")},
                        clear_tags=(
                            T.DELETED_REASON,
                            T.DELETED_AT,
                            *(k for k in run.tags if k.startswith(T.DELETION_CLAIM)),
                        ),
                    )
                )
            for action in actions:
                record = executor.apply_one(action)
                report.add(record)
                if isinstance(record.result, RestoreUnsupported):
                    unsupported = record.reason
                    break
        except (TrackingError, TrackingUnavailable) as exc:
            # Nothing of a half-listed experiment is restored: rerunning restore finishes it.
            report.add(outage.experiment_failed(experiment, "restoring deleted runs", exc))
            continue
        outage.ok(experiment)
        if unsupported is not None:
            # The server cannot restore at all: trying every other run would say it again.
            break
    # Every experiment met a 5xx or no answer: the server is down, not one experiment. What
    # was restored before is carried by the error (nothing done goes unreported).
    try:
        outage.raise_if_down(experiments)
    except TrackingUnavailable as exc:
        carry(exc, report, executor.journal)
        raise
    report.extra["restore"] = {
        "since": since.isoformat(timespec="seconds"),
        "since_hours": since_hours,
        "restored": sum(1 for r in report.records if r.done),
        "unsupported": unsupported,
    }
    return report
