"""Invocations that race, against the real MLflow server: a promotion is announced exactly
once (decided in the registry, by who owns the surviving version), and overlapping sweeps
neither fail nor report a deletion twice. Each invocation has its own App and gateway.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from shared import tags as T
from shared.app import App
from shared.bootstrap import build_app
from shared.errors import TrackingUnavailable
from shared.notify.sinks import Channel, MemoryCardSink
from shared.tracking.mlflow_gateway import MlflowGateway
from tests.event_samples import run_event
from tests.fault_proxy import After, fault_proxy, reset
from tests.receiver import PATH, card_text
from tests.receiver import receiver_fixture as receiver_fixture
from tests.receiver import tls_files_fixture as tls_files_fixture
from tests.support import make_run, settings

pytestmark = pytest.mark.integration

PROMOTED = "Model promoted:"
_T = TypeVar("_T")


def together(jobs: list[Callable[[], _T]]) -> list[_T | BaseException]:
    """Run `jobs` on their own threads, released at once; each one's result or error."""
    barrier = threading.Barrier(len(jobs))
    results: list[_T | BaseException] = [RuntimeError("not run")] * len(jobs)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = jobs[index]()
        except BaseException as exc:  # noqa: BLE001 (kept for the test to assert on)
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def promotions(report) -> list[Any]:
    return [r for r in report.records if r.policy == "promote-to-registry"]


def versions(client, name: str) -> list[Any]:
    return sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))


@pytest.fixture
def promoting(mlflow_server, experiment, receiver) -> Callable[..., App]:
    """A fresh App per invocation: promotion on `auc` >= 0.5, cards to the receiver."""
    receiver.server.expect_request(PATH, method="POST").respond_with_data("", status=202)
    _, name = experiment

    def build(uri: str | None = None, clock: Callable[[], datetime] | None = None) -> App:
        the_settings = settings(
            uri or mlflow_server.uri,
            experiments=name,
            promotion_metric="auc",
            promotion_threshold="0.5",
            teams_webhook_url=receiver.url,
        )
        return build_app(the_settings, clock=clock)

    return build


def cards_announcing(receiver) -> int:
    return sum(card_text(message).count(PROMOTED) for message in receiver.messages())


def test_five_concurrent_deliveries_of_one_promotion_announce_it_once(
    client, experiment, promoting, receiver
):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True)
    payload = json.dumps(run_event(run_id, experiment_id, name))
    apps = [promoting() for _ in range(5)]

    outcomes = together([lambda app=app: app.handle_events(payload) for app in apps])

    reports = [o.report for o in outcomes if not isinstance(o, BaseException)]
    assert len(reports) == 5, outcomes
    records = [record for report in reports for record in promotions(report)]
    assert [r.outcome for r in records if r.outcome != "skipped"] == ["applied"], [
        r.reason for r in records
    ]
    (version,) = versions(client, name)
    assert client.get_model_version_by_alias(name, "champion").version == version.version
    assert client.get_run(run_id).data.tags[T.PROMOTED_TO] == f"{name}:{version.version}"
    # Exactly one card announces it; the run's tag records the promotion (above), so the
    # version needs no mark of its own.
    assert cards_announcing(receiver) == 1
    assert not version.tags.get(T.ANNOUNCED_AT)


