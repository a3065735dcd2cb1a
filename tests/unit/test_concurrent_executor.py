"""The sweep on the executor's pool (`GOVERNANCE_CONCURRENCY`), over the in-memory gateway:
the report in decision order whatever order the pool finishes in, the guard before any
deletion, children before parents, dry run unchanged, and a 429 storm honoured by every
worker. No timings: the pool is made to overlap by a barrier, time is a fake clock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from shared.engine.executor import Executor
from shared.engine.throttle import Throttle, retry_after, throttled
from shared.errors import TrackingUnavailable
from shared.model import Experiment, Run
from shared.policies.base import RunContext
from shared.policies.cleanup_failed_runs import CleanupFacts, evaluate
from shared.tracking.gateway import RunQuery
from shared.tracking.memory import InMemoryGateway
from shared.usecases.sweep import sweep
from tests.support import NOW, settings

EXPERIMENT = "churn"
# A safety net only: a pool that never overlaps breaks the barrier instead of hanging.
NEVER_S = 60


class Recording(InMemoryGateway):
    """Records every deletion in the order it happened; `gate` may hold a deletion back."""

    def __init__(self) -> None:
        super().__init__(clock=lambda: NOW)
        self.lock = threading.Lock()
        self.deleted: list[str] = []
        self.mutations = 0
        self.gate: Callable[[str], None] | None = None

    def delete_run(self, run_id: str) -> None:
        if self.gate is not None:
            self.gate(run_id)
        with self.lock:
            self.deleted.append(run_id)
            self.mutations += 1
        super().delete_run(run_id)

    def set_run_tags(self, run_id, tags, delete=()) -> None:  # type: ignore[no-untyped-def]
        with self.lock:
            self.mutations += 1
        super().set_run_tags(run_id, tags, delete)


def failed(gateway: InMemoryGateway, experiment_id: str, hours: float, **kw: object) -> str:
    ended = NOW - timedelta(hours=hours)
    start = kw.pop("start_time", ended - timedelta(minutes=30))
    return gateway.add_run(
        experiment_id,
        status="FAILED",
        start_time=start,
        end_time=ended,
        **kw,  # type: ignore[arg-type]
    )


def run_sweep(gateway: InMemoryGateway, throttle: Throttle | None = None, **env: str):
    values = {"experiments": EXPERIMENT, "cleanup_statuses": "FAILED", **env}
    return sweep(gateway, settings(**values), NOW, throttle=throttle)


def rows(report) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return [(r.action, r.run_id, r.outcome) for r in report.records]


def seeded(runs: int = 4) -> tuple[Recording, list[str]]:
    gateway = Recording()
    experiment_id = gateway.create_experiment(EXPERIMENT)
    return gateway, [failed(gateway, experiment_id, 100 + i) for i in range(runs)]


def test_the_report_is_in_decision_order_whatever_order_the_pool_finishes_in() -> None:
    serial, ids = seeded()
    expected = rows(run_sweep(serial, concurrency="1"))
    assert [a for a, _, _ in expected].count("delete-run") == 4

    gateway, ids = seeded()
    # All four deletions in flight at once, then finishing last-started first.
    barrier = threading.Barrier(4, timeout=NEVER_S)
    started: list[str] = []
    finished = {run_id: threading.Event() for run_id in ids}

    def gate(run_id: str) -> None:
        with gateway.lock:
            started.append(run_id)
        barrier.wait()
        later = started[started.index(run_id) + 1 :]
        for other in later:
            assert finished[other].wait(NEVER_S)
        finished[run_id].set()

    gateway.gate = gate
    report = run_sweep(gateway, concurrency="4")

    assert gateway.deleted == started[::-1]  # the pool really finished in reverse
    assert rows(report) == expected
    assert all(gateway.get_run(run_id).deleted for run_id in ids)


def test_children_are_deleted_before_their_parent_on_the_pool() -> None:
    gateway = Recording()
    experiment_id = gateway.create_experiment(EXPERIMENT)
    # The parent started last, so it is listed (and decided) first.
    parent = failed(gateway, experiment_id, 100, start_time=NOW - timedelta(hours=101))
    children = [
        failed(
            gateway,
            experiment_id,
            100,
            start_time=NOW - timedelta(hours=105 + i),
            parent_run_id=parent,
        )
        for i in range(3)
    ]
    grandchild = failed(
        gateway,
        experiment_id,
        100,
        start_time=NOW - timedelta(hours=110),
        parent_run_id=children[0],
    )

    report = run_sweep(gateway, concurrency="4")

    order = gateway.deleted
    assert set(order) == {parent, grandchild, *children}
    assert order.index(grandchild) < order.index(children[0])
    assert all(order.index(child) < order.index(parent) for child in children)
    deletions = [(r.run_id, r.outcome) for r in report.records if r.action == "delete-run"]
    # By height, the leaves first: then the child whose own child is gone, then the parent.
    assert {run_id for run_id, _ in deletions[:3]} == {grandchild, children[1], children[2]}
    assert deletions[3:] == [(children[0], "applied"), (parent, "applied")]
    assert {outcome for _, outcome in deletions} == {"applied"}


def test_the_guard_counts_every_candidate_before_the_pool_deletes_any() -> None:
    gateway, _ = seeded(5)
    report = run_sweep(gateway, concurrency="4", cleanup_max_runs="4")
    assert gateway.deleted == []
    assert gateway.mutations == 0
    (guard,) = [r for r in report.records if r.details.get("topic") == "cleanup-guard"]
    assert (guard.details["candidates"], guard.details["cap"]) == ("5", "4")


def test_a_dry_run_on_the_pool_plans_the_same_and_changes_nothing() -> None:
    serial, _ = seeded()
    expected = rows(run_sweep(serial, concurrency="1", dry_run="true"))
    gateway, ids = seeded()

    report = run_sweep(gateway, concurrency="4", dry_run="true")

    assert rows(report) == expected
    assert {o for a, _, o in rows(report) if a == "delete-run"} == {"planned"}
    assert gateway.mutations == 0
    assert not any(gateway.get_run(run_id).deleted for run_id in ids)


# -- throttling --------------------------------------------------------------------------


class Clock:
    """Fake time: it moves only when a worker sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
            self.slept.append(seconds)


