"""What each application operation hands back: the report, how its card went, the exit code.

The exit codes are the CLI's contract (0 success, 1 an action failed, 2 invalid input); the
Functions host reads the same outcome for its log line and for whether to raise.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.engine.report import Report
from shared.errors import InvalidEvent, TrackingError
from shared.notify.notices import Summary
from shared.notify.teams import Delivery

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """One operation's report and the delivery of its card (None: there was nothing to say)."""

    report: Report
    delivery: Delivery | None = None

    @property
    def delivered(self) -> bool:
        return self.delivery is not None and self.delivery.ok

    @property
    def exit_code(self) -> int:
        # Delivery never changes it: a Teams failure is reported, governance stands.
        return self.report.exit_code


@dataclass(frozen=True, slots=True, kw_only=True)
class EventsOutcome(Outcome):
    """Handled events; `rejected` are the malformed ones (dropped, never retried).

    `redelivery` is set when a run could not be read for a reason a redelivery cures (access
    refused while a role assignment propagates): the Functions host raises it.
    """

    rejected: tuple[InvalidEvent, ...] = ()
    redelivery: TrackingError | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_INVALID if self.rejected else self.report.exit_code


@dataclass(frozen=True, slots=True, kw_only=True)
class SummaryOutcome(Outcome):
    """The window's digest as figures (`summary`) and as a report."""

    summary: Summary


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreOutcome(Outcome):
    """Restored runs; `unsupported` says why nothing could be restored on this server."""

    unsupported: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.unsupported else self.report.exit_code