def test_a_retry_after_a_failure_past_the_new_version_announces_it_once(
    mlflow_server, client, experiment, promoting, receiver
):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True)
    payload = json.dumps(run_event(run_id, experiment_id, name))

    # The server goes away right after the version is created, before the alias moves.
    class AfterCreate(After):
        def __call__(self, method: str, path: str, body: object) -> bool:
            with self._lock:
                if self.seen:
                    return True
                self.seen = int(path.split("?")[0].endswith("/model-versions/create"))
                return False

    with (
        fault_proxy(mlflow_server.uri, AfterCreate(0), reset) as (uri, hits),
        pytest.raises(TrackingUnavailable),
    ):
        promoting(uri).handle_events(payload)
    assert hits
    (left,) = versions(client, name)
    assert left.tags[T.REGISTERED_BY]
    assert not left.tags.get(T.ANNOUNCED_AT)
    assert cards_announcing(receiver) == 0  # nothing was promoted: nothing to announce

    # A retry while that invocation may still be running leaves the promotion to it...
    early = promoting().handle_events(payload)
    (record,) = promotions(early.report)
    assert record.outcome == "skipped", record.reason
    assert "being promoted by the invocation that registered it" in record.reason
    assert cards_announcing(receiver) == 0

    # ...a redelivery once it has certainly ended takes it over and announces it, once.
    later = datetime.now(UTC) + timedelta(minutes=10)
    retry = promoting(clock=lambda: later).handle_events(payload)
    (record,) = promotions(retry.report)
    assert (record.outcome, record.details["version"]) == ("applied", left.version), record.reason
    assert cards_announcing(receiver) == 1
    assert client.get_model_version_by_alias(name, "champion").version == left.version
    again = promoting(clock=lambda: later + timedelta(minutes=10)).handle_events(payload)
    assert [r.reason for r in promotions(again.report)] == [
        f"already promoted to {name}:{left.version}"
    ]
    assert cards_announcing(receiver) == 1
    assert [v.version for v in versions(client, name)] == [left.version]


# -- overlapping sweeps ------------------------------------------------------------------------


def sweeper(uri: str, name: str, gateway: MlflowGateway | None = None, concurrency: int = 4) -> App:
    the_settings = settings(
        uri, experiments=name, cleanup_statuses="FAILED", concurrency=str(concurrency)
    )
    return build_app(the_settings, gateway=gateway, channel=Channel(MemoryCardSink(), "memory"))


def deletions(report, outcome: str) -> set[str]:
    return {r.run_id for r in report.records if r.action == "delete-run" and r.outcome == outcome}


def test_two_overlapping_sweeps_delete_each_run_once_and_fail_nothing(
    mlflow_server, client, experiment
):
    experiment_id, name = experiment
    candidates = {
        make_run(client, experiment_id, status="FAILED", ended_hours_ago=100) for _ in range(12)
    }
    apps = [sweeper(mlflow_server.uri, name) for _ in range(2)]

    outcomes = together([app.sweep for app in apps])

    reports = [o.report for o in outcomes if not isinstance(o, BaseException)]
    assert len(reports) == 2, outcomes
    first, second = (deletions(report, "applied") for report in reports)
    assert first | second == candidates
    assert not first & second
    assert [r.reason for report in reports for r in report.records if r.outcome == "failed"] == []
    assert all(client.get_run(r).info.lifecycle_stage == "deleted" for r in candidates)


def test_a_run_a_concurrent_sweep_deleted_under_us_is_skipped_not_failed(
    mlflow_server, client, experiment
):
    """The deterministic form of the race: the rival sweep runs whole between this sweep's
    re-read of a run and its calls, so MLflow refuses them ("must be in the 'active' state")."""
    experiment_id, name = experiment
    candidates = {
        make_run(client, experiment_id, status="FAILED", ended_hours_ago=100) for _ in range(3)
    }
    rival: list[Any] = []
    once = threading.Lock()

    class Raced(MlflowGateway):
        def set_run_tags(self, run_id, tags, delete=()):  # type: ignore[no-untyped-def]
            if T.DELETED_REASON in tags and once.acquire(blocking=False):
                rival.append(sweeper(mlflow_server.uri, name).sweep().report)
            return super().set_run_tags(run_id, tags, delete)

    raced = Raced(mlflow_server.uri)
    report = sweeper(mlflow_server.uri, name, gateway=raced, concurrency=1).sweep().report

    (theirs,) = rival
    assert deletions(theirs, "applied") == candidates
    assert deletions(report, "applied") == set()
    assert [r.outcome for r in report.records if r.action == "delete-run"] == ["skipped"] * 3
    reasons = [r.reason for r in report.records if r.action == "delete-run"]
    assert reasons[0] == "already deleted meanwhile (by a concurrent sweep)"
    assert report.exit_code == 0
