"""Cards from the command line: post to Teams, or show the message that would have been posted.

A dry run posts too (its cards say DRY RUN). Without a webhook the message goes to `--card-out
FILE`, else into the `--json` report (`cards`), else before the table on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared.app.outcomes import EXIT_FAILED, Outcome
from shared.bootstrap import teams_channel
from shared.cli.common import emit
from shared.engine.report import partial_of
from shared.errors import TrackingUnavailable
from shared.notify.sinks import Channel, MemoryCardSink
from shared.notify.teams import FileCardSink
from shared.settings import Settings


def add_card_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--card-out",
        type=Path,
        metavar="FILE",
        help="write the Teams message to FILE instead of posting it (JSON, as the webhook "
        "would receive it)",
    )


def _why_not_posted(settings: Settings, hold: str | None) -> str:
    if hold:
        return hold
    if settings.teams_webhook_url is None:
        return "GOVERNANCE_TEAMS_WEBHOOK_URL is not set"
    return "--card-out"


def channel_for(
    args: argparse.Namespace, settings: Settings, *, hold: str | None = None
) -> Channel:
    """`--card-out` first, then the webhook (unless `hold` says why not), then the output."""
    out: Path | None = getattr(args, "card_out", None)
    why = _why_not_posted(settings, hold)
    if out is not None:
        return Channel(FileCardSink(out), f"file {out} (not posted: {why})")
    teams = None if hold else teams_channel(settings)
    if teams is not None:
        return teams
    where = "report" if getattr(args, "json", False) else "stdout"
    return Channel(MemoryCardSink(), f"{where} (not posted: {why})")


def emit_with_cards(outcome: Outcome, args: argparse.Namespace, channel: Channel) -> int:
    """Print the report and any message kept in memory; returns the outcome's exit code
    (governance's alone: delivery never changes it)."""
    report = outcome.report
    kept = channel.sink.messages if isinstance(channel.sink, MemoryCardSink) else []
    as_json = bool(getattr(args, "json", False))
    if kept and as_json:
        report.extra["cards"] = kept
    elif kept:
        # Before the table, so that the report's last line stays its totals.
        print(f"Teams message ({channel.label}):")
        for message in kept:
            print(json.dumps(message, indent=2, ensure_ascii=False))
        print()
    emit(report, args)
    delivery = outcome.delivery
    if delivery is not None and not delivery.ok:
        print(
            f"mlgov: notification via {channel.label} failed "
            f"(governance unaffected): {delivery.error}",
            file=sys.stderr,
        )
    return outcome.exit_code


def emit_interrupted(exc: TrackingUnavailable, args: argparse.Namespace, channel: Channel) -> int:
    """The server went away halfway: print what was done before (the partial report, its
    card) when anything was, then the error on stderr; exit 1."""
    report = partial_of(exc)
    if report is not None and report.records:
        emit_with_cards(Outcome(report=report), args, channel)
    print(f"mlgov: {exc}", file=sys.stderr)
    return EXIT_FAILED
