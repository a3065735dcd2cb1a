"""The application: the operations every entry point calls (a Functions trigger, a CLI verb).

Each operation runs its use case, logs its decisions when given a logger, delivers its card on
the app's channel and marks the runs whose failure notice went out: written once, here. Each
runs under its deadline (`shared.budget`): past it, no tracking call is started.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from shared.app import decision_events
from shared.app.azure import AzureServices, workspace_of
from shared.app.outcomes import EventsOutcome, Outcome, RestoreOutcome, SummaryOutcome
from shared.budget import Budget, deadline, default_budget
from shared.engine.report import Report, log_decisions, partial_of
from shared.engine.results import RestoreUnsupported
from shared.errors import InvalidEvent, TrackingError, TrackingUnavailable
from shared.events import IgnoredEvent, RunEvent, parse_event, parse_events
from shared.notify.cards import summary_card
from shared.notify.sinks import Channel
from shared.notify.teams import Delivery
from shared.redact import redact
from shared.settings import Settings
from shared.tracking.gateway import TrackingGateway
from shared.usecases import notifications
from shared.usecases.restore import Fallback
from shared.usecases.restore import restore as restore_runs
from shared.usecases.run_event import handle_events, raise_for_redelivery
from shared.usecases.summary import summarize
from shared.usecases.sweep import Progress
from shared.usecases.sweep import sweep as sweep_experiments

Clock = Callable[[], datetime]
# An event as the CLI reads it (JSON text: one event or an array), or one decoded event as
# the Functions host receives it.
EventPayload = str | bytes | Mapping[str, object]


_log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class App:
    """Settings, the tracking gateway, where cards go, what time it is, how long it may take."""

    settings: Settings
    gateway: TrackingGateway
    channel: Channel
    clock: Clock = utcnow
    budget: Budget = field(default_factory=default_budget)
    # The process's Azure side (credential, job restore, events out); None: no Azure at all.
    azure: AzureServices | None = None

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
        self._warn()
        events, rejected = _parse(payload)
        # Event Grid's budget per event (a CLI batch of n events gets n of them).
        seconds = self.budget.event_s * max(1, len(events))
        with deadline("event invocation", seconds, self.budget):
            try:
                report = handle_events(events, self.gateway, self.settings, self.clock())
            except TrackingUnavailable as exc:
                self._interrupted(exc, log)
                raise
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
        self._warn()
        with deadline("sweep", self.budget.sweep_s, self.budget):
            try:
                report = sweep_experiments(
                    self.gateway, self.settings, self.clock(), progress=progress
                )
            except TrackingUnavailable as exc:
                self._interrupted(exc, log, cap=self.settings.cleanup_max_runs)
                raise
            delivery = self._deliver(report, log, cap=self.settings.cleanup_max_runs)
        return Outcome(report=report, delivery=delivery)

    def summary(self, *, window_hours: float | None = None) -> SummaryOutcome:
        """The digest of the window before now, and its card."""
        self._warn()
        with deadline("summary", self.budget.summary_s, self.budget):
            result = summarize(self.gateway, self.settings, self.clock(), window_hours=window_hours)
            delivery = notifications.deliver(
                result.report, [summary_card(result.summary)], self.channel
            )
        _redact_notifications(result.report)
        return SummaryOutcome(report=result.report, delivery=delivery, summary=result.summary)

    def restore(self, since_hours: float) -> RestoreOutcome:
        """Undo this tool's deletions of the last `since_hours` (no card: the CLI reports it)."""
        self._warn()
        with deadline("restore", self.budget.restore_s, self.budget):
            try:
                report = restore_runs(
                    self.gateway,
                    self.settings,
                    self.clock(),
                    since_hours,
                    fallback=self._fallback(),
                )
            except TrackingUnavailable as exc:
                # No card for a restore: what it restored before is on `exc` for the CLI.
                partial = partial_of(exc)
                if partial is not None:
                    partial.extra["interrupted"] = redact(str(exc))
                raise
            decision_events.publish(report, self.settings, self.azure)
        return RestoreOutcome(report=report, unsupported=_unsupported(report))

    def _warn(self) -> None:
        """A best-effort setting that is unusable (an unresolved Key Vault reference for the
        webhook) is logged as an error on every invocation; governance goes on without it."""
        for warning in self.settings.warnings:
            _log.error("%s: %s (governance goes on)", warning.setting, warning.problem)

    def _fallback(self) -> Fallback | None:
        """Restore through azure-ai-ml (`jobs.restore`) where the workspace is known."""
        azure, ref = self.azure, workspace_of(self.settings)
        if azure is None or ref is None:
            return None
        return Fallback("azure-ai-ml jobs.restore", lambda run_id: azure.restore_job(ref, run_id))

    def _interrupted(
        self, exc: TrackingUnavailable, log: logging.Logger | None, *, cap: int = 0
    ) -> None:
        """The server went away halfway: what was done before is still logged, announced
        (and its runs marked, where the server lets us) before the invocation fails.

        The report stays on `exc` (`partial_of`) with the error under `interrupted`; the
        caller re-raises, so the host retries and the CLI exits 1.
        """
        report = partial_of(exc)
        if report is None:
            return
        report.extra["interrupted"] = redact(str(exc))
        if not report.records:
            return
        try:
            self._deliver(report, log, cap=cap)
        except Exception:  # noqa: BLE001 (the server's failure is the one to raise)
            _log.exception(
                "delivering the %s card of an interrupted invocation failed", report.command
            )

    def _deliver(
        self, report: Report, log: logging.Logger | None, *, cap: int = 0
    ) -> Delivery | None:
        # Decisions are logged before delivery: the log says what governance did, whatever
        # becomes of the card (and the marks that follow delivery are the card's business).
        if log is not None:
            log_decisions(report, log)
        delivery = notifications.notify(
            report, self.channel, self.gateway, cap=cap, clock=self.clock
        )
        # Governance events out go like the card: best effort, reported, after the decisions.
        decision_events.publish(report, self.settings, self.azure)
        _redact_notifications(report)
        return delivery


def _redact_notifications(report: Report) -> None:
    # A receiver's answer is quoted in the error: it may echo the webhook URL in any encoding.
    for entry in report.notifications:
        if entry.get("error"):
            entry["error"] = redact(entry["error"])


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
