"""A level of deletions applied in stages (`Executor.apply_all` with the `DeleteRun` staged
handler), over the in-memory gateway with every call counted: one read of the whole level,
the claims, one read of the claimed runs, the deletions; and the same outcomes as a deletion
applied on its own when runs change, rival sweeps claim, the server throttles or goes away.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta

import pytest

from shared import tags as T
from shared.engine.actions import DeleteRun
from shared.engine.executor import Executor
from shared.engine.handlers.cleanup import CONCURRENT, DELETED_MEANWHILE
from shared.engine.throttle import Throttle
from shared.errors import TrackingError, TrackingUnavailable
from shared.model import Experiment, Run
from shared.policies.base import RunContext
from shared.policies.cleanup_failed_runs import CleanupFacts, evaluate
from shared.tracking.gateway import RUN_IDS_PER_SEARCH, RunQuery
from shared.tracking.memory import InMemoryGateway
from tests import support
from tests.support import NOW, settings
from tests.unit.test_concurrent_executor import Clock, Throttled

EXPERIMENT = "churn"
READS = ("get_run", "iter_runs")
WRITES = ("set_run_tags", "delete_run")
CLAIM = T.DELETION_CLAIM


class Counting(InMemoryGateway):
    """Counts every call by name; `before[name]` may act on a call before it is made (raise,
    to refuse it), `after[name]` once it was made."""

    def __init__(self) -> None:
        super().__init__(clock=lambda: NOW)
        self.calls: Counter[str] = Counter()
        self.queries: list[RunQuery] = []
        self.before: dict[str, Callable[..., None]] = {}
        self.after: dict[str, Callable[..., None]] = {}
        self._lock = threading.Lock()

    def _count(self, name: str, *args: object) -> None:
        with self._lock:
            self.calls[name] += 1
        hook = self.before.get(name)
        if hook is not None:
            hook(*args)

    def get_run(self, run_id: str) -> Run:
        self._count("get_run", run_id)
        return super().get_run(run_id)

    def iter_runs(self, query: RunQuery) -> Iterator[Run]:
        self._count("iter_runs", query)
        with self._lock:
            self.queries.append(query)
        return super().iter_runs(query)

    def iter_child_runs(self, experiment_id: str, parent_run_id: str) -> Iterator[Run]:
        self._count("iter_child_runs", parent_run_id)
        return super().iter_child_runs(experiment_id, parent_run_id)

    def set_run_tags(
        self, run_id: str, tags: Mapping[str, str], delete: Sequence[str] = ()
    ) -> None:
        self._count("set_run_tags", run_id, tags, delete)
        super().set_run_tags(run_id, tags, delete)
        hook = self.after.get("set_run_tags")
        if hook is not None:
            hook(run_id, tags, delete)

    def delete_run(self, run_id: str) -> None:
        self._count("delete_run", run_id)
        super().delete_run(run_id)

    def reads(self) -> int:
        return sum(self.calls[name] for name in READS)

    def writes(self) -> int:
        return sum(self.calls[name] for name in WRITES)


def level(gateway: Counting, runs: int, experiments: int = 1) -> tuple[list[str], list[DeleteRun]]:
    """`runs` old failed runs (spread over `experiments`) and the sweep's decision to delete
    each; the calls of the seeding and the deciding are not counted."""
    policy = settings(cleanup_statuses="FAILED").policy_for(EXPERIMENT)
    homes = [gateway.create_experiment(f"{EXPERIMENT}-{i}") for i in range(experiments)]
    ids, actions = [], []
    for i in range(runs):
        ended = NOW - timedelta(hours=100 + i)
        home = homes[i % experiments]
        run_id = gateway.add_run(home, status="FAILED", start_time=ended, end_time=ended)
        context = RunContext(now=NOW, experiment=Experiment(home, EXPERIMENT), policy=policy)
        (action,) = evaluate(gateway.get_run(run_id), context, CleanupFacts())
        assert isinstance(action, DeleteRun)
        ids.append(run_id)
        actions.append(action)
    gateway.calls.clear()
    gateway.queries.clear()
    return ids, actions


def executor(gateway: Counting, concurrency: int = 4, **kw: object) -> Executor:
    return Executor(gateway, dry_run=False, concurrency=concurrency, now=NOW, **kw)  # type: ignore[arg-type]


def outcomes(records) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(r.outcome, r.reason) for r in records]


def claim_keys(run: Run) -> list[str]:
    return [k for k in run.tags if k.startswith(CLAIM)]


@pytest.mark.parametrize("experiments", [1, 3])
def test_a_level_of_n_deletions_reads_twice_and_writes_twice_per_run(experiments: int) -> None:
    gateway = Counting()
    ids, actions = level(gateway, 7, experiments)

    records = executor(gateway).apply_all(actions)

    assert [r.run_id for r in records] == ids  # in the order of the actions
    assert {r.outcome for r in records} == {"applied"}
    assert (gateway.reads(), gateway.writes()) == (2, 2 * len(ids))
    assert gateway.calls["get_run"] == 0
    assert (gateway.calls["set_run_tags"], gateway.calls["delete_run"]) == (len(ids), len(ids))
    reread, settle = gateway.queries
    assert reread.run_ids == settle.run_ids == frozenset(ids)
    assert len(reread.experiment_ids) == experiments
    for run_id in ids:
        run = gateway.get_run(run_id)
        assert run.deleted
        assert T.DELETED_REASON in run.tags
        assert len(claim_keys(run)) == 1


def test_a_level_of_more_runs_than_one_search_holds_reads_its_parts_at_once() -> None:
    gateway = Counting()
    ids, actions = level(gateway, 2 * RUN_IDS_PER_SEARCH + 50, experiments=2)
    # Each read's three parts (200 + 200 + 50 ids) must all be in flight before any answers:
    # read one after another, the first would wait here in vain and the barrier break.
    parts = threading.Barrier(3, timeout=10)
    gateway.before["iter_runs"] = lambda query: parts.wait()

    records = executor(gateway, concurrency=4).apply_all(actions)

    assert {r.outcome for r in records} == {"applied"}
    assert [r.run_id for r in records] == ids
    assert not parts.broken
    assert gateway.calls["get_run"] == 0  # every run was in a part that answered
    assert gateway.calls["iter_runs"] == 6  # three parts, read twice
    sizes = sorted(len(q.run_ids or ()) for q in gateway.queries)
    assert sizes == [50, 50, 200, 200, 200, 200]
    for read in (gateway.queries[:3], gateway.queries[3:]):
        assert frozenset().union(*(q.run_ids or () for q in read)) == frozenset(ids)


def test_a_serial_executor_reads_the_parts_of_a_level_one_after_another() -> None:
    gateway = Counting()
    ids, actions = level(gateway, RUN_IDS_PER_SEARCH + 1)
    records = executor(gateway, concurrency=1).apply_all(actions)
    assert {r.outcome for r in records} == {"applied"}
    assert (gateway.calls["iter_runs"], gateway.calls["get_run"]) == (4, 0)
    assert all(gateway.get_run(run_id).deleted for run_id in ids)


def test_a_deletion_on_its_own_still_reads_its_run_alone() -> None:
    gateway = Counting()
    _, (action,) = level(gateway, 1)

    (record,) = executor(gateway).apply_all([action])

    assert record.outcome == "applied"
    assert gateway.calls == Counter(get_run=2, set_run_tags=1, delete_run=1)


def test_a_dry_run_level_reads_nothing() -> None:
    gateway = Counting()
    _, actions = level(gateway, 4)
    records = Executor(gateway, dry_run=True, concurrency=4, now=NOW).apply_all(actions)
    assert {r.outcome for r in records} == {"planned"}
    assert gateway.calls == Counter()


def test_a_run_deleted_or_purged_before_the_level_is_read_is_skipped_with_one_read_more() -> None:
    gateway = Counting()
    ids, actions = level(gateway, 4)
    gateway.delete_run(ids[1])  # by someone, after the sweep decided
    gateway._runs.pop(ids[2])  # purged by the server
    gateway.calls.clear()

    records = executor(gateway).apply_all(actions)

    assert outcomes(records) == [
        ("applied", actions[0].reason),
        ("skipped", "already deleted"),
        ("skipped", "run no longer exists"),
        ("applied", actions[3].reason),
    ]
    # Only the two runs missing from the level's search are read alone.
    assert gateway.calls["iter_runs"] == 2
    assert gateway.calls["get_run"] == 2
    assert gateway.calls["set_run_tags"] == gateway.calls["delete_run"] == 2
    assert T.DELETED_REASON not in gateway.get_run(ids[1]).tags


def test_a_run_deleted_between_its_claim_and_the_settle_read_is_skipped_as_meanwhile() -> None:
    gateway = Counting()
    ids, actions = level(gateway, 3)

    def rival_deletes_after_our_claim(run_id: str, tags: Mapping[str, str], delete) -> None:
        if run_id == ids[1] and tags:
            InMemoryGateway.delete_run(gateway, run_id)

    gateway.after["set_run_tags"] = rival_deletes_after_our_claim

    records = executor(gateway).apply_all(actions)

    assert [r.outcome for r in records] == ["applied", "skipped", "applied"]
    assert records[1].reason == DELETED_MEANWHILE
    assert gateway.calls["iter_runs"] == 2
    assert gateway.calls["get_run"] == 1  # the one missing from the settle read, alone
    assert gateway.calls["delete_run"] == 2


def test_a_run_a_rival_claimed_before_the_level_was_read_is_left_to_it() -> None:
    gateway = Counting()
    ids, actions = level(gateway, 3)
    rival = CLAIM + "0"
    InMemoryGateway.set_run_tags(gateway, ids[0], {rival: (NOW + timedelta(minutes=5)).isoformat()})

    records = executor(gateway).apply_all(actions)

    assert outcomes(records)[0] == ("skipped", CONCURRENT)
    assert [r.outcome for r in records[1:]] == ["applied", "applied"]
    run = gateway.get_run(ids[0])
    assert not run.deleted
    assert claim_keys(run) == [rival]  # we never claimed it
    assert gateway.calls["set_run_tags"] == 2


class Rival(Counting):
    """Another sweep claims each run right after our claim (`rival`); it withdraws after
    `withdraw_after` of our reads of that run alone (never, when None)."""

    def __init__(self, rival: str, withdraw_after: int | None) -> None:
        super().__init__()
        self.claim = CLAIM + rival
        self.withdraw_after = withdraw_after
        self.alone: Counter[str] = Counter()

    def set_run_tags(
        self, run_id: str, tags: Mapping[str, str], delete: Sequence[str] = ()
    ) -> None:
        super().set_run_tags(run_id, tags, delete)
        if any(k.startswith(CLAIM) and k != self.claim for k in tags):
            until = (NOW + timedelta(minutes=5)).isoformat()
            InMemoryGateway.set_run_tags(self, run_id, {self.claim: until})

    def get_run(self, run_id: str) -> Run:
        self.alone[run_id] += 1
        if self.withdraw_after is not None and self.alone[run_id] == self.withdraw_after + 1:
            InMemoryGateway.set_run_tags(self, run_id, {}, delete=(self.claim,))
        return super().get_run(run_id)


def test_with_the_larger_claim_the_level_withdraws_from_every_run_and_skips() -> None:
    gateway = Rival("0", withdraw_after=None)  # every uuid hex sorts after "0"
    ids, actions = level(gateway, 3)

    records = executor(gateway).apply_all(actions)

    assert outcomes(records) == [("skipped", CONCURRENT)] * 3
    for run_id in ids:
        run = gateway.get_run(run_id)
        assert not run.deleted
        assert claim_keys(run) == [gateway.claim]  # ours withdrawn, the rival's stays
    assert gateway.calls["iter_runs"] == 2


def test_with_the_smaller_claim_the_level_deletes_once_the_rival_withdraws() -> None:
    gateway = Rival("g" * 32, withdraw_after=2)  # sorts after any uuid hex
    ids, actions = level(gateway, 3)

    records = executor(gateway).apply_all(actions)

    assert [r.outcome for r in records] == ["applied"] * 3
    assert all(gateway.get_run(run_id).deleted for run_id in ids)
    # The settle read saw the rival, then each run was read alone until it withdrew.
    assert gateway.calls["iter_runs"] == 2
    assert gateway.calls["get_run"] == 3 * 3


def test_claims_that_never_settle_take_twenty_reads_then_leave_each_run_whole() -> None:
    gateway = Rival("g" * 32, withdraw_after=None)
    ids, actions = level(gateway, 2)

    records = executor(gateway).apply_all(actions)

    assert {r.reason for r in records} == {
        f"{CONCURRENT}; it has not settled: left for the next sweep"
    }
    # The settle read is the first of the 20 reads; then 19 alone, and one after withdrawing.
    assert gateway.calls["get_run"] == 2 * 20
    for run_id in ids:
        run = gateway.get_run(run_id)
        assert not run.deleted
        assert claim_keys(run) == [gateway.claim]


def test_a_failed_level_read_reads_each_run_alone_as_before() -> None:
    gateway = Counting()
    ids, actions = level(gateway, 3)

    def refuse(query: RunQuery) -> None:
        raise TrackingError("search_runs failed: PERMISSION_DENIED", code="PERMISSION_DENIED")

    def refuse_one(run_id: str) -> None:
        if run_id == ids[2]:
            raise TrackingError("get_run failed: PERMISSION_DENIED", code="PERMISSION_DENIED")

    gateway.before["iter_runs"] = refuse
    gateway.before["get_run"] = refuse_one

    records = executor(gateway).apply_all(actions)

    # The records a deletion on its own makes: the refused read fails that run only.
    assert outcomes(records) == [
        ("applied", actions[0].reason),
        ("applied", actions[1].reason),
        ("failed", f"{actions[2].reason}; failed: get_run failed: PERMISSION_DENIED"),
    ]
    assert gateway.calls["iter_runs"] == 2  # both reads tried once
    assert gateway.calls["get_run"] == 2 + 2 + 1  # each run alone, in each stage
    gateway.before.clear()
    assert not gateway.get_run(ids[2]).deleted


def test_a_parent_in_a_level_is_checked_for_active_children() -> None:
    gateway = Counting()
    ids, actions = level(gateway, 2)
    parents = [replace(action, is_parent=True) for action in actions]
    gateway.add_run(actions[0].target.experiment_id, status="RUNNING", parent_run_id=ids[0])
    gateway.calls.clear()

    records = executor(gateway).apply_all(parents)

    assert outcomes(records)[0] == ("skipped", "1 child runs are still active")
    assert records[1].outcome == "applied"
    assert gateway.calls["iter_child_runs"] == 2


# -- throttled, or the server going away halfway --------------------------------------------


def test_a_429_storm_on_every_stage_is_waited_out_and_each_run_deleted_once_with_its_tags():
    gateway = Counting()
    ids, actions = level(gateway, 6)
    clock = Clock()
    throttle = Throttle(attempts=4, clock=clock, sleep=clock.sleep)
    storm = Counter(iter_runs=1, set_run_tags=2, delete_run=2)  # each below the attempts
    lock = threading.Lock()

    def throttles(name: str) -> Callable[..., None]:
        def hook(*args: object) -> None:
            with lock:
                if storm[name] > 0:
                    storm[name] -= 1
                    raise Throttled(3)

        return hook

    for name in storm:
        gateway.before[name] = throttles(name)

    records = executor(gateway, throttle=throttle).apply_all(actions)

    assert [r.outcome for r in records] == ["applied"] * 6
    assert +storm == Counter()  # every throttled answer happened
    assert set(throttle.pauses) == {3}
    for run_id in ids:
        run = gateway.get_run(run_id)
        # A stage tried again is the whole deletion again: reasons and claim are there.
        assert run.deleted
        assert T.DELETED_REASON in run.tags
        assert len(claim_keys(run)) == 1


class GoesAway(support.GoesAway, Counting):
    """Deletes `n` runs, then the server is gone for every call but tag writes (so that what
    the sweep takes back can be seen)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.left = n


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_server_gone_halfway_keeps_the_deletions_done_and_leaves_no_claim_behind(concurrency):
    gateway = GoesAway(2)
    ids, actions = level(gateway, 6)
    runner = executor(gateway, concurrency=concurrency)

    with pytest.raises(TrackingUnavailable, match="during delete_run"):
        runner.apply_all(actions)

    gateway.down = False  # back, to check what it holds
    deleted = [run_id for run_id in ids if gateway.get_run(run_id).deleted]
    assert len(deleted) == 2
    assert sorted(r.run_id for r in runner.journal) == sorted(deleted)
    assert {r.outcome for r in runner.journal} == {"applied"}
    for run_id in set(ids) - set(deleted):
        # The failed deletion took its tags back, and so did the runs never reached.
        tags = gateway.get_run(run_id).tags
        assert T.DELETED_REASON not in tags
        assert claim_keys(gateway.get_run(run_id)) == []


def test_a_server_gone_at_the_settle_read_takes_every_claim_back_until_refused():
    gateway = Counting()
    ids, actions = level(gateway, 4)
    refused: list[str] = []

    def down_at_the_second_search(query: RunQuery) -> None:
        if gateway.calls["iter_runs"] == 2:
            raise TrackingUnavailable("tracking server unavailable during search_runs")

    def refuse_after_two_untags(run_id: str, tags: Mapping[str, str], delete: Sequence[str]):
        if delete and len(refused) >= 2:
            refused.append(run_id)
            raise TrackingUnavailable("tracking server unavailable during delete_tag")
        if delete:
            refused.append(run_id)

    gateway.before["iter_runs"] = down_at_the_second_search
    gateway.before["set_run_tags"] = refuse_after_two_untags
    runner = executor(gateway)

    with pytest.raises(TrackingUnavailable, match="during search_runs"):
        runner.apply_all(actions)

    assert runner.journal == []
    assert not any(gateway.get_run(run_id).deleted for run_id in ids)
    untagged = [r for r in ids if T.DELETED_REASON not in gateway.get_run(r).tags]
    # In the actions' order; the first refusal stops it (the rest keep a claim that expires).
    assert untagged == ids[:2]
    assert len(refused) == 3
