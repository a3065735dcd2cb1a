"""Governance events reach an Event Grid topic as a CloudEvents 1.0 batch, best effort.

A local HTTPS server stands in for the topic endpoint; azure-eventgrid's own client sends to
it with a static credential, trusting the server's certificate through `connection_verify`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.azure.credential import EVENTGRID_SCOPE
from shared.azure.events_out import (
    EVENT_TYPES,
    MAX_BATCH_BYTES,
    EventPublisher,
    GovernanceEvent,
    PublishLimits,
    model_subject,
    publish_events,
    run_subject,
    workspace_source,
)
from tests.azure_support import WORKSPACE_PATH, StaticCredential
from tests.conftest import free_port
from tests.receiver import receiver_fixture, tls_files_fixture  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

TOPIC_PATH = "/api/events"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json; charset=utf-8"
QUICK = PublishLimits(connection_timeout=5, read_timeout=5, retries=1, backoff_factor=0)


def decisions() -> list[GovernanceEvent]:
    at = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    return [
        GovernanceEvent(
            "mlgov.ModelPromoted",
            model_subject("churn-model", 7),
            {"run_id": "r1", "metric": "auc", "value": 0.91, "alias": "champion"},
            time=at,
        ),
        GovernanceEvent(
            "mlgov.RunDeleted",
            run_subject("12", "r2"),
            {"run_id": "r2", "reason": "failed 80 h ago", "dry_run": False},
            time=at,
        ),
        GovernanceEvent("mlgov.CleanupGuardTripped", "experiments/12", {"candidates": 140}),
    ]


@pytest.fixture(name="topic")
def topic_fixture(receiver, tls_files, monkeypatch):
    """The stand-in topic's URL; the CA is passed explicitly, not taken from the environment."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    return receiver.server.url_for(TOPIC_PATH), str(tls_files[0]), receiver.server


def test_the_batch_is_valid_cloudevents(topic) -> None:
    url, ca, server = topic
    server.expect_request(TOPIC_PATH, method="POST").respond_with_data("", status=200)
    credential = StaticCredential("event-grid-token")
    events = decisions()

    outcome = publish_events(
        url, credential, WORKSPACE_PATH, events, limits=QUICK, connection_verify=ca
    )

    assert (outcome.ok, outcome.sent, outcome.total, outcome.error) == (True, 3, 3, None)
    assert outcome.target == "127.0.0.1"
    ((request, _),) = server.log
    assert request.headers["Content-Type"] == BATCH_CONTENT_TYPE
    assert request.headers["Authorization"] == "Bearer event-grid-token"
    assert request.args["api-version"] == "2018-01-01"
    assert credential.scopes == [(EVENTGRID_SCOPE,)]
    body = json.loads(request.get_data())
    assert isinstance(body, list)
    assert len(body) == 3
    for sent, event in zip(body, events, strict=True):
        assert set(sent) == {
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "data",
            "datacontenttype",
        }
        assert sent["specversion"] == "1.0"
        assert sent["id"] == event.id
        assert sent["source"] == WORKSPACE_PATH
        assert sent["type"] == event.type
        assert sent["type"] in EVENT_TYPES
        assert sent["subject"] == event.subject
        assert sent["data"] == dict(event.data)
        assert sent["datacontenttype"] == "application/json"
        assert datetime.fromisoformat(sent["time"]).tzinfo is not None
    assert body[0]["time"].startswith("2026-03-02T08:30:00")
    assert len({sent["id"] for sent in body}) == 3


def test_a_failing_topic_is_an_outcome_not_an_exception(topic) -> None:
    url, ca, server = topic
    server.expect_request(TOPIC_PATH, method="POST").respond_with_json(
        {"error": {"code": "InternalServerError", "message": "try later"}}, status=500
    )

    outcome = EventPublisher(
        url, StaticCredential(), WORKSPACE_PATH, limits=QUICK, connection_verify=ca
    ).publish(decisions())

    assert not outcome.ok
    assert (outcome.sent, outcome.total) == (0, 3)
    assert outcome.error is not None
    assert outcome.error.startswith("HttpResponseError: 500")
    assert "event-grid-token" not in outcome.error
    assert len(server.log) == 1 + QUICK.retries


def test_a_refused_connection_is_an_outcome(tls_files) -> None:
    url = f"https://127.0.0.1:{free_port()}{TOPIC_PATH}"

    outcome = publish_events(
        url,
        StaticCredential(),
        WORKSPACE_PATH,
        decisions(),
        limits=QUICK,
        connection_verify=str(tls_files[0]),
    )

    assert not outcome.ok
    assert outcome.sent == 0
    assert outcome.error is not None
    assert outcome.error.startswith("ServiceRequestError")


def test_large_batches_are_split_below_the_request_limit(topic) -> None:
    url, ca, server = topic
    server.expect_request(TOPIC_PATH, method="POST").respond_with_data("", status=200)
    filler = "x" * (MAX_BATCH_BYTES // 2 - 4096)
    events = [
        GovernanceEvent("mlgov.RunNoncompliant", run_subject("1", f"r{i}"), {"note": filler})
        for i in range(3)
    ]

    outcome = publish_events(url, StaticCredential(), WORKSPACE_PATH, events, connection_verify=ca)

    assert (outcome.ok, outcome.sent) == (True, 3)
    sizes = [len(json.loads(request.get_data())) for request, _ in server.log]
    assert sizes == [2, 1]


def test_nothing_to_send_sends_nothing(topic) -> None:
    url, ca, server = topic
    outcome = publish_events(url, StaticCredential(), WORKSPACE_PATH, [], connection_verify=ca)
    assert (outcome.ok, outcome.sent, outcome.total) == (True, 0, 0)
    assert server.log == []


def test_a_plain_http_endpoint_is_refused_without_raising() -> None:
    outcome = publish_events(
        "http://127.0.0.1:9/api/events", StaticCredential(), WORKSPACE_PATH, decisions()
    )
    assert not outcome.ok
    assert outcome.error == "the Event Grid topic endpoint must be an https:// URL"


def test_source_is_the_workspace_without_secrets() -> None:
    assert workspace_source(WORKSPACE_PATH, "azureml://x/y") == WORKSPACE_PATH
    uri = f"azureml://alice:pw@eastus2.api.azureml.ms:443/mlflow/v2.0{WORKSPACE_PATH}?token=abc#f"
    assert workspace_source(tracking_uri=uri) == (
        f"azureml://eastus2.api.azureml.ms:443/mlflow/v2.0{WORKSPACE_PATH}"
    )
    with pytest.raises(ValueError, match="ARM id or tracking URI"):
        workspace_source()
