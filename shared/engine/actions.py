"""Actions are data: what a policy decided to do to one run. Only the executor applies them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.model import Run


@dataclass(frozen=True, slots=True)
class Target:
    """The run an action is about, with what reports and cards show of it."""

    run_id: str
    experiment_id: str
    experiment_name: str
    run_name: str = ""
    user: str = ""

    @classmethod
    def of(cls, run: Run, experiment_name: str) -> Target:
        return cls(
            run_id=run.run_id,
            experiment_id=run.experiment_id,
            experiment_name=experiment_name,
            run_name=run.run_name,
            user=run.user,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """Base of every action. `kind` is the verb-noun name shown in reports."""

    policy: str
    target: Target
    reason: str
    kind = "action"


@dataclass(frozen=True, slots=True, kw_only=True)
class Skip(Action):
    """A decision to do nothing, kept in the report so every run examined is accounted for."""

    kind = "skip"


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice(Action):
    """Something people should hear about (a failed run, a tripped guard); changes nothing."""

    topic: str
    details: Mapping[str, str] = field(default_factory=dict)
    kind = "notify"


@dataclass(frozen=True, slots=True, kw_only=True)
class SetRunTags(Action):
    """Set and delete run tags in one request (`log_batch`), then delete the stale keys."""

    set_tags: Mapping[str, str]
    delete_tags: tuple[str, ...] = ()
    kind = "set-run-tags"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteRun(Action):
    """Tag a run with why and when, then soft-delete it (MLflow `delete_run`).

    The handler re-reads the run first: one protected, changed or already gone since the
    sweep decided is left alone. A parent is deleted only once no child of it is active.
    """

    status: str
    age_hours: float
    set_tags: Mapping[str, str]
    protect_tag: str
    is_parent: bool = False
    kind = "delete-run"

    @property
    def details(self) -> dict[str, str]:
        return {
            "status": self.status,
            "age_hours": f"{self.age_hours:.1f}",
            **{f"set:{k}": v for k, v in self.set_tags.items()},
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreRun(Action):
    """Restore a run this tool deleted, clear its deletion tags and mark it restored."""

    deleted_at: str
    set_tags: Mapping[str, str]
    clear_tags: tuple[str, ...]
    kind = "restore-run"

    @property
    def details(self) -> dict[str, str]:
        return {
            "deleted_at": self.deleted_at,
            **{f"set:{k}": v for k, v in self.set_tags.items()},
            **{f"delete:{k}": "" for k in self.clear_tags},
        }
