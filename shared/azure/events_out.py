"""Governance decisions out as CloudEvents 1.0 on an Event Grid topic (azure-eventgrid).

Best effort, like Teams: one batch per invocation, bounded retries and timeouts, and a
`DeliveryOutcome` instead of an exception, so a failing topic never blocks or undoes a
decision. The outcome's error names the failure, never a token or a URI's secrets.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

EventType = Literal[
    "mlgov.ModelPromoted",
    "mlgov.RunDeleted",
    "mlgov.RunRestored",
    "mlgov.RunNoncompliant",
    "mlgov.CleanupGuardTripped",
]
EVENT_TYPES: tuple[EventType, ...] = (
    "mlgov.ModelPromoted",
    "mlgov.RunDeleted",
    "mlgov.RunRestored",
    "mlgov.RunNoncompliant",
    "mlgov.CleanupGuardTripped",
)
JSONValue = str | int | float | bool | None | list[Any] | dict[str, Any]

# Event Grid accepts at most 1 MB per request (and per event); keep each request below it.
MAX_BATCH_BYTES = 900 * 1024


@dataclass(frozen=True, slots=True)
class GovernanceEvent:
    """One applied decision, ready to publish. `data` holds the decision's fields (JSON)."""

    type: EventType
    subject: str
    data: Mapping[str, JSONValue]
    time: datetime | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


def run_subject(experiment_id: str, run_id: str) -> str:
    """The subject Azure ML's own run events use: `experiments/{id}/runs/{run id}`."""
    return f"experiments/{experiment_id}/runs/{run_id}"


def model_subject(name: str, version: str | int) -> str:
    """The subject form of Azure ML's ModelRegistered events: `models/{name}:{version}`."""
    return f"models/{name}:{version}"


def workspace_source(arm_id: str | None = None, tracking_uri: str | None = None) -> str:
    """The events' `source`: the workspace's ARM id, else the tracking URI without secrets.

    User info, query and fragment are dropped from the URI (they are where credentials sit).
    """
    if arm_id:
        return arm_id
    if not tracking_uri:
        raise ValueError("a workspace ARM id or tracking URI is needed for the events' source")
    parts = urlsplit(tracking_uri)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True, slots=True)
class PublishLimits:
    """How long one publish may take: per-request timeouts and a few quick retries."""

    connection_timeout: float = 5.0
    read_timeout: float = 10.0
    retries: int = 1
    backoff_factor: float = 0.5
    backoff_max: float = 2.0


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened to a batch: `ok` with all sent, or the first error (no secrets)."""

    ok: bool
    sent: int
    total: int
    target: str
    error: str | None = None


def _describe_error(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    reason = getattr(exc, "reason", None)
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    text = " ".join(str(p) for p in (status, reason) if p) or first or type(exc).__name__
    if "Bearer " in text:  # never echo a token, should an SDK message ever carry one
        text = text.split("Bearer ", 1)[0] + "Bearer (masked)"
    return f"{type(exc).__name__}: {text}"[:300]


def _batches(events: Sequence[Any], sizes: Sequence[int]) -> list[list[Any]]:
    batches: list[list[Any]] = [[]]
    used = 0
    for event, size in zip(events, sizes, strict=True):
        if batches[-1] and used + size > MAX_BATCH_BYTES:
            batches.append([])
            used = 0
        batches[-1].append(event)
        used += size
    return [b for b in batches if b]


class EventPublisher:
    """Publishes governance events for one workspace to one Event Grid topic.

    `endpoint` is the topic endpoint (`https://<topic>.<region>-1.eventgrid.azure.net/api/events`);
    the credential needs the EventGrid Data Sender role on the topic. `connection_verify`
    (a CA bundle path) is for a topic behind a private CA, and for tests.
    """

    def __init__(
        self,
        endpoint: str,
        credential: TokenCredential,
        source: str,
        *,
        limits: PublishLimits | None = None,
        connection_verify: str | bool | None = None,
    ) -> None:
        if urlsplit(endpoint).scheme != "https":
            raise ValueError("the Event Grid topic endpoint must be an https:// URL")
        self.endpoint = endpoint
        self.source = source
        self.target = urlsplit(endpoint).hostname or "event grid topic"
        self._credential = credential
        self._limits = limits or PublishLimits()
        self._verify = connection_verify
        self._client: Any = None

    def _request_options(self) -> dict[str, Any]:
        # Per-request options: the public client drops constructor options for basic topics
        # (azure/eventgrid/_patch.py builds the legacy client with endpoint, credential and
        # api_version only), while azure-core reads these from each call's keywords.
        limits = self._limits
        options: dict[str, Any] = {
            "connection_timeout": limits.connection_timeout,
            "read_timeout": limits.read_timeout,
            "retry_total": limits.retries,
            "retry_backoff_factor": limits.backoff_factor,
            "retry_backoff_max": limits.backoff_max,
        }
        if self._verify is not None:
            options["connection_verify"] = self._verify
        return options

    def _cloud_events(self, events: Sequence[GovernanceEvent]) -> list[Any]:
        from azure.core.messaging import CloudEvent

        return [
            CloudEvent(
                source=self.source,
                type=event.type,
                subject=event.subject,
                data=dict(event.data),
                id=event.id,
                time=event.time or datetime.now(UTC),
                datacontenttype="application/json",
            )
            for event in events
        ]

    def publish(self, events: Sequence[GovernanceEvent]) -> DeliveryOutcome:
        """Send `events` (one request per ~900 KB); never raises."""
        total = len(events)
        if not events:
            return DeliveryOutcome(True, 0, 0, self.target)
        sent = 0
        try:
            if self._client is None:
                from azure.eventgrid import EventGridPublisherClient

                self._client = EventGridPublisherClient(self.endpoint, self._credential)
            sizes = [len(json.dumps(dict(e.data), default=str)) + 512 for e in events]
            for batch in _batches(self._cloud_events(events), sizes):
                self._client.send(batch, **self._request_options())
                sent += len(batch)
        except Exception as exc:  # noqa: BLE001 - best effort: reported in the outcome
            return DeliveryOutcome(False, sent, total, self.target, _describe_error(exc))
        return DeliveryOutcome(True, sent, total, self.target)


def publish_events(
    endpoint: str,
    credential: TokenCredential,
    source: str,
    events: Sequence[GovernanceEvent],
    *,
    limits: PublishLimits | None = None,
    connection_verify: str | bool | None = None,
) -> DeliveryOutcome:
    """One-shot `EventPublisher(...).publish(events)`; never raises for a failing topic."""
    try:
        publisher = EventPublisher(
            endpoint, credential, source, limits=limits, connection_verify=connection_verify
        )
    except ValueError as exc:
        return DeliveryOutcome(False, 0, len(events), "event grid topic", str(exc))
    return publisher.publish(events)
