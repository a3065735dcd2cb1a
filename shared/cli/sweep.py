"""`mlgov sweep`: one sweep over every experiment in scope, as the timer runs it."""

from __future__ import annotations

import argparse

from shared.bootstrap import utcnow
from shared.cli.arguments import hours
from shared.cli.cards import add_card_flag, channel_for, emit_with_cards
from shared.cli.common import (
    Command,
    TerminalProgress,
    add_report_flags,
    gateway_for,
    settings_for,
)
from shared.usecases.sweep import sweep


def run(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    if args.catchup_hours is not None:
        settings = settings.model_copy(update={"catchup_hours": args.catchup_hours})
    progress = TerminalProgress.for_args(args)
    gateway = gateway_for(settings)
    try:
        report = sweep(gateway, settings, utcnow(), progress=progress)
    finally:
        progress.done()
    from shared.usecases.notifications import notify

    channel = channel_for(args, settings)
    notify(report, channel, gateway, cap=settings.cleanup_max_runs)
    return emit_with_cards(report, args, channel)


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
