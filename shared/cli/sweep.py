"""`mlgov sweep`: one sweep over every experiment in scope, as the timer runs it; over every
workspace of the estate in-process (bounded parallelism), or one of them (`--workspace`)."""

from __future__ import annotations

import argparse
import sys

from shared.app.outcomes import Outcome
from shared.bootstrap import build_estate, several_workspaces
from shared.cli.app import app_for
from shared.cli.arguments import hours
from shared.cli.cards import add_card_flag, channel_for, emit_interrupted, emit_with_cards
from shared.cli.common import Command, TerminalProgress, add_report_flags, settings_for
from shared.errors import TrackingUnavailable, UsageError
from shared.estate import Estate, NotInEstate
from shared.settings import Settings


def run(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    if args.catchup_hours is not None:
        settings = settings.model_copy(update={"catchup_hours": args.catchup_hours})
    if several_workspaces(settings):
        return _over_estate(args, settings)
    if args.workspace is not None:
        _select(Estate.from_settings(settings), args.workspace)  # it must be the one named
    app = app_for(args, settings)
    progress = TerminalProgress.for_args(args)
    try:
        outcome = app.sweep(progress=progress)
    except TrackingUnavailable as exc:
        progress.done()
        return emit_interrupted(exc, args, app.channel)
    finally:
        progress.done()
    return emit_with_cards(outcome, args, app.channel)


def _select(estate: Estate, wanted: str) -> None:
    try:
        estate.select(wanted)
    except NotInEstate as exc:
        raise UsageError(f"--workspace: {exc}") from None


def _over_estate(args: argparse.Namespace, settings: Settings) -> int:
    channel = channel_for(args, settings)
    estate_app = build_estate(settings, channel=channel)
    if args.workspace is not None:
        try:
            member = estate_app.members().select(args.workspace)
        except NotInEstate as exc:
            raise UsageError(f"--workspace: {exc}") from None
        try:
            outcome = estate_app.sweep_member(member)
        except TrackingUnavailable as exc:
            return emit_interrupted(exc, args, estate_app.channel)
        return emit_with_cards(outcome, args, estate_app.channel)
    swept = estate_app.sweep()
    code = emit_with_cards(Outcome(report=swept.report), args, estate_app.channel)
    # After the report, as the single sweep's interruption: its last line stays the totals.
    for failed in swept.failed:
        if failed.partial is not None and failed.interrupted:
            done = f"interrupted after {len(failed.partial.records)} decisions (in the report)"
            print(f"workspace {failed.member.name}: {done}: {failed.error}", file=sys.stderr)
        else:
            print(f"workspace {failed.member.name}: not swept: {failed.error}", file=sys.stderr)
    return max(code, swept.exit_code)


def configure(parser: argparse.ArgumentParser) -> None:
    add_report_flags(parser)
    add_card_flag(parser)
    parser.add_argument(
        "--catchup-hours",
        type=hours,
        metavar="N",
        help="check runs that finished in the last N hours (default: GOVERNANCE_CATCHUP_HOURS)",
    )
    parser.add_argument(
        "--workspace",
        metavar="NAME|ARM_ID",
        help="sweep this workspace of the estate only (default: every workspace)",
    )


COMMAND = Command(
    name="sweep",
    help="run every policy over the experiments in scope",
    configure=configure,
    run=run,
)
