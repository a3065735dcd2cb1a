"""`mlgov sweep`: one sweep over every experiment in scope, as the timer runs it."""

from __future__ import annotations

import argparse

from shared.cli.app import app_for
from shared.cli.arguments import hours
from shared.cli.cards import add_card_flag, emit_with_cards
from shared.cli.common import Command, TerminalProgress, add_report_flags, settings_for


def run(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    if args.catchup_hours is not None:
        settings = settings.model_copy(update={"catchup_hours": args.catchup_hours})
    app = app_for(args, settings)
    progress = TerminalProgress.for_args(args)
    try:
        outcome = app.sweep(progress=progress)
    finally:
        progress.done()
    return emit_with_cards(outcome, args, app.channel)


def configure(parser: argparse.ArgumentParser) -> None:
    add_report_flags(parser)
    add_card_flag(parser)
    parser.add_argument(
        "--catchup-hours",
        type=hours,
        metavar="N",
        help="check runs that finished in the last N hours (default: GOVERNANCE_CATCHUP_HOURS)",
    )


COMMAND = Command(
    name="sweep",
    help="run every policy over the experiments in scope",
    configure=configure,
    run=run,
)
