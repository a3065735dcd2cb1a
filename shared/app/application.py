"""The application: the operations every entry point calls (a Functions trigger, a CLI verb).

Each operation runs its use case, logs its decisions when given a logger, delivers its card on
the app's channel and marks the runs whose failure notice went out: written once, here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from shared.app.outcomes import EventsOutcome, Outcome, RestoreOutcome, SummaryOutcome
from shared.engine.report import Report, log_decisions
from shared.engine.results import RestoreUnsupported
from shared.errors import InvalidEvent, TrackingError
from shared.events import IgnoredEvent, RunEvent, parse_event, parse_events
from shared.notify.cards import summary_card
from shared.notify.sinks import Channel
from shared.notify.teams import Delivery
from shared.settings import Settings
from shared.tracking.gateway import TrackingGateway
from shared.usecases import notifications
from shared.usecases.restore import restore as restore_runs
from shared.usecases.run_event import handle_events, raise_for_redelivery
from shared.usecases.summary import summarize
from shared.usecases.sweep import Progress
from shared.usecases.sweep import sweep as sweep_experiments

Clock = Callable[[], datetime]
# An event as the CLI reads it (JSON text: one event or an array), or one decoded event as
# the Functions host receives it.
EventPayload = str | bytes | Mapping[str, object]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class App:
    """Settings, the tracking gateway, where cards go and what time it is."""

    settings: Settings
    gateway: TrackingGateway
    channel: Channel
    clock: Clock = utcnow

    def with_channel(self, channel: Channel) -> App:
        """The same app, its cards going elsewhere (the demo keeps one file per step)."""
        return replace(self, channel=channel)

    def handle_events(
        self, payload: EventPayload, *, log: logging.Logger | None = None
    ) -> EventsOutcome:
        """Parse, govern each run an event is about, deliver the card, mark the notified runs.

        Malformed events are returned as `rejected` (and listed in the report); text that is
        not JSON at all raises `InvalidEvent`. `TrackingUnavailable` propagates.
        """
        events, rejected = _parse(payload)
        report = handle_events(events, self.gateway, self.settings, self.clock())
        if rejected:
            report.extra["rejected_events"] = [
                {"event_id": exc.event_id, "problem": exc.problem} for exc in rejected
            ]
        delivery = self._deliver(report, log)
        redelivery: TrackingError | None = None
        try:
            raise_for_redelivery(report)
        except TrackingError as exc:
            redelivery = exc
        return EventsOutcome(
            report=report, delivery=delivery, rejected=tuple(rejected), redelivery=redelivery
        )

    def sweep(
        self, *, progress: Progress | None = None, log: logging.Logger | None = None
    ) -> Outcome:
        """Cleanup, then catch-up over every experiment in scope; one card for all of it."""
        report = sweep_experiments(self.gateway, self.settings, self.clock(), progress=progress)
        return Outcome(
            report=report, delivery=self._deliver(report, log, cap=self.settings.cleanup_max_runs)
        )

    def summary(self, *, window_hours: float | None = None) -> SummaryOutcome:
        """The digest of the window before now, and its card."""
        result = summarize(self.gateway, self.settings, self.clock(), window_hours=window_hours)
        delivery = notifications.deliver(
            result.report, [summary_card(result.summary)], self.channel
        )
        return SummaryOutcome(report=result.report, delivery=delivery, summary=result.summary)

    def restore(self, since_hours: float) -> RestoreOutcome:
        """Undo this tool's deletions of the last `since_hours` (no card: the CLI reports it)."""
        report = restore_runs(self.gateway, self.settings, self.clock(), since_hours)
        return RestoreOutcome(report=report, unsupported=_unsupported(report))

    def _deliver(
        self, report: Report, log: logging.Logger | None, *, cap: int = 0
    ) -> Delivery | None:
        # Decisions are logged before delivery: the log says what governance did, whatever
        # becomes of the card (and the marks that follow delivery are the card's business).
        if log is not None:
            log_decisions(report, log)
        return notifications.notify(report, self.channel, self.gateway, cap=cap, clock=self.clock)


def _parse(payload: EventPayload) -> tuple[list[RunEvent | IgnoredEvent], list[InvalidEvent]]:
    if isinstance(payload, str | bytes):
        return parse_events(payload)
    try:
        return [parse_event(dict(payload))], []
    except InvalidEvent as exc:
        return [], [exc]


def _unsupported(report: Report) -> str | None:
    """Why this server cannot restore runs, when a restore met that refusal."""
    for record in report.records:
        if isinstance(record.result, RestoreUnsupported):
            return record.reason
    return None
