"""`TerminalProgress`: the sweep's progress line on a terminal, and silence everywhere else."""

from __future__ import annotations

import argparse
import io

import pytest

from shared.cli.common import TerminalProgress


class Terminal(io.StringIO):
    """A stream that says it is a terminal, and keeps what was written to it."""

    def isatty(self) -> bool:
        return True


def test_writes_progress_on_a_terminal_and_clears_it_when_done():
    stream = Terminal()
    progress = TerminalProgress(enabled=True, stream=stream)

    progress("churn-model", 200)
    progress("fraud", 7)
    written = stream.getvalue()
    progress.done()

    first = "\rchurn-model: 200 runs examined"
    second = "\rfraud: 7 runs examined"
    # The shorter line is padded over the longer one, so no tail of it stays on screen.
    assert written == first + second.ljust(len(first))
    assert stream.getvalue() == written + "\r" + " " * len(second) + "\r"


@pytest.mark.parametrize(
    ("enabled", "stream"),
    [(False, Terminal()), (True, io.StringIO())],
    ids=["disabled", "not-a-terminal"],
)
def test_writes_nothing_when_disabled_or_not_on_a_terminal(enabled, stream):
    progress = TerminalProgress(enabled=enabled, stream=stream)
    progress("churn-model", 200)
    progress.done()
    assert stream.getvalue() == ""


@pytest.mark.parametrize(
    ("json_flag", "stdout", "shown"),
    [(False, Terminal(), True), (True, Terminal(), False), (False, io.StringIO(), False)],
    ids=["table-on-a-terminal", "json", "table-piped"],
)
def test_for_args_shows_progress_only_for_a_table_on_a_terminal(
    monkeypatch, json_flag, stdout, shown
):
    stderr = Terminal()
    monkeypatch.setattr("sys.stdout", stdout)
    monkeypatch.setattr("sys.stderr", stderr)

    progress = TerminalProgress.for_args(argparse.Namespace(json=json_flag))
    progress("churn-model", 3)

    assert progress.enabled is shown
    assert ("churn-model: 3 runs examined" in stderr.getvalue()) is shown
    assert stdout.getvalue() == ""  # progress never goes where the report goes
