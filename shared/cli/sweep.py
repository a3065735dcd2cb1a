"""`mlgov sweep`: one sweep over every experiment in scope, as the timer runs it."""

from __future__ import annotations

import argparse

from shared.bootstrap import build_gateway, utcnow
from shared.cli.common import Command, TerminalProgress, add_report_flags, emit, settings_for
from shared.usecases.sweep import sweep


def run(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    if args.catchup_hours is not None:
        settings = settings.model_copy(update={"catchup_hours": args.catchup_hours})
    progress = TerminalProgress.for_args(args)
    try:
        report = sweep(build_gateway(settings), settings, utcnow(), progress=progress)
    finally:
        progress.done()
    return emit(report, args)


def configure(parser: argparse.ArgumentParser) -> None:
    add_report_flags(parser)
    parser.add_argument(
        "--catchup-hours",
        type=float,
        metavar="N",
        help="check runs that finished in the last N hours (default: GOVERNANCE_CATCHUP_HOURS)",
    )


COMMAND = Command(
    name="sweep",
    help="run every policy over the experiments in scope",
    configure=configure,
    run=run,
)
