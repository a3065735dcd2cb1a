"""When a promotion's card is delivered, the version is marked `governance.announced_at` only if
the run could not be tagged `governance.promoted_to` (in-memory gateway, App as built)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import pytest

from shared import tags as T
from shared.app import App
from shared.bootstrap import build_app
from shared.errors import TrackingUnavailable
from shared.notify.sinks import Channel, MemoryCardSink
from shared.tracking.memory import InMemoryGateway
from tests.event_samples import run_event
from tests.support import NOW, settings

EXPERIMENT = "churn"
MODEL = EXPERIMENT  # the default model name is the experiment's


class RunTagsFailOnce(InMemoryGateway):
    """The server goes away for the run's `governance.promoted_to` write, once."""

    failed = False

    def set_run_tags(
        self, run_id: str, tags: Mapping[str, str], delete: Sequence[str] = ()
    ) -> None:
        if T.PROMOTED_TO in tags and not self.failed:
            self.failed = True
            raise TrackingUnavailable("log_batch: 503 Service Unavailable")
        super().set_run_tags(run_id, tags, delete)


def promoting(gateway: InMemoryGateway) -> App:
    values = {"promotion_metric": "auc", "promotion_threshold": "0.8"}
    return build_app(
        settings(experiments=EXPERIMENT, **values),
        gateway=gateway,
        channel=Channel(MemoryCardSink(), "memory"),
        clock=lambda: NOW,
    )


def candidate(gateway: InMemoryGateway) -> tuple[str, str]:
    experiment_id = gateway.create_experiment(EXPERIMENT)
    run_id = gateway.add_run(
        experiment_id,
        metrics={"auc": 0.9},
        start_time=NOW - timedelta(hours=2),
        end_time=NOW - timedelta(hours=1),
    )
    gateway.log_model(run_id)
    return experiment_id, run_id


def champion_tags(gateway: InMemoryGateway) -> dict[str, str]:
    version = gateway.get_model_version_by_alias(MODEL, "champion")
    assert version is not None
    return dict(version.tags)


def delivered(app: App) -> int:
    sink = app.channel.sink
    assert isinstance(sink, MemoryCardSink)
    return len(sink.messages)


def test_a_promoted_run_tagged_as_such_leaves_its_version_unmarked() -> None:
    gateway = InMemoryGateway(clock=lambda: NOW)
    experiment_id, run_id = candidate(gateway)
    app = promoting(gateway)

    outcome = app.handle_events(run_event(run_id, experiment_id, EXPERIMENT))

    assert [r.outcome for r in outcome.report.records if r.policy == "promote-to-registry"] == [
        "applied"
    ]
    assert delivered(app) == 1
    assert gateway.get_run(run_id).tags[T.PROMOTED_TO] == f"{MODEL}:1"
    assert T.ANNOUNCED_AT not in champion_tags(gateway)
    # The run's tag is what stops a second promotion and a second card.
    again = app.handle_events(run_event(run_id, experiment_id, EXPERIMENT))
    assert [r.reason for r in again.report.records if r.policy == "promote-to-registry"] == [
        f"already promoted to {MODEL}:1"
    ]
    assert delivered(app) == 1


def test_a_promotion_whose_run_could_not_be_tagged_marks_its_version_after_the_card() -> None:
    gateway = RunTagsFailOnce(clock=lambda: NOW)
    experiment_id, run_id = candidate(gateway)
    app = promoting(gateway)

    with pytest.raises(TrackingUnavailable):
        app.handle_events(run_event(run_id, experiment_id, EXPERIMENT))

    # The alias moved before the failure: the failing invocation announced it...
    assert gateway.failed
    assert delivered(app) == 1
    assert T.PROMOTED_TO not in gateway.get_run(run_id).tags
    # ...and, the run being untagged, marked the version (the server answered again).
    assert champion_tags(gateway).get(T.ANNOUNCED_AT) == NOW.isoformat()
    # The redelivery only tags the run: no second card.
    retry = app.handle_events(run_event(run_id, experiment_id, EXPERIMENT))
    assert [r.outcome for r in retry.report.records if r.policy == "promote-to-registry"] == [
        "skipped"
    ]
    assert gateway.get_run(run_id).tags[T.PROMOTED_TO] == f"{MODEL}:1"
    assert delivered(app) == 1
