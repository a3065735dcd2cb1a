"""`mlgov handle-event` over an estate: each event goes to the workspace its `topic` (Event
Grid schema) or `source` (CloudEvents) names, as `on_run_event` routes it; an event naming no
workspace of the estate is dropped with a line on stderr and changes nothing (exit 2).

The events of one workspace are handled together, in their input order, by that workspace's
App (one card per workspace); the report holds every workspace's decisions, in the order the
workspaces first appear in the input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping

from shared.app.estate import event_workspace
from shared.app.outcomes import EXIT_INVALID, EventsOutcome
from shared.bootstrap import build_estate
from shared.cli.cards import channel_for, emit_interrupted, emit_with_cards
from shared.engine.report import Report
from shared.errors import InvalidEvent, TrackingUnavailable
from shared.estate import Member
from shared.events import decode_events
from shared.settings import Settings


def handle_over_estate(args: argparse.Namespace, settings: Settings, text: str | bytes) -> int:
    document = decode_events(text)
    single = not isinstance(document, list)
    items: list[object] = list(document) if isinstance(document, list) else [document]
    estate_app = build_estate(settings, channel=channel_for(args, settings))
    groups: dict[str, tuple[Member, list[object]]] = {}
    dropped = 0
    for index, item in enumerate(items):
        named = event_workspace(item) if isinstance(item, Mapping) else None
        member = estate_app.estate.find(named)
        if member is None:
            dropped += 1
            event_id = item.get("id") if isinstance(item, Mapping) else None
            label = f"event {str(event_id)[:80]}" if event_id is not None else f"event #{index}"
            where = "no workspace" if named is None else f"workspace {named[:300]!r}"
            print(
                f"mlgov: {label} names {where}, which is not in the estate: dropped",
                file=sys.stderr,
            )
            continue
        groups.setdefault(member.key, (member, []))[1].append(item)
    report = Report(command="handle-event", dry_run=settings.dry_run)
    rejected: list[InvalidEvent] = []
    interrupted = 0
    for member, batch in groups.values():
        app = estate_app.app_for(member)
        try:
            outcome = app.handle_events(json.dumps(batch[0] if single else batch))
        except TrackingUnavailable as exc:
            print(f"mlgov: workspace {member.name}:", file=sys.stderr)
            interrupted = max(interrupted, emit_interrupted(exc, args, estate_app.channel))
            continue
        report.extend(outcome.report.records)
        rejected.extend(outcome.rejected)
    if rejected:
        report.extra["rejected_events"] = [
            {"event_id": bad.event_id, "problem": bad.problem} for bad in rejected
        ]
    code = emit_with_cards(
        EventsOutcome(report=report, rejected=tuple(rejected)), args, estate_app.channel
    )
    for bad in rejected:
        print(f"mlgov: invalid input: {bad}", file=sys.stderr)
    return max(code, interrupted, EXIT_INVALID if dropped else 0)
