"""Telling one experiment's server error from a tracking server that is down.

The gateway maps every 5xx to `TrackingUnavailable`, so one experiment whose run search
breaks looks, call by call, like an outage. A walk over the experiments in scope therefore
reports such an experiment and goes on; only when every experiment met it, and the server
answered for none, is the server taken to be down and the invocation failed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from shared.engine.actions import Target, Unable
from shared.engine.report import Record
from shared.errors import TrackingError, TrackingUnavailable
from shared.model import Experiment

log = logging.getLogger(__name__)


def scan_failed(
    experiment: Experiment, what: str, exc: Exception, *, policy: str = "sweep"
) -> Record:
    """A whole experiment could not be walked (its runs are then left alone this time)."""
    reason = f"{what} failed: {exc}"
    # About the experiment, not a run (reports have always named it only by its name).
    target = Target(run_id="", experiment_id="", experiment_name=experiment.name)
    unable = Unable(policy=policy, target=target, reason=reason, step="scan-experiment")
    return Record(unable, "failed", reason)


class Outage:
    """Per walk: the experiments the server answered for, and those that met a 5xx or no answer."""

    def __init__(self) -> None:
        self.answered: set[str] = set()
        self.unavailable: dict[str, TrackingUnavailable] = {}

    def ok(self, experiment: Experiment) -> None:
        """The server answered for this experiment (a refusal such as 403 counts: it is up)."""
        self.answered.add(experiment.name)

    def failed(self, experiment: Experiment, exc: TrackingUnavailable) -> None:
        self.unavailable.setdefault(experiment.name, exc)

    def experiment_failed(
        self,
        experiment: Experiment,
        what: str,
        exc: TrackingError | TrackingUnavailable,
        *,
        policy: str = "sweep",
    ) -> Record:
        """Note why `experiment` could not be walked; returns the record that reports it.

        A refusal (`TrackingError`) is an answer: the server is up. Only `TrackingUnavailable`
        counts towards taking the server for down.
        """
        log.warning("%s of experiment %s failed: %s", what, experiment.name, exc)
        if isinstance(exc, TrackingUnavailable):
            self.failed(experiment, exc)
        else:
            self.ok(experiment)
        return scan_failed(experiment, what, exc, policy=policy)

    def raise_if_down(self, experiments: Sequence[Experiment]) -> None:
        """Raise when every experiment in scope met `TrackingUnavailable` and none was answered.

        Called after the failures were recorded, so the log and report name each experiment.
        """
        names = {e.name for e in experiments}
        if not names or names & self.answered or not names <= self.unavailable.keys():
            return
        first = self.unavailable[experiments[0].name]
        raise TrackingUnavailable(
            f"every experiment in scope failed ({len(names)}), the tracking server is down: {first}"
        ) from first
