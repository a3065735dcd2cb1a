"""The `mlgov` command line: one module per verb, each with `add_parser` and `run`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from shared.cli import check, demo, handle_event, restore, summary, sweep
from shared.cli.common import EXIT_INVALID, EXIT_OK, Command
from shared.errors import InvalidEvent, SettingsError, TrackingUnavailable, UsageError

COMMANDS: tuple[Command, ...] = (
    check.COMMAND,
    sweep.COMMAND,
    handle_event.COMMAND,
    restore.COMMAND,
    summary.COMMAND,
    demo.COMMAND,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlgov",
        description="Governance automation for MLflow experiment tracking.",
        epilog="Settings come from the environment (GOVERNANCE_*, MLFLOW_TRACKING_URI); "
        "exit codes: 0 success, 1 an action failed, 2 invalid settings or input.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if verbosity < 2:
        # MLflow and alembic narrate store creation at INFO; that is noise on a terminal.
        for name in ("mlflow", "alembic", "urllib3", "azure"):
            logging.getLogger(name).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    from shared.redact_logs import redacted_std

    # Everything the CLI prints (report, table, cards, errors, log lines) is redacted.
    with redacted_std():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    from shared.redact_logs import install_logging

    # MLflow configures its own logger at import and narrates store creation at INFO.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # MLflow writes "View run" links on stdout, which would corrupt `--json` output.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    install_logging()
    try:
        code: int = args.handler(args)
    except SettingsError as exc:
        print(f"mlgov: invalid setting: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (InvalidEvent, UsageError) as exc:
        print(f"mlgov: invalid input: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except TrackingUnavailable as exc:
        print(f"mlgov: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code if code is not None else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