class Throttled(TrackingUnavailable):
    """What the gateway raises once MLflow's own retries of a 429 ran out (the text is
    MLflow's), carrying the server's `Retry-After` as the bounded HTTP layer may."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            "tracking server unavailable during delete_run: API request failed with exception "
            "Max retries exceeded (Caused by ResponseError('too many 429 error responses'))"
        )
        self.retry_after = seconds


def test_throttled_errors_are_recognised_by_mlflows_words() -> None:
    assert throttled(Throttled(2))
    assert retry_after(Throttled(2)) == 2
    words = "throttled: HTTP 429 asked to retry after 40 s, more than the 30 s cap"
    assert throttled(TrackingUnavailable(words))
    assert retry_after(TrackingUnavailable(words)) == 40
    assert not throttled(TrackingUnavailable("failed with error code 503 != 200"))


def test_a_429_pauses_every_worker_for_its_retry_after() -> None:
    clock = Clock()
    throttle = Throttle(clock=clock, sleep=clock.sleep)
    throttle.hit(Throttled(5))  # worker A was told to wait
    throttle.wait()  # worker B, about to send its request, waits too
    assert clock.now == 5
    throttle.wait()  # the pause is over: no more waiting
    assert clock.slept == [5]
    # Without Retry-After, a doubling backoff while the strikes go on (the first was the
    # 5 s one); an answer that is not throttled starts again from the first backoff.
    throttle.hit(TrackingUnavailable("too many 429 error responses"))
    throttle.hit(TrackingUnavailable("too many 429 error responses"))
    assert throttle.pauses == [5, 2, 4]
    throttle.wait()
    assert clock.now == 5 + 4  # the longest pause decided, waited out once
    throttle.ok()
    throttle.hit(TrackingUnavailable("too many 429 error responses"))
    assert throttle.pauses[-1] == 1


def test_a_429_storm_is_waited_out_by_the_whole_pool_then_everything_applies() -> None:
    gateway, ids = seeded(6)
    clock = Clock()
    throttle = Throttle(attempts=4, clock=clock, sleep=clock.sleep)
    storm = {"left": 3}  # fewer than the attempts: every deletion gets through
    started_at: list[float] = []

    def gate(run_id: str) -> None:
        with gateway.lock:
            started_at.append(clock())
            if storm["left"] > 0:
                storm["left"] -= 1
                raise Throttled(3)

    gateway.gate = gate
    report = run_sweep(gateway, throttle=throttle, concurrency="4")

    deletions = [r for r in report.records if r.action == "delete-run"]
    assert [r.outcome for r in deletions] == ["applied"] * 6
    assert sorted(gateway.deleted) == sorted(ids)  # each once: the retries did nothing twice
    assert throttle.pauses
    assert set(throttle.pauses) == {3}  # the server's Retry-After, not the backoff
    assert clock.now >= 3
    assert len(started_at) == 6 + 3  # every throttled try was retried, none more


def test_a_storm_that_outlasts_the_retries_fails_the_sweep_without_hammering() -> None:
    gateway, ids = seeded(3)
    clock = Clock()
    throttle = Throttle(attempts=3, clock=clock, sleep=clock.sleep)
    tries: list[str] = []

    def gate(run_id: str) -> None:
        with gateway.lock:
            tries.append(run_id)
        raise Throttled(1)

    gateway.gate = gate
    with pytest.raises(TrackingUnavailable, match="429"):
        run_sweep(gateway, throttle=throttle, concurrency="2")
    # At most `attempts` tries per deletion started before the pool stopped.
    assert len(tries) <= 3 * len(ids)
    assert gateway.deleted == []


def test_an_executor_without_a_throttle_does_not_retry_a_429() -> None:
    gateway, (run_id,) = seeded(1)
    calls: list[str] = []

    def gate(run_id: str) -> None:
        calls.append(run_id)
        raise Throttled(1)

    gateway.gate = gate
    # Events: one try (an invocation must answer in time; Event Grid redelivers).
    executor = Executor(gateway, dry_run=False)
    found = gateway.get_run(run_id)
    context = RunContext(
        now=NOW,
        experiment=Experiment(found.experiment_id, EXPERIMENT),
        policy=settings(cleanup_statuses="FAILED").policy_for(EXPERIMENT),
    )
    (action,) = evaluate(found, context, CleanupFacts())
    with pytest.raises(TrackingUnavailable):
        executor.apply_one(action)
    assert calls == [run_id]


# -- one search per phase --------------------------------------------------------------------


class Queries(InMemoryGateway):
    """Keeps every run query the sweep makes."""

    def __init__(self) -> None:
        super().__init__(clock=lambda: NOW)
        self.queries: list[RunQuery] = []

    def iter_runs(self, query: RunQuery) -> Iterator[Run]:
        self.queries.append(query)
        return super().iter_runs(query)


def three_experiments() -> Queries:
    gateway = Queries()
    for name in ("churn-a", "churn-b", "churn-c"):
        experiment_id = gateway.create_experiment(name)
        failed(gateway, experiment_id, 100)
        gateway.add_run(experiment_id, end_time=NOW - timedelta(hours=1))
    return gateway


def test_each_phase_is_one_search_over_every_experiment() -> None:
    gateway = three_experiments()
    env = {"experiments": "churn-*", "cleanup_statuses": "FAILED", "required_tags": "owner"}
    report = sweep(gateway, settings(**env), NOW)

    # The candidates' children are looked up in one more query, over all of them at once;
    # the deletions re-read their runs in one query, and the claimed runs in one more.
    cleanup, children, reread, settle, catch_up = gateway.queries
    assert children.parent_run_ids is not None
    assert len(children.parent_run_ids) == 3
    deleted = {r.run_id for r in report.records if r.action == "delete-run" and r.done}
    assert len(deleted) == 3
    assert reread.run_ids == settle.run_ids == deleted
    assert not reread.deleted
    for query in (cleanup, reread, settle, catch_up):
        assert len(query.experiment_ids) == 3
    assert cleanup.statuses == frozenset({"FAILED"})
    assert catch_up.statuses is None


def test_without_run_policies_the_catch_up_reads_failed_runs_only_or_nothing() -> None:
    gateway = three_experiments()
    sweep(gateway, settings(experiments="churn-*", cleanup_statuses="FAILED"), NOW)
    catch_up = gateway.queries[-1]
    assert catch_up.statuses == frozenset({"FAILED", "KILLED"})  # their notices only

    gateway = three_experiments()
    dry = settings(experiments="churn-*", cleanup_statuses="FAILED", dry_run="true")
    sweep(gateway, dry, NOW)
    # A dry run sends no catch-up notice: nothing to read beyond cleanup's candidates.
    assert [q.statuses for q in gateway.queries if q.parent_run_ids is None] == [
        frozenset({"FAILED"})
    ]


def test_a_throttle_pause_never_runs_past_the_invocations_deadline():
    from shared import budget
    from shared.engine.throttle import Throttle
    from shared.errors import TrackingUnavailable

    throttle = Throttle(sleep=lambda _: None)
    asked = TrackingUnavailable("throttled: HTTP 429 asked to retry after 30 s")
    with budget.deadline("event invocation", 2.0, budget.default_budget()):
        throttle.hit(asked)
    assert 0 < throttle.pauses[-1] <= 2.0
    throttle.ok()
    throttle.hit(asked)  # no invocation deadline around it: the server's 30 s, under the cap
    assert throttle.pauses[-1] == 30.0
