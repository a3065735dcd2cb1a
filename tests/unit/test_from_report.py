"""Report -> cards: records made by the real policies and executor become the right notices.

Records are produced the way the use cases produce them (policy `evaluate`, `Executor`), so
a change of record shape on either side fails here rather than silently sending no card.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from shared import tags as T
from shared.engine.actions import Action, RegisterModelVersion, Target
from shared.engine.executor import Executor
from shared.engine.report import Record, Report
from shared.engine.results import Registered
from shared.model import Experiment, Run
from shared.notify import from_report
from shared.notify.sinks import Channel, LogCardSink, MemoryCardSink
from shared.notify.teams import Delivery, TeamsNotifier
from shared.policies import alert_failed_runs, cleanup_failed_runs, require_tags
from shared.policies.base import RunContext
from shared.policies.cleanup_failed_runs import CleanupFacts
from shared.usecases.cleanup import Candidate, Found, guard_notice
from shared.usecases.notifications import deliver, notify, run_link
from tests.receiver import card_text
from tests.support import settings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
EXPERIMENT = Experiment("7", "fraud")
URI = "http://mlflow.internal:5000"


class Links:
    """The one gateway call cards need (`run_url`); nothing else is reached."""

    tracking_uri = URI

    def run_url(self, run: Run) -> str:
        return f"{URI}/#/experiments/{run.experiment_id}/runs/{run.run_id}"

    def set_run_tags(self, run_id: str, tags: object, delete: object = ()) -> None:
        """Tag writes are accepted and forgotten: only the records matter here."""


def run(
    run_id: str,
    *,
    user: str = "ana",
    status: str = "FINISHED",
    hours: float = 1.0,
    tags: Mapping[str, str] | None = None,
) -> Run:
    end = NOW - timedelta(hours=hours)
    all_tags = {T.USER: user, T.RUN_NAME: f"name-{run_id}", **(tags or {})}
    return Run(run_id, EXPERIMENT.experiment_id, status, end - timedelta(minutes=3), end, all_tags)


def apply(action: Action, *, dry_run: bool = False) -> Record:
    return Executor(Links(), dry_run=dry_run).apply_one(action)  # type: ignore[arg-type]


def context(**env: str) -> RunContext:
    policy = settings(**env).policy_for(EXPERIMENT.name)
    return RunContext(now=NOW, experiment=EXPERIMENT, policy=policy)


def failure_notice(failed: Run) -> Action:
    """The notice the alert policy decides for a failed run's event."""
    facts = alert_failed_runs.read_facts(
        failed,
        Links(),  # type: ignore[arg-type]
        trigger="event",
        marks_recorded=True,
    )
    (action,) = alert_failed_runs.evaluate(failed, EXPERIMENT, facts)
    return action


def registered(action: Action, version: str = "3") -> Record:
    """What the executor records once the handler registered `version`."""
    result = Registered(reason=action.reason, version=version, source="runs:/r1/model")
    return Record(action, "applied", action.reason, result)


def promotion_action(run_id: str = "r1") -> RegisterModelVersion:
    return RegisterModelVersion(
        policy="promote-to-registry",
        target=Target.of(run(run_id), EXPERIMENT.name),
        reason="auc=0.93 beats champion fraud v2 (0.91)",
        model_name="fraud",
        alias="champion",
        artifact_path="model",
        metric="auc",
        value=0.93,
        threshold=0.9,
        goal="maximize",
        previous_version="2",
        previous_value=0.91,
        run_url=f"{URI}/#/experiments/7/runs/{run_id}",
        outranks=lambda reader, current: True,
    )


def report_of(*records: Record, command: str = "sweep") -> Report:
    report = Report(command=command, dry_run=False)
    report.extend(list(records))
    return report


def test_an_applied_promotion_becomes_a_promotion_card() -> None:
    record = registered(promotion_action())

    notice = from_report.promotion(record)

    assert notice is not None
    assert (notice.model_name, notice.version, notice.value, notice.threshold) == (
        "fraud",
        "3",
        0.93,
        0.9,
    )
    assert (notice.previous_version, notice.previous_value) == ("2", 0.91)
    assert notice.run_url == f"{URI}/#/experiments/7/runs/r1"
    assert not notice.dry_run
    (card,) = from_report.report_cards(report_of(record))
    assert "Model promoted: fraud v3" in card_text(card)


def test_a_planned_promotion_is_a_dry_run_card_and_a_skipped_one_none() -> None:
    planned = apply(promotion_action(), dry_run=True)
    notice = from_report.promotion(planned)
    assert notice is not None
    assert notice.dry_run
    assert notice.version == ""

    skipped = Record(promotion_action(), "skipped", "no model at 'model'")
    assert from_report.promotion(skipped) is None


def test_the_run_failed_notice_becomes_a_failure_card() -> None:
    failed = run("r2", user="bob", status="FAILED")
    record = apply(failure_notice(failed))

    notice = from_report.failure(record)

    assert notice is not None
    assert (notice.owner, notice.status, notice.duration_s) == ("bob", "FAILED", 180.0)
    assert notice.run_url == f"{URI}/#/experiments/7/runs/r2"
    (card,) = from_report.report_cards(report_of(record, command="handle-event"))
    assert "Run failed: name-r2 in fraud" in card_text(card)


