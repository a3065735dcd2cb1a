"""Properties of the event path over the in-memory gateway (no server): any delivery order,
with duplicates and interleaved sweeps, ends as each event handled once in order would.

Event Grid delivers at least once and out of order; these generated sequences are that
delivery. Compared: run tags, registered versions, the alias, and what the cards announced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import tags as T
from shared.app import App
from shared.bootstrap import build_app
from shared.notify.sinks import Channel, MemoryCardSink
from shared.tracking.memory import InMemoryGateway
from tests.event_samples import run_event
from tests.receiver import card_text
from tests.support import NOW
from tests.support import settings as make_settings

EXPERIMENT = "churn"
MODEL = "churn-model"
# (name, status, auc, owner tag): names are fixed-width so none is a substring of another.
RUNS = (
    ("run-ok-a", "FINISHED", 0.86, True),
    ("run-ok-b", "FINISHED", 0.91, True),
    ("run-ok-c", "FINISHED", 0.88, True),
    ("run-low-d", "FINISHED", 0.70, True),
    ("run-untag", "FINISHED", 0.95, False),  # best metric, but noncompliant: never promoted
    ("run-fail-e", "FAILED", None, True),
    ("run-fail-f", "FAILED", None, False),
)
ENV = {
    "experiments": EXPERIMENT,
    "required_tags": "owner",
    "promotion_metric": "auc",
    "promotion_threshold": "0.8",
    "promotion_model_name": MODEL,
    "cleanup_statuses": "",
}


@dataclass
class World:
    gateway: InMemoryGateway
    app: App
    ids: dict[str, str]
    experiment_id: str

    def event(self, name: str) -> dict[str, object]:
        status = {n: s for n, s, _, _ in RUNS}[name]
        kind = "RunCompleted" if status == "FINISHED" else "RunStatusChanged"
        return run_event(
            self.ids[name],
            self.experiment_id,
            EXPERIMENT,
            kind=kind,
            status=None if status == "FINISHED" else "Failed",
        )

    def cards(self) -> list[str]:
        sink = self.app.channel.sink
        assert isinstance(sink, MemoryCardSink)
        return [card_text(message) for message in sink.messages]

    def state(self) -> dict[str, object]:
        runs = {}
        for name, run_id in self.ids.items():
            run = self.gateway.get_run(run_id)
            governance = {k: v for k, v in run.tags.items() if k.startswith(T.PREFIX)}
            versions = [v.version for v in self.gateway.find_model_versions(MODEL, run_id)]
            runs[name] = (governance, run.deleted, versions)
        champion = self.gateway.get_model_version_by_alias(MODEL, "champion")
        return {"runs": runs, "champion": champion.run_id if champion else None}


def world() -> World:
    gateway = InMemoryGateway(clock=lambda: NOW)
    experiment_id = gateway.create_experiment(EXPERIMENT)
    ids = {}
    for name, status, auc, owned in RUNS:
        ended = NOW - timedelta(hours=1)
        ids[name] = gateway.add_run(
            experiment_id,
            status=status,
            start_time=ended - timedelta(minutes=10),
            end_time=ended,
            tags={"owner": "ana"} if owned else {},
            metrics={"auc": auc} if auc is not None else {},
            name=name,
            user="ana",
        )
        if auc is not None:
            gateway.log_model(ids[name])
    app = build_app(
        make_settings(**ENV),
        gateway=gateway,
        channel=Channel(MemoryCardSink(), "memory"),
        clock=lambda: NOW,
    )
    return World(gateway, app, ids, experiment_id)


def deliver(w: World, steps: list[str]) -> None:
    for step in steps:
        if step == "sweep":
            w.app.sweep()
        else:
            # A redelivery is a new invocation with the same event (same id).
            w.app.handle_events(w.event(step))


NAMES = [name for name, *_ in RUNS]
# Each event at least once, any order, some delivered again, sweeps in between.
DELIVERIES = st.permutations(NAMES).flatmap(
    lambda order: st.lists(st.sampled_from([*NAMES, "sweep"]), max_size=8).flatmap(
        lambda extra: st.permutations(list(order) + extra)
    )
)
IN_ORDER_WITH_DUPLICATES = st.lists(st.sampled_from(NAMES), max_size=8).map(
    lambda extra: NAMES + extra  # every first delivery in order, then redeliveries
)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference() -> tuple[dict[str, object], list[str]]:
    w = world()
    deliver(w, NAMES)
    return w.state(), w.cards()


def test_the_reference_does_what_the_policies_say():
    state, cards = reference()
    runs = state["runs"]
    assert state["champion"] is not None
    assert runs["run-untag"][0][T.COMPLIANCE] == T.NONCOMPLIANT
    assert runs["run-untag"][2] == []  # never registered
    assert runs["run-low-d"][2] == []
    assert runs["run-ok-b"][2]  # the best compliant run holds a version
    assert all(T.FAILURE_NOTIFIED_AT in runs[n][0] for n in ("run-fail-e", "run-fail-f"))
    assert sum("run-fail-e" in text for text in cards) == 1


@PROPERTY
@given(IN_ORDER_WITH_DUPLICATES)
def test_redeliveries_change_nothing_and_announce_nothing(steps: list[str]) -> None:
    expected_state, expected_cards = reference()
    w = world()
    deliver(w, steps)
    assert w.state() == expected_state
    assert w.cards() == expected_cards


@PROPERTY
@given(DELIVERIES)
def test_any_order_with_sweeps_converges_on_the_same_champion(steps: list[str]) -> None:
    expected, _ = reference()
    w = world()
    deliver(w, steps)
    state = w.state()
    runs = state["runs"]
    # The champion is the best compliant run, whatever the order of its rivals' events.
    champion_id = w.gateway.get_run(w.ids["run-ok-b"]).run_id
    assert state["champion"] == champion_id == expected["champion"]
    for name in NAMES:
        tags, deleted, versions = runs[name]
        expected_tags, expected_deleted, _ = expected["runs"][name]
        assert len(versions) <= 1, f"{name} registered twice"
        assert deleted == expected_deleted
        for key in (T.COMPLIANCE, T.MISSING_TAGS, T.FAILURE_NOTIFIED_AT):
            assert tags.get(key) == expected_tags.get(key), (name, key)
    cards = w.cards()
    for failed in ("run-fail-e", "run-fail-f"):
        assert sum(failed in text for text in cards) == 1, f"{failed} announced more than once"
    # Every version the tool created was announced once, never twice.
    for name in NAMES:
        if runs[name][2]:
            promoted = [text for text in cards if name in text and "promot" in text.lower()]
            assert len(promoted) <= 1, f"promotion of {name} announced {len(promoted)} times"
