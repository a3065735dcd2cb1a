"""The sweep: every experiment in scope; cleanup first, then the run policies over recent runs.

Runs are streamed page by page, so memory does not grow with the number of runs. One
experiment that fails (refused, or a 5xx on one of its pages) is reported and the others go
on; a server that is down raises `TrackingUnavailable` so the invocation fails: when the
experiments cannot be listed, or when every experiment in scope met `TrackingUnavailable`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from shared.engine.actions import Action, RegisterModelVersion
from shared.engine.executor import Executor
from shared.engine.report import Record, Report
from shared.errors import TrackingError, TrackingUnavailable
from shared.model import Experiment
from shared.policies import alert_failed_runs as alert
from shared.policies.promote_to_registry import best_per_model
from shared.settings import Settings
from shared.tracking.gateway import RunQuery, TrackingGateway, TrackingReader
from shared.usecases.cleanup import cleanup
from shared.usecases.govern import govern_run
from shared.usecases.outage import Outage
from shared.usecases.tally import Progress as Progress
from shared.usecases.tally import SweepTally


def experiments_in_scope(gateway: TrackingReader, settings: Settings) -> Iterator[Experiment]:
    for experiment in gateway.iter_experiments():
        if settings.in_scope(experiment.name):
            yield experiment


def catch_up(
    experiment: Experiment,
    gateway: TrackingReader,
    settings: Settings,
    executor: Executor,
    now: datetime,
    progress: Progress | None = None,
    *,
    defer: Callable[[Action], bool] | None = None,
) -> Iterator[Record]:
    """Run policies over runs of one experiment that finished within the catch-up window.

    A failed or killed run whose failure notice never went out (its event was missed, or a
    canceled run sent none) gets one here, by the same policy as the event path
    (`shared.policies.alert_failed_runs`, which also says why a dry run sends none here).
    """
    query = RunQuery(
        experiment_id=experiment.experiment_id,
        finished_after=now - timedelta(hours=settings.catchup_hours),
    )
    examined = 0
    for run in gateway.iter_runs(query):
        if not run.is_terminal:
            continue
        examined += 1
        yield from govern_run(run, experiment, settings, executor, now, defer=defer)
        facts = alert.read_facts(
            run, gateway, trigger="catch-up", marks_recorded=not executor.dry_run
        )
        for action in alert.evaluate(run, experiment, facts):
            yield executor.apply_one(action)
        if progress is not None:
            progress(experiment.name, examined)


def sweep(
    gateway: TrackingGateway,
    settings: Settings,
    now: datetime,
    *,
    progress: Progress | None = None,
) -> Report:
    report = Report(command="sweep", dry_run=settings.dry_run)
    executor = Executor(gateway, dry_run=settings.dry_run)
    held: list[Action] = []

    def hold(action: Action) -> bool:
        # Promotions wait for the whole catch-up: a hyperparameter search that finished many
        # trials gets one new version (its best), not one per trial that beat the champion.
        if isinstance(action, RegisterModelVersion):
            held.append(action)
            return True
        return False

    # Listed once per sweep (so new experiments are picked up); small next to their runs.
    # A failure here is not one experiment's: it propagates and fails the invocation.
    experiments = list(experiments_in_scope(gateway, settings))
    outage = Outage()
    tally = SweepTally()
    for experiment in experiments:
        tally.include(experiment.name)  # every experiment in scope gets a row, even an idle one
    # Cleanup first: its candidates are counted across every experiment before any deletion.
    cleanup(experiments, gateway, settings, executor, now, report, tally, outage)
    for experiment in experiments:
        try:
            for record in catch_up(
                experiment, gateway, settings, executor, now, tally.progress(progress), defer=hold
            ):
                report.add(record)
                tally.count(record)
        except (TrackingError, TrackingUnavailable) as exc:
            report.add(outage.experiment_failed(experiment, "catch-up", exc))
            tally.count(report.records[-1])
            continue
        outage.ok(experiment)
    # Every experiment met a 5xx or no answer: the server is down, not one experiment.
    outage.raise_if_down(experiments)
    for action in best_per_model(held):
        report.add(executor.apply_one(action))
        tally.count(report.records[-1])
    report.extra["experiments"] = tally.rows()
    return report
