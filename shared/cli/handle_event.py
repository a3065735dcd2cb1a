"""`mlgov handle-event FILE|-`: handle run events from a file or stdin, as `on_run_event` does.

The input is one event or a JSON array, in the Event Grid or the CloudEvents schema. Valid
events are handled even when others in the same input are malformed; those make the exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.bootstrap import utcnow
from shared.cli.cards import add_card_flag, channel_for, emit_with_cards
from shared.cli.common import EXIT_INVALID, Command, add_report_flags, gateway_for, settings_for
from shared.errors import InvalidEvent


def _read(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidEvent(None, f"cannot read {source}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from shared.events import parse_events
    from shared.usecases.notifications import notify
    from shared.usecases.run_event import handle_events

    settings = settings_for(args)
    events, rejected = parse_events(_read(args.file))
    gateway = gateway_for(settings)
    report = handle_events(events, gateway, settings, utcnow())
    if rejected:
        report.extra["rejected_events"] = [
            {"event_id": exc.event_id, "problem": exc.problem} for exc in rejected
        ]
    channel = channel_for(args, settings)
    notify(report, channel, gateway)
    code = emit_with_cards(report, args, channel)
    for exc in rejected:
        print(f"mlgov: invalid input: {exc}", file=sys.stderr)
    return EXIT_INVALID if rejected else code


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", metavar="FILE|-", help="JSON file with one event or an array; - reads stdin"
    )
    add_report_flags(parser)
    add_card_flag(parser)


COMMAND = Command(
    name="handle-event",
    help="handle Azure ML run events (Event Grid or CloudEvents JSON) as on_run_event does",
    configure=configure,
    run=run,
)
