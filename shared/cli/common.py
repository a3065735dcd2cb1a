"""Plumbing shared by the verbs: settings, output, progress on a terminal."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from shared.engine.report import Report
from shared.settings import Settings, load_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2

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
