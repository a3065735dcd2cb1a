"""The sweep's cleanup phase: count candidates across the whole sweep, then delete within the cap.

Counting streams every experiment and keeps at most `cap + 1` candidates in memory. Above
the cap nothing is deleted and a `cleanup-guard` notice says which setting to raise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from shared.tracking.gateway import TrackingReader
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


def _failed(experiment: Experiment, run: Run, reason: str) -> Record:
    """The deletion could not even be decided (a lookup it needs was refused)."""
    target = Target.of(run, experiment.name)
    return Record(
        Unable(policy=NAME, target=target, reason=reason, step="delete-run"), "failed", reason
    )


def count_candidates(
    experiments: Sequence[Experiment],
    gateway: TrackingReader,
    settings: Settings,
    executor: Executor,
    now: datetime,
    report: Report,
    tally: SweepTally,
    outage: Outage | None = None,
) -> Found:
    """Walk every experiment's candidates; runs spared by their tags are reported, not counted.

    An experiment that cannot be read, whether refused or answered with a 5xx, is reported
    and skipped; `outage` learns which, so the sweep can tell a down server from one bad
    experiment.
    """
    outage = outage if outage is not None else Outage()
    found = Found()
    keep = settings.cleanup_max_runs + 1
    for experiment in experiments:
        policy = settings.policy_for(experiment.name)
        if not cleanup_policy.enabled(policy):
            continue
        counts = tally[experiment.name]
        query = cleanup_policy.candidate_query(experiment.experiment_id, policy, now)
        kept: list[Candidate] = []
        matched = 0
        try:
            for run in gateway.iter_runs(query):
                counts.examined += 1
                spared = cleanup_policy.spared_by_tag(run, policy)
                if spared is not None:
                    target = Target.of(run, experiment.name)
                    report.add(executor.apply_one(Skip(policy=NAME, target=target, reason=spared)))
                    counts.protected += 1
                    continue
                matched += 1
                if len(found.kept) + len(kept) < keep:
                    kept.append(Candidate(run, experiment, policy))
        except (TrackingError, TrackingUnavailable) as exc:
            # Its candidates are dropped: nothing is deleted in an experiment not fully read.
            report.add(outage.experiment_failed(experiment, "cleanup scan", exc, policy=NAME))
            counts.failed += 1
            continue
        outage.ok(experiment)
        found.total += matched
        found.kept.extend(kept)
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
    """Decides each kept candidate once; a parent is decided after its children."""

    def __init__(self, found: Found, gateway: TrackingReader, now: datetime) -> None:
        self.by_id = {c.run.run_id: c for c in found.kept}
        self.gateway = gateway
        self.now = now
        self.decisions: dict[str, list[Action] | Record] = {}
        # Height in the parent/child tree: leaves 0, so deleting by height deletes children first.
        self.height: dict[str, int] = {}

    def decide(self, candidate: Candidate, path: frozenset[str] = frozenset()) -> None:
        run = candidate.run
        if run.run_id in self.decisions:
            return
        try:
            facts = self._facts(candidate, path | {run.run_id})
        except TrackingError as exc:
            self.decisions[run.run_id] = _failed(
                candidate.experiment, run, f"could not check the run before deleting: {exc}"
            )
            return
        context = RunContext(now=self.now, experiment=candidate.experiment, policy=candidate.policy)
        self.decisions[run.run_id] = cleanup_policy.evaluate(run, context, facts)

    def deletes(self, run_id: str) -> bool:
        decision = self.decisions.get(run_id)
        return isinstance(decision, list) and any(isinstance(a, DeleteRun) for a in decision)

    def _facts(self, candidate: Candidate, path: frozenset[str]) -> CleanupFacts:
        run = candidate.run
        has_versions = self.gateway.run_has_model_versions(run.run_id)
        blocking: list[str] = []
        height = 0
        children = 0
        for child in self.gateway.iter_child_runs(run.experiment_id, run.run_id):
            children += 1
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
            has_model_versions=has_versions,
            blocking_children=tuple(blocking),
            child_count=children,
        )


def delete_candidates(
    found: Found,
    gateway: TrackingReader,
    executor: Executor,
    now: datetime,
    report: Report,
    tally: SweepTally,
) -> None:
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
    # Children before parents: a parent is only deleted once its children are gone.
    deletions.sort(key=lambda a: decider.height.get(a.target.run_id, 0))
    for action in deletions:
        record = executor.apply_one(action)
        report.add(record)
        counts = tally[action.target.experiment_name]
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
) -> None:
    """Cleanup over the experiments in scope: all candidates counted before any deletion."""
    found = count_candidates(experiments, gateway, settings, executor, now, report, tally, outage)
    if found.total > settings.cleanup_max_runs:
        log.warning("cleanup guard: %d candidates > cap %d", found.total, settings.cleanup_max_runs)
        report.add(executor.apply_one(guard_notice(found, settings)))
        for name, matched in found.per_experiment.items():
            tally[name].skipped_by_guard += matched
        return
    if found.kept:
        delete_candidates(found, gateway, executor, now, report, tally)
