"""`mlgov restore [--since HOURS]`: undo this tool's deletions in a window (restore the runs).

Where the tracking server cannot restore and the workspace is known, the App restores the
jobs through azure-ai-ml; each record's `details.restored_via` then says so.
"""

from __future__ import annotations

import argparse
import sys

from shared.cli.app import app_for
from shared.cli.arguments import hours
from shared.cli.cards import emit_interrupted
from shared.cli.common import Command, add_report_flags, emit
from shared.errors import TrackingUnavailable
from shared.notify.sinks import Channel, MemoryCardSink

DEFAULT_SINCE_HOURS = 24.0


def run(args: argparse.Namespace) -> int:
    app = app_for(args)
    try:
        outcome = app.restore(args.since)
    except TrackingUnavailable as exc:
        # What was restored before the server went away is printed (a restore has no card).
        return emit_interrupted(exc, args, Channel(MemoryCardSink(), "none"))
    emit(outcome.report, args)
    if outcome.unsupported:
        print(
            "mlgov: this tracking server cannot restore deleted runs, so nothing was restored.\n"
            f"  {outcome.unsupported}\n"
            "  On Azure ML, name the workspace (AZURE_ML_WORKSPACE_ID, or AZURE_SUBSCRIPTION_ID,"
            " AZURE_ML_WORKSPACE_RESOURCE_GROUP and AZURE_ML_WORKSPACE_NAME) and mlgov restores"
            " the jobs through azure-ai-ml; or `az ml job restore --name <run id>` for each run"
            " listed above.",
            file=sys.stderr,
        )
    return outcome.exit_code


def configure(parser: argparse.ArgumentParser) -> None:
    add_report_flags(parser)
    parser.add_argument(
        "--since",
        type=hours,
        default=DEFAULT_SINCE_HOURS,
        metavar="HOURS",
        help=f"restore runs this tool deleted in the last HOURS (default {DEFAULT_SINCE_HOURS:g})",
    )


COMMAND = Command(
    name="restore",
    help="restore the runs this tool deleted (by its governance.deleted_* tags)",
    configure=configure,
    run=run,
)
