"""Deliver a report's notices as ONE card, after governance acted; best effort, never raises.

The outcome of delivery goes to `report.notifications` (the channel label is masked); it never
changes a governance record, so the exit code stays what governance decided.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from shared.engine.report import Record, Report
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


def notify(
    report: Report, channel: Channel, gateway: TrackingGateway, *, cap: int = 0
) -> Delivery | None:
    """The report's notices (promotions, failures, violations, cleanup) as one card."""
    try:
        cards = report_cards(report, run_link(gateway), cap=cap)
    except Exception as exc:  # never let a card bug turn a governed run into a failed invocation
        log.exception("building the %s card failed", report.command)
        report.notifications.append(
            {
                "channel": channel.label,
                "posted": "false",
                "ok": "false",
                "error": f"{type(exc).__name__}: card not built",
            }
        )
        return None
    return deliver(report, cards, channel)
