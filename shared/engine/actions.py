"""Every action type: what a policy decided to do to one run, as typed data.

Only the executor applies them (`shared.engine.handlers.table` names each one's handler).
`json_details` is the one place an action becomes the strings of the `--json` report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from shared.model import ModelVersion, Run
from shared.tracking.gateway import ModelSource, TrackingReader


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


@dataclass(frozen=True, slots=True)
class EventRef:
    """The inbound event a decision answers (reports name it, so a log line finds it)."""

    event_id: str
    event_type: str

    def json_details(self) -> dict[str, str]:
        return {"event_id": self.event_id, "event_type": self.event_type}


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """Base of every action. `kind` is the verb-noun name reports show (`action` in JSON)."""

    policy: str
    target: Target
    reason: str
    KIND: ClassVar[str] = "action"

    @property
    def kind(self) -> str:
        return self.KIND

    def json_details(self) -> dict[str, str]:
        """What `--json` shows under `details`; the same in dry run and live."""
        return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Skip(Action):
    """A decision to do nothing, kept in the report so every run examined is accounted for."""

    event: EventRef | None = None
    KIND: ClassVar[str] = "skip"

    def json_details(self) -> dict[str, str]:
        return self.event.json_details() if self.event else {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Unable(Action):
    """A step that could not be taken (reading a run, scanning an experiment, deciding):
    never applied, always recorded `failed`; `step` is what reports show as its action."""

    step: str
    event: EventRef | None = None
    error_code: str = ""
    # Access was refused (401/403): the platform should deliver the event again.
    access_refused: bool = False

    @property
    def kind(self) -> str:
        return self.step

    @classmethod
    def instead_of(cls, action: Action, reason: str) -> Unable:
        """`action` could not even be attempted (e.g. the server went away)."""
        return cls(policy=action.policy, target=action.target, reason=reason, step=action.kind)

    def json_details(self) -> dict[str, str]:
        details = self.event.json_details() if self.event else {}
        if self.error_code:
            details["error_code"] = self.error_code
        return details


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice(Action):
    """Something people should hear about; changes nothing in tracking."""

    TOPIC: ClassVar[str] = "notice"
    KIND: ClassVar[str] = "notify"

    def json_details(self) -> dict[str, str]:
        return {"topic": self.TOPIC}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFailedNotice(Notice):
    """A run ended FAILED or KILLED; `duration_s` is None when the server recorded no start."""

    status: str
    duration_s: float | None
    run_url: str | None
    TOPIC: ClassVar[str] = "run-failed"

    def json_details(self) -> dict[str, str]:
        return {
            "topic": self.TOPIC,
            "status": self.status,
            "run_name": self.target.run_name,
            "owner": self.target.user,
            "duration_s": "" if self.duration_s is None else f"{self.duration_s:.0f}",
            "run_url": self.run_url or "",
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardNotice(Notice):
    """More cleanup candidates than the cap: nothing was deleted."""

    candidates: int
    cap: int
    setting: str
    # "experiment/run (id)" of the first few candidates, and the count per experiment.
    examples: tuple[str, ...]
    per_experiment: tuple[tuple[str, int], ...]
    TOPIC: ClassVar[str] = "cleanup-guard"

    def json_details(self) -> dict[str, str]:
        return {
            "topic": self.TOPIC,
            "candidates": str(self.candidates),
            "cap": str(self.cap),
            "setting": self.setting,
            "examples": ", ".join(self.examples),
            "experiments": ", ".join(f"{name}={count}" for name, count in self.per_experiment),
        }


def _tag_details(set_tags: Mapping[str, str], delete: tuple[str, ...] = ()) -> dict[str, str]:
    details = {f"set:{k}": v for k, v in set_tags.items()}
    details.update({f"delete:{k}": "" for k in delete})
    return details


@dataclass(frozen=True, slots=True, kw_only=True)
class SetRunTags(Action):
    """Set and delete run tags in one request (`log_batch`), then delete the stale keys."""

    set_tags: Mapping[str, str]
    delete_tags: tuple[str, ...] = ()
    # The required tags the run lacks, when this change marks it noncompliant or changes
    # which keys it lacks (the violations card lists them); empty for any other change.
    violation: tuple[str, ...] = ()
    KIND: ClassVar[str] = "set-run-tags"

    def json_details(self) -> dict[str, str]:
        return _tag_details(self.set_tags, self.delete_tags)


# Why a run re-read just before deletion must stay after all; None: delete it.
Recheck = Callable[[Run], str | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteRun(Action):
    """Tag a run with why and when, then soft-delete it (MLflow `delete_run`).

    The handler re-reads the run first and asks `recheck`, the cleanup policy's own rule:
    a run protected, restored or changed since the sweep decided is left alone. A parent is
    deleted only once no child of it is active.
    """

    status: str
    age_hours: float
    set_tags: Mapping[str, str]
    recheck: Recheck = field(compare=False)
    is_parent: bool = False
    KIND: ClassVar[str] = "delete-run"

    def json_details(self) -> dict[str, str]:
        return {"status": self.status, "age_hours": f"{self.age_hours:.1f}"} | _tag_details(
            self.set_tags
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreRun(Action):
    """Restore a run this tool deleted, clear its deletion tags and mark it restored."""

    deleted_at: str  # the run's `governance.deleted_at` tag, as written
    set_tags: Mapping[str, str]
    clear_tags: tuple[str, ...]
    KIND: ClassVar[str] = "restore-run"

    def json_details(self) -> dict[str, str]:
        return {"deleted_at": self.deleted_at} | _tag_details(self.set_tags, self.clear_tags)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetVersionTags(Action):
    """Set tags on a registered model version (the mark that its promotion was announced)."""

    model_name: str
    version: str
    set_tags: Mapping[str, str]
    KIND: ClassVar[str] = "set-version-tags"

    def json_details(self) -> dict[str, str]:
        return {"model_name": self.model_name, "version": self.version} | _tag_details(
            self.set_tags
        )


# Whether this promotion still beats `current`, the version the alias points at now.
Outranks = Callable[[TrackingReader, ModelVersion], bool]


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterModelVersion(Action):
    """Register the run's model (or reuse its version), move the alias, tag the run.

    `outranks` is the promotion policy's own comparison, which the handler asks again right
    before moving the alias; `no_model_reason` is the policy's words for a run whose model
    went missing meanwhile.
    """

    model_name: str
    alias: str
    artifact_path: str
    metric: str
    value: float
    threshold: float
    goal: str
    outranks: Outranks = field(compare=False)
    no_model_reason: str = ""
    previous_version: str | None = None
    previous_value: float | None = None
    run_url: str | None = None
    # What the decision already read, so the handler does not read it again: the run's
    # model, and whether the registered model exists (None: unknown, created if missing).
    source: ModelSource | None = field(default=None, compare=False)
    model_exists: bool | None = None
    # Run tags decided by an earlier policy (require-tags' compliance marks), written in the
    # same request as `governance.promoted_to`; `with_deletes` are tags to remove.
    with_tags: Mapping[str, str] = field(default_factory=dict)
    with_deletes: tuple[str, ...] = ()
    KIND: ClassVar[str] = "register-model-version"

    def json_details(self) -> dict[str, str]:
        details = {
            "model_name": self.model_name,
            "alias": self.alias,
            "metric": self.metric,
            "value": repr(self.value),
            "threshold": repr(self.threshold),
            "goal": self.goal,
            "artifact_path": self.artifact_path,
        }
        if self.previous_version is not None:
            details["previous_version"] = self.previous_version
        if self.previous_value is not None:
            details["previous_value"] = repr(self.previous_value)
        if self.run_url:
            details["run_url"] = self.run_url
        return details
