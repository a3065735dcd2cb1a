"""`mlgov summary`: the digest of a window, as `scheduled_summary` posts it to Teams."""

from __future__ import annotations

import argparse

from shared.bootstrap import utcnow
from shared.cli.arguments import hours
from shared.cli.cards import add_card_flag, channel_for, emit_with_cards
from shared.cli.common import Command, add_report_flags, gateway_for, settings_for


def run(args: argparse.Namespace) -> int:
    from shared.notify.cards import summary_card
    from shared.usecases.notifications import deliver
    from shared.usecases.summary import summarize

    settings = settings_for(args)
    gateway = gateway_for(settings)
    result = summarize(gateway, settings, utcnow(), window_hours=args.window_hours)
    # The summary changes nothing, so its --dry-run can only mean: show the card, post nothing.
    hold = "--dry-run" if args.dry_run else None
    channel = channel_for(args, settings, hold=hold)
    deliver(result.report, [summary_card(result.summary)], channel)
    if not args.json:
        totals = result.summary.totals
        window = result.report.extra["summary"]
        assert isinstance(window, dict)
        print(f"Summary {window['window_start']} -> {window['window_end']} ({window['source']})")
        print("  " + ", ".join(f"{label}: {count}" for label, count in totals.items()) + "\n")
    return emit_with_cards(result.report, args, channel)


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
