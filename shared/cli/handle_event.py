"""`mlgov handle-event FILE|-`: handle run events from a file or stdin, as `on_run_event` does.

The input is one event or a JSON array, in the Event Grid or the CloudEvents schema. Valid
events are handled even when others in the same input are malformed; those make the exit 2.
Over several workspaces each event goes to the workspace it names (`shared.cli.estate_events`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.bootstrap import several_workspaces
from shared.bounded import MAX_JSON_BYTES, BoundedInputError, read_text
from shared.cli.app import app_for
from shared.cli.cards import add_card_flag, emit_interrupted, emit_with_cards
from shared.cli.common import Command, add_report_flags, settings_for
from shared.cli.estate_events import handle_over_estate
from shared.errors import InvalidEvent, TrackingUnavailable


def _read(source: str) -> str | bytes:
    """At most `MAX_JSON_BYTES` + 1 bytes: an endless input (`/dev/zero`) ends in a refusal."""
    if source == "-":
        return sys.stdin.buffer.read(MAX_JSON_BYTES + 1)
    try:
        return read_text(Path(source), max_bytes=MAX_JSON_BYTES)
    except BoundedInputError as exc:
        raise InvalidEvent(None, f"cannot read {source}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    text = _read(args.file)
    if several_workspaces(settings):
        return handle_over_estate(args, settings, text)
    app = app_for(args, settings)
    try:
        outcome = app.handle_events(text)
    except TrackingUnavailable as unavailable:
        return emit_interrupted(unavailable, args, app.channel)
    code = emit_with_cards(outcome, args, app.channel)
    for exc in outcome.rejected:
        print(f"mlgov: invalid input: {exc}", file=sys.stderr)
    return code


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
