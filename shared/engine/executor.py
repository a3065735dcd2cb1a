"""The executor: the one place that reads dry-run and makes mutating tracking calls.

Each action type has one handler, named in `shared.engine.handlers.table`. In dry-run the
executor records what it would have done (`planned`), so reports and cards come out the same
either way. A failed action is recorded and the rest go on; only `TrackingUnavailable` (the
server is down) propagates, so a Function invocation fails and the platform retries it.

Each action is applied on its own (no state carried from one to the next), so `apply_all`
applies independent actions on a small pool (`GOVERNANCE_CONCURRENCY` workers) and returns
their records in the order given. A throttled server (429) pauses every worker (`throttle`).

Actions of a type with a staged handler (`handlers.table.STAGED`: deletions) are applied by
`apply_all` a stage at a time over all of them: one read of every run, the first stage of
each on the pool, one read again of the runs begun, the last stage of each on the pool. A
level of N deletions then costs two reads (each of N / 200 searches, sent at once) and 2N
writes, not 2N reads more.

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
from shared.engine.handlers.table import HANDLERS, STAGED, Handler, StagedHandler
from shared.engine.invocation import Invocation, running
from shared.engine.report import Record
from shared.engine.results import Result
from shared.engine.throttle import Throttle, throttled
from shared.errors import GovernanceError, TrackingError, TrackingUnavailable
from shared.model import Run
from shared.tracking.gateway import TrackingGateway, in_parts

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")
_S = TypeVar("_S", bound=Result | None)


class Executor:
    def __init__(
        self,
        gateway: TrackingGateway,
        *,
        dry_run: bool,
        handlers: Mapping[type[Action], Handler] = HANDLERS,
        staged: Mapping[type[Action], StagedHandler[Action]] = STAGED,
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
        self._staged = staged

    def apply(self, actions: Iterable[Action]) -> list[Record]:
        return [self.apply_one(action) for action in actions]

    def apply_all(self, actions: Sequence[Action]) -> list[Record]:
        """Apply independent actions concurrently; records in the order of `actions`.

        Two or more of one staged type (and nothing else) go by stages; dry run reads nothing.
        """
        kinds = {type(action) for action in actions}
        staged = self._staged.get(kinds.pop()) if len(kinds) == 1 else None
        if staged is None or self.dry_run or len(actions) < 2:
            return self.map(self.apply_one, actions)
        return _Stages(self, staged, actions).apply()

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
        return self.record(action, self._attempt(action, self._whole(action)))

    def step(self, action: Action, fn: Callable[[], _S]) -> _S | Record:
        """`fn()`, one step of `action` (a stage of a staged handler), as `apply_one` runs a
        whole action: within the invocation, throttled, a throttled step retried as the whole
        action (its handler, which reads afresh); its answer, or the record of its failure.
        Only `TrackingUnavailable` propagates. `record` makes the record of what it answers."""
        return self._attempt(action, fn, self._whole(action))

    def _whole(self, action: Action) -> Callable[[], Result]:
        """The action applied by its handler, as one step."""
        fn = self._handlers.get(type(action))
        if fn is None:
            raise TypeError(f"no handler for {type(action).__name__} in the handler table")
        return lambda: fn(self.gateway, action)

    def _attempt(
        self, action: Action, step: Callable[[], _S], again: Callable[[], _S] | None = None
    ) -> _S | Record:
        """`step()` for `action`, throttled (`again()` on a retry, when given): its result,
        or the record of its failure. Only `TrackingUnavailable` propagates."""
        try:
            with running(self.invocation):
                return self.paced(step, again)
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

    def record(self, action: Action, ended: Result | Record) -> Record:
        """The record of an action that ended (a result, or the record of its failure from
        `step`), journaled when done."""
        if isinstance(ended, Record):
            return ended
        return self._keep(Record(action, ended.outcome, ended.reason or action.reason, ended))

    def _keep(self, record: Record) -> Record:
        if record.done:
            with self._journal_lock:
                self.journal.append(record)
        return record

    def paced(self, fn: Callable[[], _R], again: Callable[[], _R] | None = None) -> _R:
        """`fn()`, tried again after a shared pause while the server answers 429: as `again()`
        when given (a stage retried as the whole action), else as `fn()` (the handlers are
        idempotent, so a retry finishes what the first try began)."""
        attempt, step = 1, fn
        while True:
            self.throttle.wait()
            try:
                result = step()
            except GovernanceError as exc:
                if not throttled(exc) or attempt >= self.throttle.attempts:
                    raise
                log.warning("tracking server throttled us (%s); every worker pauses", exc)
                self.throttle.hit(exc)
                attempt, step = attempt + 1, again or fn
                continue
            self.throttle.ok()
            return result


class _Stages:
    """One `apply_all` of actions with a staged handler (see `handlers.table.StagedHandler`)."""

    def __init__(
        self, executor: Executor, staged: StagedHandler[Action], actions: Sequence[Action]
    ) -> None:
        self.executor = executor
        self.gateway = executor.gateway
        self.staged = staged
        self.actions = actions
        self.records: list[Record | None] = [None] * len(actions)
        self._lock = threading.Lock()
        self.begun: list[int] = []  # begun, their `end` to come
        self.ending: set[int] = set()  # their `end` started
        self.runs: Mapping[str, Run] = {}

    def apply(self) -> list[Record]:
        pool = self.executor.map
        self.runs = self._read(self.actions)
        try:
            pool(self._begin, range(len(self.actions)))
            begun = sorted(self.begun)
            if begun:
                self.runs = self._read([self.actions[i] for i in begun])
                pool(self._end, begun)
        except TrackingUnavailable:
            self._abandon([self.actions[i] for i in sorted(set(self.begun) - self.ending)])
            raise
        records = [record for record in self.records if record is not None]
        assert len(records) == len(self.actions)  # each ended in one stage or the other
        return records

    def _read(self, actions: Sequence[Action]) -> Mapping[str, Run]:
        """The runs of `actions`, read in parts of `RUN_IDS_PER_SEARCH` ids (one search each)
        on the pool, so a level of thousands waits for one round trip, not one per part."""
        ordered = sorted(actions, key=lambda action: action.target.run_id)
        found: dict[str, Run] = {}
        for part in self.executor.map(self._read_part, in_parts(ordered)):
            found.update(part)
        return found

    def _read_part(self, actions: Sequence[Action]) -> Mapping[str, Run]:
        """One read of the runs of `actions`; when it fails, each is read in its stage."""
        try:
            return self.executor.paced(lambda: self.staged.read(self.gateway, actions))
        except TrackingUnavailable:
            raise
        except TrackingError as exc:
            log.warning("reading %d runs at once failed (%s): each alone", len(actions), exc)
        except Exception:  # a bug in the batched read: each run is read as before
            log.exception("reading %d runs at once crashed: each alone", len(actions))
        return {}

    def _begin(self, index: int) -> None:
        ended = self._stage(index, self.staged.begin)
        if ended is None:
            with self._lock:
                self.begun.append(index)
        else:
            self.records[index] = self.executor.record(self.actions[index], ended)

    def _end(self, index: int) -> None:
        with self._lock:
            self.ending.add(index)
        self.records[index] = self.executor.record(
            self.actions[index], self._stage(index, self.staged.end)
        )

    def _stage(
        self, index: int, step: Callable[[TrackingGateway, Action, Run | None], _S]
    ) -> _S | Record:
        """One stage of one action on the run last read; a throttled stage is tried again
        as the whole action (its handler), which reads afresh."""
        action = self.actions[index]
        run = self.runs.get(action.target.run_id)
        return self.executor.step(action, lambda: step(self.gateway, action, run))

    def _abandon(self, actions: Sequence[Action]) -> None:
        """Take back what was begun for actions that will not end, as their handler would have
        on an error; the first refusal ends it (the server is gone: a claim left expires)."""
        with running(self.executor.invocation):
            for action in actions:
                try:
                    self.staged.abandon(self.gateway, action)
                except Exception as exc:  # noqa: BLE001 (best effort; the outage is raised)
                    log.warning(
                        "could not take back %s on run %s: %s",
                        action.kind,
                        action.target.run_id,
                        exc,
                    )
                    return