def test_new_violations_are_one_card_grouped_by_owner() -> None:
    ctx = context(required_tags="owner,dataset")
    records = [
        apply(action)
        for r in (run("a1", user="ana"), run("a2", user="ana"), run("b1", user="bob"))
        for action in require_tags.evaluate(r, ctx)
    ]
    # Already marked noncompliant: the policy skips it, so it is not announced again.
    marked = {T.COMPLIANCE: T.NONCOMPLIANT, T.MISSING_TAGS: "owner,dataset"}
    records += [apply(a) for a in require_tags.evaluate(run("old", tags=marked), ctx)]
    # Compliant now: a change, but no violation.
    fixed = run("ok", tags={"owner": "x", "dataset": "v1", **marked})
    records += [apply(a) for a in require_tags.evaluate(fixed, ctx)]

    violations = [v for r in records if (v := from_report.violation(r)) is not None]
    cards = from_report.report_cards(report_of(*records), run_link(Links()))

    assert sorted(v.run_id for v in violations) == ["a1", "a2", "b1"]
    assert all(v.missing == ("owner", "dataset") for v in violations)
    (card,) = cards
    text = card_text(card)
    assert text.index("**ana** (2)") < text.index("**bob** (1)")
    assert f"({URI}/#/experiments/7/runs/a1)" in text


def test_deletions_become_one_cleanup_card_with_the_way_back() -> None:
    ctx = context(cleanup_after_hours="72")
    records = [
        apply(action)
        for r in (run("f1", status="FAILED", hours=100), run("f2", status="FAILED", hours=90))
        for action in cleanup_failed_runs.evaluate(r, ctx, CleanupFacts())
    ]
    # The executor applied them (a real handler would have deleted the runs).
    records = [dataclasses.replace(r, outcome="applied") for r in records]

    notice = from_report.cleanup_notice(records, run_link(Links()), cap=100)

    assert notice is not None
    assert [(d.run_id, d.status, d.age_hours) for d in notice.deleted] == [
        ("f1", "FAILED", 100.0),
        ("f2", "FAILED", 90.0),
    ]
    text = card_text(from_report.report_cards(report_of(*records), cap=100)[0])
    assert "Cleanup: 2 runs deleted" in text
    assert "mlgov restore --since 24" in text


def test_the_tripped_guard_becomes_the_guard_card() -> None:
    the_settings = settings(cleanup_max_runs="1")
    policy = the_settings.policy_for(EXPERIMENT.name)
    found = Found(
        total=3, kept=[Candidate(run("g1"), EXPERIMENT, policy)], per_experiment={"fraud": 3}
    )
    record = apply(guard_notice(found, the_settings))

    notice = from_report.cleanup_notice([record], from_report._no_link, cap=1)

    assert notice is not None
    assert (notice.guard_tripped, notice.candidates, notice.cap) == (True, 3, 1)
    assert "Cleanup stopped: 3 runs matched, cap is 1" in card_text(
        from_report.report_cards(report_of(record))[0]
    )


def test_several_notices_of_one_sweep_are_one_card_and_none_is_nothing() -> None:
    failed = run("r2", status="FAILED")
    records = [
        apply(failure_notice(failed)),
        *[apply(a) for a in require_tags.evaluate(run("v"), context(required_tags="owner2"))],
        registered(promotion_action()),
    ]
    cards = from_report.report_cards(report_of(*records))

    card = from_report.one_card(cards, "sweep")

    assert len(cards) == 3
    assert card is not None
    assert card_text(card).startswith("mlgov sweep: 3 notices")
    assert from_report.one_card([], "sweep") is None


class Failing:
    def post(self, card: object) -> Delivery:
        return Delivery(False, 500, 4, "HTTP 500: boom; gave up after 4 attempts")


class Crashing:
    def post(self, card: object) -> Delivery:
        raise RuntimeError("bug in a sink")


@pytest.mark.parametrize("sink", [Failing(), Crashing()])
def test_a_failed_delivery_is_recorded_and_never_changes_the_outcome(sink: object) -> None:
    record = apply(failure_notice(run("r3", status="FAILED")))
    report = report_of(record, command="handle-event")

    delivery = notify(report, Channel(sink, "teams https://x/…(masked)", posts=True), Links())  # type: ignore[arg-type]

    assert delivery is not None
    assert not delivery.ok
    (note,) = report.notifications
    assert note["ok"] == "false"
    assert note["posted"] == "false"
    assert note["error"]
    assert report.exit_code == 0
    assert report.records == [record]


def test_the_report_never_holds_the_webhook_url() -> None:
    secret = "https://prod.example.com/workflows/abc/invoke?sig=VERYSECRETsig"
    notifier = TeamsNotifier(SecretStr(secret), total_timeout_s=0.5)  # no attempt fits: no post
    report = report_of(apply(failure_notice(run("r4", status="FAILED"))))

    deliver(report, from_report.report_cards(report), Channel(notifier, repr(notifier), posts=True))

    dumped = report.to_json()
    assert "VERYSECRET" not in dumped
    assert "/workflows/abc" not in dumped
    assert "prod.example.com" in dumped


def test_memory_and_log_sinks_keep_or_log_the_exact_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    report = report_of(apply(failure_notice(run("r5", status="KILLED"))))
    cards = from_report.report_cards(report)
    memory, logged = MemoryCardSink(), LogCardSink("dry run")

    deliver(report, cards, Channel(memory, "report"))
    with caplog.at_level("INFO"):
        deliver(report, cards, Channel(logged, "log"))

    (message,) = memory.messages
    assert json.loads(json.dumps(message))["attachments"][0]["content"] == cards[0]
    assert logged.logged
    assert logged.logged[0] > 100
    assert "Teams card not posted (dry run)" in caplog.text
    assert [n["posted"] for n in report.notifications] == ["false", "false"]
