"""`mlgov summary`: the digest of a window, as `scheduled_summary` posts it to Teams; over an
estate of several workspaces, one digest of all of them (totals first, a row per workspace)."""

from __future__ import annotations

import argparse

from shared.app.outcomes import Outcome
from shared.bootstrap import build_estate, several_workspaces
from shared.cli.app import app_for
from shared.cli.arguments import hours
from shared.cli.cards import add_card_flag, channel_for, emit_with_cards
from shared.cli.common import Command, add_report_flags, settings_for
from shared.notify.notices import EstateSummary, Summary


def run(args: argparse.Namespace) -> int:
    # The summary changes nothing, so its --dry-run can only mean: show the card, post nothing.
    hold = "--dry-run" if args.dry_run else None
    settings = settings_for(args)
    if several_workspaces(settings):
        estate_app = build_estate(settings, channel=channel_for(args, settings, hold=hold))
        many = estate_app.summary(window_hours=args.window_hours)
        outcome: Outcome = many
        summary: Summary | EstateSummary = many.summary
        channel = estate_app.channel
    else:
        app = app_for(args, settings, hold=hold)
        single = app.summary(window_hours=args.window_hours)
        outcome, summary, channel = single, single.summary, app.channel
    if not args.json:
        start, end = (
            t.isoformat(timespec="seconds") for t in (summary.window_start, summary.window_end)
        )
        source = summary.source if isinstance(summary, Summary) else _workspaces(summary)
        print(f"Summary {start} -> {end} ({source})")
        print(
            "  " + ", ".join(f"{label}: {count}" for label, count in summary.totals.items()) + "\n"
        )
        if isinstance(summary, EstateSummary):
            for row in summary.workspaces:
                counts = ", ".join(f"{k}: {v}" for k, v in row.totals.items() if v)
                print(f"  {row.name}: {row.error or counts or 'no activity'}")
            print()
    return emit_with_cards(outcome, args, channel)


def _workspaces(summary: EstateSummary) -> str:
    count = len(summary.workspaces)
    return f"{count} workspace{'' if count == 1 else 's'}"


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
