"""The failed-run alert: one notice per failed or killed run, from its event or, when the
event was missed, from the sweep's catch-up. Both paths ask this module; nothing else decides.

A notice changes nothing in tracking: `shared.usecases.notifications` tags the run with
`governance.failure_notified_at` once the card carrying it was delivered, and that tag is what
stops a second alert. The one dry-run rule follows from it: a dry run writes no tag, so its
absence proves nothing there; a dry run therefore alerts only from the run's own event (one
event, one planned notice), and the catch-up, which sees the same run every sweep, stays silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared import tags as T
from shared.engine.actions import Action, RunFailedNotice, Skip, Target
from shared.model import Experiment, Run, normalise_status
from shared.tracking.gateway import TrackingReader

# The name failure notices have always been reported under (a value of the `--json` report).
NAME = "run-event"
FAILED_STATUSES = frozenset({"FAILED", "KILLED"})

# What brought the run here: its own event, or the sweep's catch-up over recent runs.
Trigger = Literal["event", "catch-up"]


@dataclass(frozen=True, slots=True)
class AlertFacts:
    trigger: Trigger
    # Whether a delivered notice gets recorded on the run (not in a dry run: nothing is).
    marks_recorded: bool
    run_url: str | None = None
    # An earlier event of the same batch already announced this run (events only).
    in_batch: bool = False


def failed(run: Run) -> bool:
    return normalise_status(run.status) in FAILED_STATUSES


def read_facts(
    run: Run,
    reader: TrackingReader,
    *,
    trigger: Trigger,
    marks_recorded: bool,
    in_batch: bool = False,
) -> AlertFacts | None:
    """None for a run that did not fail (nothing to look up)."""
    if not failed(run):
        return None
    return AlertFacts(trigger, marks_recorded, reader.run_url(run), in_batch)


def notice(run: Run, experiment: Experiment, run_url: str | None) -> RunFailedNotice:
    """What the failure card needs; the duration is None when the server recorded no start."""
    duration = None
    if run.start_time is not None and run.end_time is not None:
        duration = (run.end_time - run.start_time).total_seconds()
    return RunFailedNotice(
        policy=NAME,
        target=Target.of(run, experiment.name),
        reason=f"run ended {run.status}",
        status=run.status,
        duration_s=duration,
        run_url=run_url,
    )


def evaluate(run: Run, experiment: Experiment, facts: AlertFacts | None) -> list[Action]:
    """A notice, a skip saying why not (events only), or nothing."""
    if facts is None:
        return []
    target = Target.of(run, experiment.name)
    notified = run.tags.get(T.FAILURE_NOTIFIED_AT)
    if facts.trigger == "catch-up":
        # The sweep reports only the alerts it sends: it re-reads the same runs every sweep.
        if notified is not None or not facts.marks_recorded:
            return []
        return [notice(run, experiment, facts.run_url)]
    if notified is not None:
        return [Skip(policy=NAME, target=target, reason=f"failure already notified at {notified}")]
    if facts.in_batch:
        return [Skip(policy=NAME, target=target, reason="failure notice already in this batch")]
    return [notice(run, experiment, facts.run_url)]
