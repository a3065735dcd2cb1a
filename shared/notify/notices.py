"""The plain data the card builders take: one frozen dataclass per kind of notice.

Callers map MLflow entities and reports to these; cards never see MLflow objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class PromotionNotice:
    """A run promoted (or, in dry run, that would be) to a registered model version."""

    model_name: str
    version: str  # "" when not known yet (dry run)
    run_id: str
    run_name: str
    experiment: str
    metric: str
    value: float
    threshold: float
    goal: str  # "maximize" | "minimize"
    previous_value: float | None = None
    previous_version: str | None = None
    run_url: str | None = None
    dry_run: bool = False
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class FailureNotice:
    experiment: str
    run_id: str
    run_name: str
    owner: str
    status: str
    duration_s: float | None = None
    run_url: str | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Violation:
    """A finished run missing required tags."""

    experiment: str
    run_id: str
    run_name: str
    owner: str
    missing: tuple[str, ...]
    run_url: str | None = None


@dataclass(frozen=True, slots=True)
class DeletedRun:
    experiment: str
    run_id: str
    run_name: str
    status: str
    age_hours: float
    run_url: str | None = None


@dataclass(frozen=True, slots=True)
class CleanupNotice:
    """One sweep's cleanup: the runs deleted, or the guard that stopped it."""

    deleted: Sequence[DeletedRun]
    guard_tripped: bool
    candidates: int
    cap: int
    dry_run: bool = False
    restore_hours: int = 24


@dataclass(frozen=True, slots=True)
class FailedAction:
    experiment: str
    run_id: str
    run_name: str
    action: str
    reason: str
    run_url: str | None = None


@dataclass(frozen=True, slots=True)
class ExperimentActivity:
    """One experiment's row of the summary; `best_*` is by the promotion metric."""

    experiment: str
    finished: int = 0
    failed: int = 0
    killed: int = 0
    deleted: int = 0
    restored: int = 0
    promotions: int = 0
    noncompliant: int = 0
    failed_actions: int = 0
    best_run_name: str | None = None
    best_value: float | None = None
    best_run_url: str | None = None

    @property
    def activity(self) -> int:
        return (
            self.finished
            + self.failed
            + self.killed
            + self.deleted
            + self.restored
            + self.promotions
            + self.noncompliant
            + self.failed_actions
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """The periodic digest. `totals` is shown first, in its own order (keys are labels)."""

    window_start: datetime
    window_end: datetime
    totals: Mapping[str, int]
    experiments: Sequence[ExperimentActivity] = ()
    promotions: Sequence[PromotionNotice] = ()
    failed_actions: Sequence[FailedAction] = ()
    metric: str | None = None
    source: str | None = None  # a label for the tracking server, never a URI with credentials
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class WorkspaceActivity:
    """One workspace's row of the estate summary: its totals (the labels of `Summary.totals`),
    a link to it, or why it could not be summarised (`error`; its totals are then empty)."""

    name: str
    totals: Mapping[str, int]
    url: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class EstateSummary:
    """The digest of every governed workspace: `totals` (the rows added up) first, then a row
    per workspace, in the estate's order."""

    window_start: datetime
    window_end: datetime
    totals: Mapping[str, int]
    workspaces: Sequence[WorkspaceActivity] = ()
    dry_run: bool = False
