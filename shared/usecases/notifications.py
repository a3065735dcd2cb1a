"""Deliver a report's notices as ONE card, after governance acted; best effort, never raises.

The outcome of delivery goes to `report.notifications` (the channel label is masked); it never
changes a governance record. Once a card is delivered, each run whose failure notice it
carried is tagged `governance.failure_notified_at` (`mark_notified`), so a replayed event does
not alert twice while a failed delivery leaves the run unmarked for the next attempt. A
promoted version the card announced whose run could not be tagged `governance.promoted_to`
is tagged `governance.announced_at` (`mark_announced`): an invocation that later converges
on that version does not announce it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from shared import tags as T
from shared.engine.actions import (
    RegisterModelVersion,
    RunFailedNotice,
    SetRunTags,
    SetVersionTags,
    Unable,
)
from shared.engine.executor import Executor
from shared.engine.report import Record, Report
from shared.engine.results import Registered
from shared.errors import GovernanceError, TrackingUnavailable
from shared.model import Run
from shared.notify.blocks import Card
from shared.notify.from_report import RunLink, one_card, report_cards
from shared.notify.sinks import Channel
from shared.notify.sizing import fit, size_of
from shared.notify.teams import Delivery
from shared.tracking.gateway import TrackingGateway

log = logging.getLogger(__name__)


def _kinds(cards: Sequence[Mapping[str, object]]) -> str:
    """What the cards are about, from their titles (the first text of each)."""
    titles = []
    for card in cards:
        body = card.get("body")
        first = body[0] if isinstance(body, list) and body else {}
        titles.append(str(first.get("text", "")) if isinstance(first, dict) else "")
    return " | ".join(t for t in titles if t)


def deliver(report: Report, cards: Sequence[Card], channel: Channel) -> Delivery | None:
    """Send `cards` as one message on `channel`, recording how it went in the report."""
    card = one_card(cards, report.command)
    if card is None:
        return None
    try:
        size = size_of(fit(card))
        delivery = channel.sink.post(card)
    except Exception as exc:  # a notifier bug must not fail the governance that already ran
        log.exception("notification via %s crashed", channel.label)
        size, delivery = 0, Delivery(False, None, 0, f"{type(exc).__name__}: notifier crashed")
    report.notifications.append(
        {
            "channel": channel.label,
            "posted": str(channel.posts and delivery.ok).lower(),
            "ok": str(delivery.ok).lower(),
            "status": "" if delivery.status is None else str(delivery.status),
            "attempts": str(delivery.attempts),
            "error": delivery.error or "",
            "notices": str(len(cards)),
            "about": _kinds(cards),
            "bytes": str(size),
        }
    )
    if not delivery.ok:
        log.warning(
            "%s: notification via %s failed (governance unaffected): %s",
            report.command,
            channel.label,
            delivery.error,
        )
    return delivery


def run_link(gateway: TrackingGateway) -> RunLink:
    """Links for records: Azure ML studio or the MLflow UI, from the run and experiment ids."""

    def link(record: Record) -> str | None:
        if not record.run_id or not record.experiment_id:
            return None
        stub = Run(record.run_id, record.experiment_id, "", None, None)
        return gateway.run_url(stub)

    return link


MARK_POLICY = "run-event"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def mark_notified(
    report: Report,
    gateway: TrackingGateway,
    delivery: Delivery | None,
    *,
    clock: Callable[[], datetime] = _utcnow,
) -> None:
    """Tag each run whose failure notice went out in the delivered card, through the executor
    (the only mutating caller), adding those records to the report.

    Nothing is marked after a failed delivery or in dry run: the next event for the run then
    sends the notice again rather than losing it. Never raises: the card is already out.
    """
    if delivery is None or not delivery.ok or report.dry_run:
        return
    executor = Executor(gateway, dry_run=False)
    notified_at = clock().isoformat()
    announced = [
        r
        for r in report.records
        if r.outcome == "applied" and isinstance(r.decision, RunFailedNotice)
    ]
    for record in announced:
        action = SetRunTags(
            policy=MARK_POLICY,
            target=record.decision.target,
            reason="failure notice delivered",
            set_tags={T.FAILURE_NOTIFIED_AT: notified_at},
        )
        try:
            report.add(executor.apply_one(action))
        except TrackingUnavailable as exc:
            # Unmarked, a redelivered event alerts once more: better than no alert.
            log.warning("run %s not marked notified: %s", record.run_id, exc)
            # Not attempted as such: the record names the step, with no details (as always).
            reason = f"{action.reason}; not marked: {exc}"
            report.add(Record(Unable.instead_of(action, reason), "failed", reason))


def notify(
    report: Report,
    channel: Channel,
    gateway: TrackingGateway,
    *,
    cap: int = 0,
    clock: Callable[[], datetime] = _utcnow,
) -> Delivery | None:
    """The report's notices (promotions, failures, violations, cleanup) as one card; the
    runs whose failure notice it carried are marked notified at `clock()` once it is out.

    None when there was nothing to say; a failed `Delivery` when the card could not be built.
    """
    try:
        cards = report_cards(report, run_link(gateway), cap=cap)
    except Exception as exc:  # never let a card bug turn a governed run into a failed invocation
        log.exception("building the %s card failed", report.command)
        failed = Delivery(False, None, 0, f"{type(exc).__name__}: card not built")
        report.notifications.append(
            {
                "channel": channel.label,
                "posted": "false",
                "ok": "false",
                "error": failed.error or "",
            }
        )
        return failed
    delivery = deliver(report, cards, channel)
    mark_notified(report, gateway, delivery, clock=clock)
    mark_announced(report, gateway, delivery, clock=clock)
    return delivery


def mark_announced(
    report: Report,
    gateway: TrackingGateway,
    delivery: Delivery | None,
    *,
    clock: Callable[[], datetime] = _utcnow,
) -> None:
    """Tag `governance.announced_at` on each version whose promotion the delivered card
    announced and whose run is not tagged `governance.promoted_to` (see below).

    A bookkeeping mark, logged rather than reported (the promotion's record says what was
    done). Unmarked (the server went away, the card failed), an invocation that takes the
    version over later announces it once more: better than never. Never raises.
    """
    if delivery is None or not delivery.ok or report.dry_run:
        return
    executor = Executor(gateway, dry_run=False)
    announced_at = clock().isoformat()
    for record in report.records:
        action, result = record.decision, record.result
        if (
            not (
                record.outcome == "applied"
                and isinstance(action, RegisterModelVersion)
                and isinstance(result, Registered)
            )
            or result.run_tagged
        ):
            # A run tagged `governance.promoted_to` is not decided again, so its version is
            # never taken over: the mark would be one request for nothing. It is written only
            # when the run could not be tagged (the invocation failed after the alias moved).
            continue
        mark = SetVersionTags(
            policy=action.policy,
            target=action.target,
            reason="promotion announced",
            model_name=action.model_name,
            version=result.version,
            set_tags={T.ANNOUNCED_AT: announced_at},
        )
        try:
            done = executor.apply_one(mark)
        except (GovernanceError, TrackingUnavailable) as exc:
            done = Record(mark, "failed", str(exc))
        if done.outcome == "failed":
            log.warning(
                "%s v%s not marked announced: %s", action.model_name, result.version, done.reason
            )
