"""What an invocation did before the tracking server went away is reported, logged and carded,
and who announces a promotion or reports a deletion is decided from the registry's own tags.
Over the in-memory gateway (the real server: tests/integration/test_lost_reports.py and
test_concurrent_governance.py).
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import timedelta

import pytest

from shared import tags as T
from shared.cli.cards import emit_interrupted
from shared.engine.actions import Action, SetRunTags, Target
from shared.engine.executor import Executor
from shared.engine.handlers.cleanup import claims
from shared.engine.handlers.promotion import claim
from shared.engine.invocation import Invocation
from shared.engine.report import Record, Report, carry, partial_of
from shared.engine.results import APPLIED, Result
from shared.errors import TrackingUnavailable
from shared.model import ModelVersion, Run
from shared.notify.sinks import Channel, MemoryCardSink
from shared.tracking.gateway import TrackingGateway
from shared.tracking.memory import InMemoryGateway
from tests import support
from tests.support import NOW
from tests.unit.test_app_memory import EXPERIMENT, cards, failed_run, memory_app


def tag(run_id: str, value: str) -> SetRunTags:
    target = Target(run_id=run_id, experiment_id="1", experiment_name=EXPERIMENT)
    return SetRunTags(policy="require-tags", target=target, reason="r", set_tags={"k": value})


def test_work_the_pool_finished_is_kept_when_another_worker_meets_an_outage():
    def handler(gateway: TrackingGateway, action: Action) -> Result:
        if action.target.run_id == "down":
            raise TrackingUnavailable("tracking server unavailable during log_batch")
        return APPLIED

    executor = Executor(
        InMemoryGateway(), dry_run=False, handlers={SetRunTags: handler}, concurrency=4
    )
    actions = [tag("a", "1"), tag("down", "2"), tag("b", "3")]

    with pytest.raises(TrackingUnavailable) as caught:
        executor.apply_all(actions)

    report = Report(command="sweep", dry_run=False)
    added = carry(caught.value, report, executor.journal)
    assert sorted(r.run_id for r in added) == ["a", "b"]
    assert partial_of(caught.value) is report
    assert {r.outcome for r in report.records} == {"applied"}


def test_a_change_a_handler_completed_before_the_outage_is_journaled_with_its_result():
    done = Result(reason="alias moved")

    def handler(gateway: TrackingGateway, action: Action) -> Result:
        exc = TrackingUnavailable("tracking server unavailable during log_batch")
        exc.applied = done
        raise exc

    executor = Executor(InMemoryGateway(), dry_run=False, handlers={SetRunTags: handler})
    with pytest.raises(TrackingUnavailable) as caught:
        executor.apply_one(tag("r1", "1"))

    (record,) = executor.journal
    assert (record.outcome, record.reason, record.result) == ("applied", "alias moved", done)
    assert caught.value.applied is None  # journaled once, not again by an outer executor


def test_carry_adds_only_what_the_report_lacks():
    report = Report(command="sweep", dry_run=False)
    kept = Record(tag("a", "1"), "applied", "r")
    report.add(kept)
    other = Record(tag("b", "1"), "applied", "r")
    exc = TrackingUnavailable("down")

    assert carry(exc, report, [kept, other]) == [other]
    assert report.records == [kept, other]


class GoesAway(support.GoesAway, InMemoryGateway):
    """Deletes `n` runs, then the server is gone for every call."""

    def __init__(self, n: int) -> None:
        super().__init__(clock=lambda: NOW)
        self.left = n


def test_an_interrupted_sweep_logs_cards_and_carries_what_it_deleted(caplog):
    gateway = GoesAway(2)
    experiment_id = gateway.create_experiment(EXPERIMENT)
    runs = [failed_run(gateway, experiment_id, 100, name=f"trial-{i}") for i in range(4)]
    app = memory_app(gateway, cleanup_statuses="FAILED", concurrency="1")
    log = logging.getLogger("test.partial")

    with (
        caplog.at_level(logging.INFO, logger="test.partial"),
        pytest.raises(TrackingUnavailable) as caught,
    ):
        app.sweep(log=log)

    report = partial_of(caught.value)
    assert report is not None
    gateway.down = False  # back, to check what it holds
    applied = [r.run_id for r in report.records if r.outcome == "applied"]
    assert applied == [r for r in runs if gateway.get_run(r).deleted] == runs[:2]
    assert report.extra["interrupted"] == "tracking server unavailable during delete_run"
    assert [row["deleted"] for row in report.extra["experiments"]] == [2]
    lines = [r.getMessage() for r in caplog.records if r.name == "test.partial"]
    assert [line.split(" run ")[1].split()[0] for line in lines] == runs[:2]
    (text,) = cards(app)
    assert "trial-0" in text
    assert "trial-1" in text
    assert "trial-2" not in text


def test_the_cli_prints_the_partial_report_and_the_error_and_exits_1(capsys):
    report = Report(command="sweep", dry_run=False)
    report.add(Record(tag("a", "1"), "applied", "r"))
    exc = TrackingUnavailable("tracking server unavailable during get_run")
    carry(exc, report, [])
    channel = Channel(MemoryCardSink(), "memory")

    code = emit_interrupted(exc, argparse.Namespace(json=True), channel)

    captured = capsys.readouterr()
    assert code == 1
    assert [d["run_id"] for d in json.loads(captured.out)["decisions"]] == ["a"]
    assert captured.err.strip() == "mlgov: tracking server unavailable during get_run"


def test_nothing_done_prints_no_report(capsys):
    exc = TrackingUnavailable("tracking server unavailable during search_experiments")
    carry(exc, Report(command="sweep", dry_run=False), [])

    assert emit_interrupted(exc, argparse.Namespace(json=True), Channel(MemoryCardSink(), "m")) == 1
    assert capsys.readouterr().out == ""


# -- who announces a promotion: the registry's tags decide ---------------------------------


def me() -> Invocation:
    return Invocation(id="me", started=NOW, ends_by=NOW + timedelta(seconds=28))


def version(**tags: str) -> ModelVersion:
    return ModelVersion(name="m", version="1", run_id="r", source="runs:/r/model", tags=tags)


@pytest.mark.parametrize(
    ("tags", "alias_on_it", "expected"),
    [
        ({}, False, "own"),  # registered by hand, or before owners were recorded
        ({T.REGISTERED_BY: "me"}, False, "own"),
        ({T.REGISTERED_BY: "x", T.ANNOUNCED_AT: NOW.isoformat()}, False, "announced"),
        ({T.REGISTERED_BY: "x"}, True, "announced"),  # whoever moved the alias announced it
        (
            {T.REGISTERED_BY: "x", T.REGISTERED_UNTIL: (NOW + timedelta(seconds=5)).isoformat()},
            False,
            "owner's",
        ),
        (
            {T.REGISTERED_BY: "x", T.REGISTERED_UNTIL: (NOW - timedelta(seconds=1)).isoformat()},
            False,
            "take-over",
        ),
        ({T.REGISTERED_BY: "x", T.REGISTERED_UNTIL: "garbled"}, False, "take-over"),
    ],
)
def test_who_announces_a_version_found_rather_than_created(tags, alias_on_it, expected):
    assert claim(version(**tags), me(), alias_on_it=alias_on_it) == expected


def test_a_deletion_claim_counts_only_while_its_sweep_may_run():
    live = (NOW + timedelta(minutes=1)).isoformat()
    stale = (NOW - timedelta(minutes=1)).isoformat()
    run = Run(
        "r",
        "1",
        "FAILED",
        None,
        None,
        tags={
            T.DELETION_CLAIM + "me": live,
            T.DELETION_CLAIM + "other": live,
            T.DELETION_CLAIM + "dead": stale,
        },
    )
    assert claims(run, me()) == {"other"}


# -- overlapping sweeps: a claim decides which one deletes ----------------------------------


class Rival(InMemoryGateway):
    """Another sweep writes its claim (`rival`) right after ours; it withdraws after
    `withdraw_after` of our reads (never, when None)."""

    def __init__(self, rival: str, withdraw_after: int | None) -> None:
        super().__init__(clock=lambda: NOW)
        self.claim = T.DELETION_CLAIM + rival
        self.withdraw_after = withdraw_after
        self.reads = 0
        self.claimed = False

    def set_run_tags(self, run_id, tags, delete=()):  # type: ignore[no-untyped-def]
        super().set_run_tags(run_id, tags, delete)
        if not self.claimed and any(k.startswith(T.DELETION_CLAIM) for k in tags):
            self.claimed = True
            until = (NOW + timedelta(minutes=5)).isoformat()
            super().set_run_tags(run_id, {self.claim: until})

    def get_run(self, run_id: str) -> Run:
        if self.claimed:
            self.reads += 1
            if self.withdraw_after is not None and self.reads == self.withdraw_after + 1:
                super().set_run_tags(run_id, {}, delete=(self.claim,))
        return super().get_run(run_id)


def sweep_one(gateway: InMemoryGateway) -> tuple[str, Record]:
    experiment_id = gateway.create_experiment(EXPERIMENT)
    run_id = failed_run(gateway, experiment_id, 100)
    report = memory_app(gateway, cleanup_statuses="FAILED").sweep().report
    (record,) = [r for r in report.records if r.action == "delete-run"]
    return run_id, record


def test_a_sweep_whose_claim_has_the_larger_id_withdraws_and_skips():
    gateway = Rival("0", withdraw_after=None)  # every uuid hex sorts after "0"
    run_id, record = sweep_one(gateway)

    assert (record.outcome, record.reason) == (
        "skipped",
        "claimed by a concurrent sweep, which deletes and reports it",
    )
    run = gateway.get_run(run_id)
    assert not run.deleted
    assert [k for k in run.tags if k.startswith(T.DELETION_CLAIM)] == [gateway.claim]


def test_a_sweep_whose_claim_has_the_smaller_id_deletes_once_the_other_withdraws():
    gateway = Rival("g" * 32, withdraw_after=2)  # sorts after any uuid hex
    run_id, record = sweep_one(gateway)

    assert record.outcome == "applied", record.reason
    assert gateway.get_run(run_id).deleted


def test_claims_that_never_settle_leave_the_run_whole_for_the_next_sweep():
    gateway = Rival("g" * 32, withdraw_after=None)
    run_id, record = sweep_one(gateway)

    assert record.outcome == "skipped"
    assert record.reason.endswith("it has not settled: left for the next sweep")
    run = gateway.get_run(run_id)
    assert not run.deleted
    assert T.DELETED_AT in run.tags  # the rival's claim is still live: its reasons stay
