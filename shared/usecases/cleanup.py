"""The sweep's cleanup phase: count candidates across the whole sweep, then delete within the cap.

Counting streams every experiment and keeps at most `cap + 1` candidates in memory. Above
the cap nothing is deleted and a `cleanup-guard` notice says which setting to raise.

Where the server cannot filter by status and time, a scan reads every run of its experiments:
the runs `wanted` among them are kept (`Found.heard`) for the catch-up not to read them again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from shared.engine.actions import Action, DeleteRun, GuardNotice, Skip, Target, Unable
from shared.engine.executor import Executor
from shared.engine.report import Record, Report
from shared.errors import TrackingError, TrackingUnavailable
from shared.model import Experiment, Run
from shared.policies import cleanup_failed_runs as cleanup_policy
from shared.policies.base import RunContext
from shared.policies.cleanup_failed_runs import NAME, CleanupFacts
from shared.settings import Policy, Settings, env_name
from shared.tracking.gateway import Overheard, TrackingReader
from shared.usecases.outage import Outage
from shared.usecases.tally import SweepTally

log = logging.getLogger(__name__)

GUARD_EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class Candidate:
    run: Run
    experiment: Experiment
    policy: Policy


@dataclass(slots=True)
class Found:
    """Candidates of one sweep: the count, and the first `cap + 1` of them."""

    total: int = 0
    kept: list[Candidate] = field(default_factory=list)
    per_experiment: dict[str, int] = field(default_factory=dict)
    # The `wanted` runs of the scans that read every run of their experiments (the server
    # filtered nothing), scan by scan, each in its search's order; and those experiments.
    heard: list[list[Run]] = field(default_factory=list)
    heard_from: set[str] = field(default_factory=set)


def _failed(experiment: Experiment, run: Run, reason: str) -> Record:
    """The deletion could not even be decided (a lookup it needs was refused)."""
    target = Target.of(run, experiment.name)
    return Record(
        Unable(policy=NAME, target=target, reason=reason, step="delete-run"), "failed", reason
    )


@dataclass(slots=True)
class _Scan:
    """One search's findings, kept aside until it ends (a search that breaks halfway
    leaves nothing behind: its experiments are then scanned one at a time)."""

    spared: list[Record] = field(default_factory=list)
    kept: list[Candidate] = field(default_factory=list)
    examined: Counter[str] = field(default_factory=Counter)
    matched: Counter[str] = field(default_factory=Counter)
    wanted: Callable[[Run], bool] | None = None
    heard: dict[str, Run] = field(default_factory=dict)  # by id: a run read twice is kept once
    whole: bool = False  # every run of the group's experiments was read (and heard)

    def hear(self, run: Run) -> bool:
        if self.wanted is None or not self.wanted(run):
            return False
        self.heard.setdefault(run.run_id, run)
        return True


def _groups(
    experiments: Sequence[Experiment], settings: Settings, now: datetime
) -> list[list[tuple[Experiment, Policy]]]:
    """The experiments cleanup covers, grouped by the candidate filter they share: one
    search per group, however many experiments it holds (one group by default)."""
    groups: dict[tuple[frozenset[str], datetime], list[tuple[Experiment, Policy]]] = {}
    for experiment in experiments:
        policy = settings.policy_for(experiment.name)
        if cleanup_policy.enabled(policy):
            key = (policy.cleanup_statuses, cleanup_policy.cutoff(policy, now))
            groups.setdefault(key, []).append((experiment, policy))
    return list(groups.values())


def _scan(
    group: Sequence[tuple[Experiment, Policy]],
    gateway: TrackingReader,
    executor: Executor,
    now: datetime,
    room: int,
    wanted: Callable[[Run], bool] | None = None,
) -> _Scan:
    """Walk one group's candidates in one search; keep at most `room` of them, and the runs
    `wanted` among all it reads where the server filters nothing."""
    by_id = {e.experiment_id: (e, p) for e, p in group}
    first = group[0]
    query = cleanup_policy.candidate_query(first[0].experiment_id, first[1], now)
    scan = _Scan(wanted=wanted)
    tap = Overheard(scan.hear)
    for run in gateway.iter_runs(replace(query, overhear=tap).across(by_id)):
        experiment, policy = by_id[run.experiment_id]
        scan.examined[experiment.name] += 1
        spared = cleanup_policy.spared_by_tag(run, policy)
        if spared is not None:
            target = Target.of(run, experiment.name)
            scan.spared.append(executor.apply_one(Skip(policy=NAME, target=target, reason=spared)))
            continue
        scan.matched[experiment.name] += 1
        if len(scan.kept) < room:
            scan.kept.append(Candidate(run, experiment, policy))
    scan.whole = tap.whole and wanted is not None
    return scan


def count_candidates(
    experiments: Sequence[Experiment],
    gateway: TrackingReader,
    settings: Settings,
    executor: Executor,
    now: datetime,
    report: Report,
    tally: SweepTally,
    outage: Outage | None = None,
    wanted: Callable[[Run], bool] | None = None,
) -> Found:
    """Walk every experiment's candidates; runs spared by their tags are reported, not counted.

    An experiment that cannot be read, whether refused or answered with a 5xx, is reported
    and skipped; `outage` learns which, so the sweep can tell a down server from one bad
    experiment. Experiments are searched together; when such a search breaks, each of its
    experiments is searched alone, so that one bad experiment does not hide the others.
    """
    outage = outage if outage is not None else Outage()
    found = Found()
    keep = settings.cleanup_max_runs + 1
    pending = _groups(experiments, settings, now)
    while pending:
        group = pending.pop(0)
        try:
            scan = _scan(group, gateway, executor, now, keep - len(found.kept), wanted)
        except (TrackingError, TrackingUnavailable) as exc:
            if len(group) > 1:
                log.warning(
                    "cleanup scan of %d experiments failed (%s): one by one", len(group), exc
                )
                pending[:0] = [[member] for member in group]
                continue
            # Its candidates are dropped: nothing is deleted in an experiment not fully read.
            experiment = group[0][0]
            report.add(outage.experiment_failed(experiment, "cleanup scan", exc, policy=NAME))
            tally[experiment.name].failed += 1
            continue
        report.extend(scan.spared)
        found.kept.extend(scan.kept)
        if scan.whole:
            found.heard.append(list(scan.heard.values()))
            found.heard_from.update(e.experiment_id for e, _ in group)
        for experiment, _ in group:
            outage.ok(experiment)
            counts, matched = tally[experiment.name], scan.matched[experiment.name]
            counts.examined += scan.examined[experiment.name]
            counts.protected += scan.examined[experiment.name] - matched
            found.total += matched
            if matched:
                found.per_experiment[experiment.name] = matched
    return found


def guard_notice(found: Found, settings: Settings) -> GuardNotice:
    cap = settings.cleanup_max_runs
    setting = cleanup_policy.MAX_RUNS_SETTING
    examples = tuple(
        f"{c.experiment.name}/{c.run.run_name} ({c.run.run_id[:8]})"
        for c in found.kept[:GUARD_EXAMPLES]
    )
    names = sorted(found.per_experiment)
    where = ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
    reason = (
        f"{found.total} runs qualify for cleanup, more than {setting}={cap}: none deleted. "
        f"Check {env_name('cleanup_statuses')}, {env_name('cleanup_after_hours')} and "
        f"GOVERNANCE_EXPERIMENTS; if the runs should go, raise {setting} to {found.total}"
    )
    return GuardNotice(
        policy=NAME,
        target=Target(run_id="", experiment_id="", experiment_name=where),
        reason=reason,
        candidates=found.total,
        cap=cap,
        setting=setting,
        examples=examples,
        per_experiment=tuple((n, found.per_experiment[n]) for n in names),
    )


class _Decider:
    """Decides each kept candidate once; a parent is decided after its children.

    The lookups every decision needs (registered versions, children) are made for all the
    candidates at once, in a request or two, not one per candidate. (The versions are not
    asked in parts on the pool: on a server that filters versions by no run list, each part
    would walk every version of the registry, where one call walks them once.)
    """

    def __init__(self, found: Found, gateway: TrackingReader, now: datetime) -> None:
        self.by_id = {c.run.run_id: c for c in found.kept}
        self.now = now
        self.decisions: dict[str, list[Action] | Record] = {}
        # Height in the parent/child tree: leaves 0, so deleting by height deletes children first.
        self.height: dict[str, int] = {}
        self.lookup_failed: TrackingError | None = None
        self.with_versions: frozenset[str] = frozenset()
        self.children: dict[str, list[Run]] = {}
        experiments = sorted({c.run.experiment_id for c in found.kept})
        try:
            self.with_versions = gateway.runs_with_model_versions(self.by_id)
            self.children = gateway.child_runs_of(experiments, self.by_id)
        except TrackingError as exc:
            self.lookup_failed = exc

    def decide(self, candidate: Candidate, path: frozenset[str] = frozenset()) -> None:
        run = candidate.run
        if run.run_id in self.decisions:
            return
        if self.lookup_failed is not None:
            self.decisions[run.run_id] = _failed(
                candidate.experiment,
                run,
                f"could not check the run before deleting: {self.lookup_failed}",
            )
            return
        facts = self._facts(candidate, path | {run.run_id})
        context = RunContext(now=self.now, experiment=candidate.experiment, policy=candidate.policy)
        self.decisions[run.run_id] = cleanup_policy.evaluate(run, context, facts)

    def deletes(self, run_id: str) -> bool:
        decision = self.decisions.get(run_id)
        return isinstance(decision, list) and any(isinstance(a, DeleteRun) for a in decision)

    def _facts(self, candidate: Candidate, path: frozenset[str]) -> CleanupFacts:
        run = candidate.run
        blocking: list[str] = []
        height = 0
        children = self.children.get(run.run_id, [])
        for child in children:
            label = f"{child.run_name} ({child.run_id[:8]})"
            found = self.by_id.get(child.run_id)
            if found is None or child.run_id in path:
                why = cleanup_policy.not_candidate(
                    child, candidate.policy, self.now
                ) or cleanup_policy.spared_by_tag(child, candidate.policy)
                blocking.append(f"{label}: {why or 'not a cleanup candidate in this sweep'}")
                continue
            self.decide(found, path)
            if not self.deletes(child.run_id):
                decision = self.decisions[child.run_id]
                why = decision.reason if isinstance(decision, Record) else decision[0].reason
                blocking.append(f"{label}: {why}")
                continue
            height = max(height, self.height.get(child.run_id, 0) + 1)
        self.height[run.run_id] = height
        return CleanupFacts(
            has_model_versions=run.run_id in self.with_versions,
            blocking_children=tuple(blocking),
            child_count=len(children),
        )


def delete_candidates(
    found: Found,
    gateway: TrackingReader,
    executor: Executor,
    now: datetime,
    report: Report,
    tally: SweepTally,
) -> None:
    """Decide every kept candidate, then delete by height: all leaves (concurrently, on the
    executor's pool), then their parents, and so on, so a child always goes first. Records
    come in that order, each level in decision order, however the pool finishes."""
    decider = _Decider(found, gateway, now)
    for candidate in found.kept:
        decider.decide(candidate)
    deletions: list[DeleteRun] = []
    for candidate in found.kept:
        counts = tally[candidate.experiment.name]
        decision = decider.decisions[candidate.run.run_id]
        if isinstance(decision, Record):
            report.add(decision)
            counts.failed += 1
            continue
        for action in decision:
            if isinstance(action, DeleteRun):
                deletions.append(action)
            else:
                report.add(executor.apply_one(action))
                counts.protected += 1
    levels: dict[int, list[DeleteRun]] = {}
    for action in deletions:
        levels.setdefault(decider.height.get(action.target.run_id, 0), []).append(action)
    for height in sorted(levels):
        # A level starts only once the one below it has ended (the pool is joined between).
        for record in executor.apply_all(levels[height]):
            report.add(record)
            counts = tally[record.decision.target.experiment_name]
            if record.done:
                counts.deleted += 1
            elif record.outcome == "failed":
                counts.failed += 1


def cleanup(
    experiments: Sequence[Experiment],
    gateway: TrackingReader,
    settings: Settings,
    executor: Executor,
    now: datetime,
    report: Report,
    tally: SweepTally,
    outage: Outage | None = None,
    wanted: Callable[[Run], bool] | None = None,
) -> Found:
    """Cleanup over the experiments in scope: all candidates counted before any deletion."""
    found = count_candidates(
        experiments, gateway, settings, executor, now, report, tally, outage, wanted
    )
    if found.total > settings.cleanup_max_runs:
        log.warning("cleanup guard: %d candidates > cap %d", found.total, settings.cleanup_max_runs)
        report.add(executor.apply_one(guard_notice(found, settings)))
        for name, matched in found.per_experiment.items():
            tally[name].skipped_by_guard += matched
        return found
    if found.kept:
        delete_candidates(found, gateway, executor, now, report, tally)
    return found
