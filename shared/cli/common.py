"""Plumbing shared by the verbs: settings, the store check, output, progress on a terminal."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

# The exit codes are the App's outcomes' (re-exported for the verbs).
from shared.app.outcomes import EXIT_FAILED as EXIT_FAILED
from shared.app.outcomes import EXIT_INVALID as EXIT_INVALID
from shared.app.outcomes import EXIT_OK as EXIT_OK
from shared.engine.report import Report
from shared.errors import SettingsError
from shared.settings import DEFAULT_EMBEDDED_DB, Settings, load_settings

if TYPE_CHECKING:
    from shared.tracking.gateway import TrackingGateway

SubParsers = Any  # argparse's _SubParsersAction is private


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]

    def add_parser(self, sub: SubParsers) -> None:
        parser: argparse.ArgumentParser = sub.add_parser(
            self.name, help=self.help, description=self.help
        )
        self.configure(parser)
        parser.set_defaults(handler=self.run)


def add_report_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="decide and report, change nothing")
    parser.add_argument(
        "--json", action="store_true", help="print one machine-readable report on stdout"
    )


def settings_for(args: argparse.Namespace) -> Settings:
    """Settings from the environment; `--dry-run` can only add caution, never remove it."""
    settings = load_settings()
    return settings.with_dry_run(bool(getattr(args, "dry_run", False)))


def embedded_store(settings: Settings) -> Path | None:
    """The embedded SQLite file the settings point at, or None for a configured server."""
    if not settings.is_embedded:
        return None
    return Path(settings.effective_tracking_uri().removeprefix("sqlite:///"))


def sqlite_file(uri: str | None) -> Path | None:
    """The file of a `sqlite:` tracking URI (`sqlite:///rel.db`, `sqlite:////abs.db`)."""
    if not uri or not uri.lower().startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :].split("?", 1)[0])


def gateway_for(settings: Settings) -> TrackingGateway:
    """The gateway a verb works through; refuses to conjure an empty embedded store.

    Opening `sqlite:///./mlgov.db` creates it, so a sweep (even a dry run) in the wrong
    directory would leave a fresh empty store behind and report on nothing. Only `demo`
    creates a store, and it does so in its own folder.
    """
    from shared.bootstrap import build_gateway

    store = embedded_store(settings)
    if store is not None and not store.is_file():
        raise SettingsError(
            "MLFLOW_TRACKING_URI",
            f"not set, and there is no embedded MLflow store at {store}: "
            f"set MLFLOW_TRACKING_URI or run where {DEFAULT_EMBEDDED_DB} is",
        )
    # MLflow's SQL store makes a missing folder and an empty database on first open.
    configured = sqlite_file(settings.tracking_uri)
    if configured is not None and not configured.is_file():
        raise SettingsError(
            "MLFLOW_TRACKING_URI",
            f"no MLflow store at {configured}: a verb never creates one (only `mlgov demo` does)",
        )
    return build_gateway(settings)


def emit(report: Report, args: argparse.Namespace, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    if getattr(args, "json", False):
        print(report.to_json(), file=stream)
    else:
        print(report.to_table(), file=stream)
    return report.exit_code


class TerminalProgress:
    """Progress on stderr when it is a terminal and the output is not JSON; silent otherwise."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self._width = 0

    @classmethod
    def for_args(cls, args: argparse.Namespace) -> TerminalProgress:
        return cls(enabled=not getattr(args, "json", False) and sys.stdout.isatty())

    def __call__(self, experiment: str, runs: int) -> None:
        if not self.enabled:
            return
        line = f"\r{experiment}: {runs} runs examined"
        self.stream.write(line.ljust(self._width))
        self._width = len(line)
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
