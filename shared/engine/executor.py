"""The executor: the one place that reads dry-run and makes mutating tracking calls.

Each action type has one handler, named in `shared.engine.handlers.table`. In dry-run the
executor records what it would have done (`planned`), so reports and cards come out the same
either way. A failed action is recorded and the rest go on; only `TrackingUnavailable` (the
server is down) propagates, so a Function invocation fails and the platform retries it.

Each action is applied on its own (no state carried from one to the next), so a caller may
apply independent actions concurrently and keep their records in decision order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from shared.engine.actions import Action, Skip, Unable
from shared.engine.handlers.table import HANDLERS, Handler
from shared.engine.report import Record
from shared.errors import GovernanceError, TrackingUnavailable
from shared.tracking.gateway import TrackingGateway

log = logging.getLogger(__name__)


class Executor:
    def __init__(
        self,
        gateway: TrackingGateway,
        *,
        dry_run: bool,
        handlers: Mapping[type[Action], Handler] = HANDLERS,
    ) -> None:
        self.gateway = gateway
        self.dry_run = dry_run
        self._handlers = handlers

    def apply(self, actions: Iterable[Action]) -> list[Record]:
        return [self.apply_one(action) for action in actions]

    def apply_one(self, action: Action) -> Record:
        if isinstance(action, Skip):
            return Record(action, "skipped", action.reason)
        if isinstance(action, Unable):
            return Record(action, "failed", action.reason)
        if self.dry_run:
            return Record(action, "planned", action.reason)
        fn = self._handlers.get(type(action))
        if fn is None:
            raise TypeError(f"no handler for {type(action).__name__} in the handler table")
        try:
            result = fn(self.gateway, action)
        except TrackingUnavailable:
            raise
        except GovernanceError as exc:
            log.warning(
                "%s %s on run %s failed: %s", action.policy, action.kind, action.target.run_id, exc
            )
            return Record(action, "failed", f"{action.reason}; failed: {exc}")
        except Exception as exc:  # a bug must not stop the other actions; it is reported
            log.exception(
                "%s %s on run %s crashed", action.policy, action.kind, action.target.run_id
            )
            return Record(action, "failed", f"{action.reason}; failed: {type(exc).__name__}: {exc}")
        return Record(action, result.outcome, result.reason or action.reason, result)
