"""The executor: the one place that reads dry-run and makes mutating tracking calls.

Each action type has one handler, named in `shared.engine.handlers.table`. In dry-run the
executor records what it would have done (`planned`), so reports and cards come out the same
either way. A failed action is recorded and the rest go on; only `TrackingUnavailable` (the
server is down) propagates, so a Function invocation fails and the platform retries it.

Each action is applied on its own (no state carried from one to the next), so `apply_all`
applies independent actions on a small pool (`GOVERNANCE_CONCURRENCY` workers) and returns
their records in the order given. A throttled server (429) pauses every worker (`throttle`).

Every record of a change applied (or planned) is also kept in `journal`, so that when the
server goes away halfway, the use case can still report everything done before
(`shared.engine.report.carry`), including the work of pool workers whose batch was cut short.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

from shared.engine.actions import Action, Skip, Unable
from shared.engine.handlers.table import HANDLERS, Handler
from shared.engine.invocation import Invocation, running
from shared.engine.report import Record
from shared.engine.results import Result
from shared.engine.throttle import Throttle, throttled
from shared.errors import GovernanceError, TrackingUnavailable
from shared.tracking.gateway import TrackingGateway

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")


class Executor:
    def __init__(
        self,
        gateway: TrackingGateway,
        *,
        dry_run: bool,
        handlers: Mapping[type[Action], Handler] = HANDLERS,
        concurrency: int = 1,
        throttle: Throttle | None = None,
        now: datetime | None = None,
    ) -> None:
        self.gateway = gateway
        # Who applies: the id a registered version carries, and when this invocation ends.
        self.invocation = Invocation.begin(now)
        self.journal: list[Record] = []
        self._journal_lock = threading.Lock()
        self.dry_run = dry_run
        self.concurrency = max(1, concurrency)
        # Without a throttle given, a 429 is not retried here: an event must answer in time.
        self.throttle = throttle or Throttle(attempts=1)
        self._handlers = handlers

    def apply(self, actions: Iterable[Action]) -> list[Record]:
        return [self.apply_one(action) for action in actions]

    def apply_all(self, actions: Sequence[Action]) -> list[Record]:
        """Apply independent actions concurrently; records in the order of `actions`."""
        return self.map(self.apply_one, actions)

    def map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """`fn` over `items` on at most `concurrency` workers, results in the items' order.

        Serial with one worker (or one item). The first error
        (in the items' order) is raised once the started calls have ended; calls not yet
        started are cancelled, so a server found down is not asked again and again.
        """
        if self.concurrency == 1 or len(items) <= 1:
            return [fn(item) for item in items]
        workers = min(self.concurrency, len(items))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlgov")
        futures: list[Future[_R]] = []
        try:
            # Each task runs in a copy of the caller's context: the invocation's deadline
            # (`shared.budget`) travels with it into the pool.
            futures = [pool.submit(contextvars.copy_context().run, fn, item) for item in items]
            return [future.result() for future in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def apply_one(self, action: Action) -> Record:
        if isinstance(action, Skip):
            return Record(action, "skipped", action.reason)
        if isinstance(action, Unable):
            return Record(action, "failed", action.reason)
        if self.dry_run:
            return self._keep(Record(action, "planned", action.reason))
        fn = self._handlers.get(type(action))
        if fn is None:
            raise TypeError(f"no handler for {type(action).__name__} in the handler table")
        try:
            with running(self.invocation):
                result = self._throttled(lambda: fn(self.gateway, action))
        except TrackingUnavailable as exc:
            # The handler may have completed its change before the server went away (the
            # alias moved, then tagging the run failed): that change is reported all the same.
            if isinstance(exc.applied, Result):
                done = exc.applied
                self._keep(Record(action, done.outcome, done.reason or action.reason, done))
                exc.applied = None
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
        return self._keep(Record(action, result.outcome, result.reason or action.reason, result))

    def _keep(self, record: Record) -> Record:
        if record.done:
            with self._journal_lock:
                self.journal.append(record)
        return record

    def _throttled(self, fn: Callable[[], _R]) -> _R:
        """`fn()`, tried again after a shared pause while the server answers 429 (the
        handlers are idempotent, so a retry finishes what the first try began)."""
        attempt = 1
        while True:
            self.throttle.wait()
            try:
                result = fn()
            except GovernanceError as exc:
                if not throttled(exc) or attempt >= self.throttle.attempts:
                    raise
                log.warning("tracking server throttled us (%s); every worker pauses", exc)
                self.throttle.hit(exc)
                attempt += 1
                continue
            self.throttle.ok()
            return result
