"""The sweep: every experiment in scope; cleanup first, then the run policies over recent runs.

Each phase searches all experiments in scope at once where the server allows (requests do
not grow with the experiments), and a phase no enabled policy needs reads nothing. Runs are
streamed page by page, so memory does not grow with the number of runs. Where the server
cannot filter runs by status and time (Azure ML may refuse them), the cleanup scan reads
every run of its experiments anyway: the catch-up then takes its runs from that walk
(`Heard`) instead of reading the whole workspace a second time. One
experiment that fails (refused, or a 5xx on one of its pages) is reported and the others go
on; a server that is down raises `TrackingUnavailable` so the invocation fails: when the
experiments cannot be listed, or when every experiment in scope met `TrackingUnavailable`.
The error then carries the report of what was done before (`shared.engine.report.carry`):
every deletion, tag and promotion applied.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from shared.engine.actions import Action, DeleteRun, RegisterModelVersion
from shared.engine.executor import Executor
from shared.engine.report import Record, Report, carry
from shared.engine.throttle import Throttle
from shared.errors import TrackingError, TrackingUnavailable
from shared.model import Experiment, Run
from shared.policies import RUN_POLICIES
from shared.policies import alert_failed_runs as alert
from shared.policies.promote_to_registry import best_per_model
from shared.settings import Settings
from shared.tracking.gateway import RunQuery, TrackingGateway, TrackingReader
from shared.usecases.cleanup import Found, cleanup
from shared.usecases.govern import govern_run
from shared.usecases.outage import Outage
from shared.usecases.tally import Progress as Progress
from shared.usecases.tally import SweepTally

# Runs governed together on the executor's pool (one search page's worth at most).
CATCH_UP_PAGE = 64
# Catch-up runs kept from the cleanup scan's walk (`Heard`), ~1 KB each as the benchmark's
# runs; beyond it the catch-up reads its runs with its own search, as where the server filters.
HEARD_MAX = 5_000


def experiments_in_scope(gateway: TrackingReader, settings: Settings) -> Iterator[Experiment]:
    for experiment in gateway.iter_experiments():
        if settings.in_scope(experiment.name):
            yield experiment


def catch_up_query(
    experiments: Sequence[Experiment], settings: Settings, dry_run: bool, now: datetime
) -> RunQuery | None:
    """What the catch-up reads over `experiments`: the runs that ended within the window, or
    only the failed ones when no run policy is on; None when it reads nothing."""
    query = RunQuery("", finished_after=now - timedelta(hours=settings.catchup_hours))
    if not any(_run_policies_on(settings, e) for e in experiments):
        if dry_run or not experiments:
            return None  # nothing to decide: no run policy, and a dry run sends no catch-up alert
        query = dataclasses.replace(query, statuses=alert.FAILED_STATUSES)
    return query.across(e.experiment_id for e in experiments)


def _newest_first(run: Run) -> tuple[float, str]:
    # A search's order (`RunQuery`): newest start first, then the run id, as MLflow breaks
    # ties (`_get_orderby_clauses` in mlflow/store/tracking/sqlalchemy_store.py).
    start = -run.start_time.timestamp() if run.start_time is not None else math.inf
    return start, run.run_id


class Heard:
    """The catch-up's runs as the cleanup scan read them where the server filtered nothing.

    A server that refused status and time filters makes every search read every run of its
    experiments: the cleanup scan keeps those the catch-up's `query` wants (`wanted`), so
    that the catch-up does not read the whole workspace again. Memory: only the runs that
    ended within GOVERNANCE_CATCHUP_HOURS (or failed ones), a few % of a workspace, and at
    most `HEARD_MAX` (beyond it none is kept and the catch-up searches as before); never
    the whole workspace. `covered`: the experiments whose every run the scans read.
    """

    def __init__(self, query: RunQuery) -> None:
        self.query = query
        self.runs: list[Run] = []
        self.covered: frozenset[str] = frozenset()
        self._experiments = frozenset(query.experiment_ids)
        self._held = 0

    def wanted(self, run: Run) -> bool:
        if self._held > HEARD_MAX or run.experiment_id not in self._experiments:
            return False
        if not (run.is_terminal and self.query.matches(run)):
            return False
        self._held += 1
        return self._held <= HEARD_MAX

    def settle(self, found: Found, cleanup: Sequence[Record], gateway: TrackingReader) -> None:
        """Take the scans' runs as the cleanup left them (the catch-up's own search comes
        after the cleanup): a run it deleted is gone; one whose deletion was tried but did not
        happen may have changed since the scan (tagged, claimed, its status): read again."""
        if self._held > HEARD_MAX:
            return
        runs = [run for scan in found.heard for run in scan]
        if len(found.heard) > 1:
            runs.sort(key=_newest_first)  # several searches: in the order of one search
        tried = {r.run_id: r.outcome for r in cleanup if isinstance(r.decision, DeleteRun)}
        stale = {r.run_id for r in runs if tried.get(r.run_id) in ("skipped", "failed")}
        covered = set(found.heard_from)
        fresh: dict[str, Run] = {}
        if stale:
            experiments = {r.experiment_id for r in runs if r.run_id in stale}
            query = dataclasses.replace(self.query, run_ids=frozenset(stale))
            try:
                fresh = {r.run_id: r for r in gateway.iter_runs(query.across(experiments))}
            except (TrackingError, TrackingUnavailable):
                covered -= experiments  # the catch-up searches these itself, as before
        for run in runs:
            if run.experiment_id not in covered or tried.get(run.run_id) == "applied":
                continue
            current = fresh.get(run.run_id) if run.run_id in stale else run
            if current is not None:  # None: deleted or gone meanwhile, or out of the window
                self.runs.append(current)
        self.covered = frozenset(covered)

    def walk(self, query: RunQuery, gateway: TrackingReader) -> Iterator[Run]:
        """`gateway.iter_runs(query)` for a catch-up's `query`, the covered experiments read
        from here: in the order one search would give them where the server searches several
        experiments at once (the scan's order when it covered them all)."""
        ids = set(query.experiment_ids)
        here = [r for r in self.runs if r.experiment_id in ids and query.matches(r)]
        rest = [i for i in query.experiment_ids if i not in self.covered]
        if not rest:
            yield from here
        elif not here:
            yield from gateway.iter_runs(query.across(rest))
        else:
            yield from heapq.merge(here, gateway.iter_runs(query.across(rest)), key=_newest_first)


def catch_up(
    experiments: Sequence[Experiment],
    gateway: TrackingReader,
    settings: Settings,
    executor: Executor,
    now: datetime,
    progress: Progress | None = None,
    *,
    held: list[Action] | None = None,
    done: set[str] | None = None,
    heard: Heard | None = None,
) -> Iterator[Record]:
    """Run policies over the runs that finished within the catch-up window, of every
    experiment in `experiments`, in one search (not one per experiment).

    A failed or killed run whose failure notice never went out (its event was missed, or a
    canceled run sent none) gets one here, by the same policy as the event path
    (`shared.policies.alert_failed_runs`, which also says why a dry run sends none here).
    With no run policy on anywhere, only failed runs are read, and a dry run reads none.
    Runs of a page are governed concurrently on the executor's pool; their records come in
    the order the search gave the runs. With `held`, promotions are kept there (in that
    order) instead of applied. `done` collects the runs governed (a retry skips them).
    With `heard`, the runs of the experiments it covers come from the cleanup scan's walk.
    """
    done = done if done is not None else set()
    by_id = {e.experiment_id: e for e in experiments}
    query = catch_up_query(experiments, settings, executor.dry_run, now)
    if query is None:
        return
    examined: Counter[str] = Counter()

    def govern(run: Run) -> tuple[list[Record], list[Action]]:
        kept: list[Action] = []

        def hold(action: Action) -> bool:
            if held is not None and isinstance(action, RegisterModelVersion):
                kept.append(action)
                return True
            return False

        experiment = by_id[run.experiment_id]
        records = govern_run(run, experiment, settings, executor, now, defer=hold)
        facts = alert.read_facts(
            run, gateway, trigger="catch-up", marks_recorded=not executor.dry_run
        )
        records.extend(executor.apply_one(a) for a in alert.evaluate(run, experiment, facts))
        return records, kept

    page: list[Run] = []
    runs = heard.walk(query, gateway) if heard is not None else gateway.iter_runs(query)
    while True:
        run = next(runs, None)
        if run is not None and run.is_terminal and run.run_id not in done:
            page.append(run)
        if page and (run is None or len(page) >= CATCH_UP_PAGE):
            for each, (records, kept) in zip(page, executor.map(govern, page), strict=True):
                done.add(each.run_id)
                if held is not None:
                    held.extend(kept)
                yield from records
                name = by_id[each.experiment_id].name
                examined[name] += 1
                if progress is not None:
                    progress(name, examined[name])
            page = []
        if run is None:
            return


def _run_policies_on(settings: Settings, experiment: Experiment) -> bool:
    policy = settings.policy_for(experiment.name)
    return any(p.enabled(policy) for p in RUN_POLICIES)


def _catch_up_all(
    experiments: Sequence[Experiment],
    gateway: TrackingReader,
    settings: Settings,
    executor: Executor,
    now: datetime,
    report: Report,
    tally: SweepTally,
    outage: Outage,
    progress: Progress | None,
    held: list[Action],
    heard: Heard | None = None,
) -> None:
    """The catch-up over every experiment at once; when that search breaks, each experiment
    alone (the runs already governed are not governed twice), so one bad experiment is
    reported and the others go on."""
    done: set[str] = set()
    pending = [list(experiments)] if experiments else []
    while pending:
        group = pending.pop(0)
        try:
            for record in catch_up(
                group, gateway, settings, executor, now, progress, held=held, done=done, heard=heard
            ):
                report.add(record)
                tally.count(record)
        except (TrackingError, TrackingUnavailable) as exc:
            if len(group) > 1:
                pending[:0] = [[e] for e in group]
                continue
            report.add(outage.experiment_failed(group[0], "catch-up", exc))
            tally.count(report.records[-1])
            continue
        for experiment in group:
            outage.ok(experiment)


def sweep(
    gateway: TrackingGateway,
    settings: Settings,
    now: datetime,
    *,
    progress: Progress | None = None,
    throttle: Throttle | None = None,
) -> Report:
    report = Report(command="sweep", dry_run=settings.dry_run)
    executor = Executor(
        gateway,
        dry_run=settings.dry_run,
        concurrency=settings.concurrency,
        throttle=throttle or Throttle(),
        now=now,
    )
    tally = SweepTally()
    try:
        _sweep(gateway, settings, now, executor, report, tally, progress)
    except TrackingUnavailable as exc:
        # Whatever was applied before the server went away is reported, logged and announced.
        for record in carry(exc, report, executor.journal):
            tally.count_carried(record)
        report.extra["experiments"] = tally.rows()
        raise
    return report


def _sweep(
    gateway: TrackingGateway,
    settings: Settings,
    now: datetime,
    executor: Executor,
    report: Report,
    tally: SweepTally,
    progress: Progress | None,
) -> None:
    # Promotions wait for the whole catch-up: a hyperparameter search that finished many
    # trials gets one new version (its best), not one per trial that beat the champion.
    held: list[Action] = []

    # Listed once per sweep (so new experiments are picked up); small next to their runs.
    # A failure here is not one experiment's: it propagates and fails the invocation.
    experiments = list(experiments_in_scope(gateway, settings))
    outage = Outage()
    for experiment in experiments:
        tally.include(experiment.name)  # every experiment in scope gets a row, even an idle one
    # Cleanup first: its candidates are counted across every experiment before any deletion.
    # Where the server filters nothing, its walk also keeps the catch-up's runs (`Heard`).
    query = catch_up_query(experiments, settings, executor.dry_run, now)
    heard = Heard(query) if query is not None else None
    wanted = heard.wanted if heard is not None else None
    start = len(report.records)
    found = cleanup(experiments, gateway, settings, executor, now, report, tally, outage, wanted)
    if heard is not None:
        heard.settle(found, report.records[start:], gateway)
    _catch_up_all(
        experiments,
        gateway,
        settings,
        executor,
        now,
        report,
        tally,
        outage,
        tally.progress(progress),
        held,
        heard,
    )
    # Every experiment met a 5xx or no answer: the server is down, not one experiment.
    outage.raise_if_down(experiments)
    for record in executor.apply_all(best_per_model(held)):
        report.add(record)
        tally.count(record)
    report.extra["experiments"] = tally.rows()
