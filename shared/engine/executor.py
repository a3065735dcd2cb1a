"""The executor: the one place that reads dry-run and makes mutating tracking calls.

Each action type has one handler (registered with `@handler`). In dry-run the executor
records what it would have done (`planned`), so reports and cards come out the same either
way. A failed action is recorded and the rest go on; only `TrackingUnavailable` (the server
is down) propagates, so a Function invocation fails and the platform retries it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from shared.engine.actions import Action, Notice, SetRunTags, Skip
from shared.engine.report import Outcome, Record
from shared.errors import GovernanceError, TrackingUnavailable
from shared.tracking.gateway import TrackingGateway

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Result:
    """What a handler did: normally `applied`; a handler may find nothing to do (`skipped`)."""

    outcome: Outcome = "applied"
    reason: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)


A = TypeVar("A", bound=Action)
Handler = Callable[[TrackingGateway, A], Result]
_HANDLERS: dict[type[Action], Callable[[TrackingGateway, Action], Result]] = {}


def handler(action_type: type[A]) -> Callable[[Handler[A]], Handler[A]]:
    """Register the function that applies `action_type`."""

    def register(fn: Handler[A]) -> Handler[A]:
        _HANDLERS[action_type] = fn  # type: ignore[assignment]
        return fn

    return register


def describe(action: Action) -> dict[str, str]:
    """Details of an action for the report, the same in dry-run and live."""
    if isinstance(action, SetRunTags):
        details = {f"set:{k}": v for k, v in action.set_tags.items()}
        details.update({f"delete:{k}": "" for k in action.delete_tags})
        return details
    if isinstance(action, Notice):
        return {"topic": action.topic, **action.details}
    return dict(getattr(action, "details", {}) or {})


class Executor:
    def __init__(self, gateway: TrackingGateway, *, dry_run: bool) -> None:
        import shared.engine.handlers  # noqa: F401  (registers the other modules' handlers)

        self.gateway = gateway
        self.dry_run = dry_run

    def apply(self, actions: Iterable[Action]) -> list[Record]:
        return [self.apply_one(action) for action in actions]

    def apply_one(self, action: Action) -> Record:
        details = describe(action)
        if isinstance(action, Skip):
            return self._record(action, "skipped", action.reason, details)
        if self.dry_run:
            return self._record(action, "planned", action.reason, details)
        fn = _HANDLERS.get(type(action))
        if fn is None:
            raise TypeError(f"no handler registered for {type(action).__name__}")
        try:
            result = fn(self.gateway, action)
        except TrackingUnavailable:
            raise
        except GovernanceError as exc:
            log.warning(
                "%s %s on run %s failed: %s", action.policy, action.kind, action.target.run_id, exc
            )
            return self._record(action, "failed", f"{action.reason}; failed: {exc}", details)
        except Exception as exc:  # a bug must not stop the other actions; it is reported
            log.exception(
                "%s %s on run %s crashed", action.policy, action.kind, action.target.run_id
            )
            reason = f"{action.reason}; failed: {type(exc).__name__}: {exc}"
            return self._record(action, "failed", reason, details)
        return self._record(
            action, result.outcome, result.reason or action.reason, {**details, **result.details}
        )

    @staticmethod
    def _record(
        action: Action, outcome: Outcome, reason: str, details: Mapping[str, str]
    ) -> Record:
        return Record.about(
            action.target,
            policy=action.policy,
            action=action.kind,
            outcome=outcome,
            reason=reason,
            details=details,
        )


@handler(SetRunTags)
def _set_run_tags(gateway: TrackingGateway, action: SetRunTags) -> Result:
    gateway.set_run_tags(action.target.run_id, action.set_tags, action.delete_tags)
    return Result()


@handler(Notice)
def _notice(gateway: TrackingGateway, action: Notice) -> Result:
    # Nothing to change in tracking: the notifier delivers the notice after the run, and
    # only a delivered notice is recorded on the run (`usecases.notifications`).
    return Result()
