"""`mlgov summary`: the digest of a window, as `scheduled_summary` posts it to Teams."""

from __future__ import annotations

import argparse

from shared.cli.app import app_for
from shared.cli.arguments import hours
from shared.cli.cards import add_card_flag, emit_with_cards
from shared.cli.common import Command, add_report_flags


def run(args: argparse.Namespace) -> int:
    # The summary changes nothing, so its --dry-run can only mean: show the card, post nothing.
    app = app_for(args, hold="--dry-run" if args.dry_run else None)
    outcome = app.summary(window_hours=args.window_hours)
    if not args.json:
        summary = outcome.summary
        start, end = (
            t.isoformat(timespec="seconds") for t in (summary.window_start, summary.window_end)
        )
        print(f"Summary {start} -> {end} ({summary.source})")
        print(
            "  " + ", ".join(f"{label}: {count}" for label, count in summary.totals.items()) + "\n"
        )
    return emit_with_cards(outcome, args, app.channel)


def configure(parser: argparse.ArgumentParser) -> None:
    add_report_flags(parser)
    parser.add_argument(
        "--window-hours",
        type=hours,
        metavar="N",
        help="summarise the last N hours (default: GOVERNANCE_SUMMARY_WINDOW_HOURS)",
    )
    add_card_flag(parser)


COMMAND = Command(
    name="summary",
    help="summarise a window's runs and governance actions; post the card to Teams",
    configure=configure,
    run=run,
)
