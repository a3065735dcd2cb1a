"""The report: one typed record per decision; `to_dict` is what `--json` prints (a contract)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.engine.actions import Action, Skip
from shared.engine.results import OUTCOMES, Outcome, Result
from shared.errors import TrackingUnavailable

__all__ = ["OUTCOMES", "Outcome", "Record", "Report", "carry", "log_decisions", "partial_of"]


@dataclass(frozen=True, slots=True)
class Record:
    """One decision: the typed action decided, how it ended, and the handler's typed result.

    Cards, tallies and use cases read `decision` and `result`; the flat properties are the
    report's JSON names, and `details` is the JSON view (built only when asked).
    """

    decision: Action
    outcome: Outcome
    reason: str
    result: Result | None = None

    @property
    def policy(self) -> str:
        return self.decision.policy

    @property
    def action(self) -> str:
        return self.decision.kind

    @property
    def run_id(self) -> str:
        return self.decision.target.run_id

    @property
    def run_name(self) -> str:
        return self.decision.target.run_name

    @property
    def experiment(self) -> str:
        return self.decision.target.experiment_name

    @property
    def experiment_id(self) -> str:
        return self.decision.target.experiment_id

    @property
    def user(self) -> str:
        """The run's `mlflow.user`: cards group violations by owner."""
        return self.decision.target.user

    @property
    def done(self) -> bool:
        """Applied, or planned in dry run: what cards and tallies count as happened."""
        return self.outcome in ("applied", "planned")

    @property
    def details(self) -> dict[str, str]:
        """The `details` of `--json`: the action's, then what the handler added."""
        details = self.decision.json_details()
        if self.result is not None:
            details.update(self.result.json_details())
        return details

    def to_dict(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "run_id": self.run_id,
            "run_name": self.run_name,
            "experiment": self.experiment,
            "experiment_id": self.experiment_id,
            "user": self.user,
            "action": self.action,
            "outcome": self.outcome,
            "reason": self.reason,
            "details": self.details,
        }


@dataclass(slots=True)
class Report:
    """What one invocation decided and did."""

    command: str
    dry_run: bool
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    records: list[Record] = field(default_factory=list)
    # Delivery of notifications: best effort, never changes the governance outcome.
    notifications: list[dict[str, str]] = field(default_factory=list)
    # Extra machine-readable sections (e.g. the summary's figures).
    extra: dict[str, object] = field(default_factory=dict)

    def add(self, record: Record) -> None:
        self.records.append(record)

    def extend(self, records: list[Record]) -> None:
        self.records.extend(records)

    def counts(self) -> dict[str, int]:
        counted = Counter(r.outcome for r in self.records)
        return {outcome: counted.get(outcome, 0) for outcome in OUTCOMES}

    @property
    def failed(self) -> bool:
        return any(r.outcome == "failed" for r in self.records)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "command": self.command,
            "dry_run": self.dry_run,
            "started_at": self.started_at.isoformat(),
            "counts": self.counts(),
            "decisions": [r.to_dict() for r in self.records],
            "notifications": self.notifications,
        }
        data.update(self.extra)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def summary_line(self) -> str:
        counts = self.counts()
        parts = [f"{counts[o]} {o}" for o in OUTCOMES]
        mode = " (dry run: nothing changed)" if self.dry_run else ""
        return f"{self.command}: {len(self.records)} decisions: {', '.join(parts)}{mode}"

    def to_table(self) -> str:
        """A readable table of the decisions that did something or failed, then the totals."""
        shown = [r for r in self.records if not _quiet(r)]
        rows = [("OUTCOME", "POLICY", "ACTION", "EXPERIMENT", "RUN", "REASON")]
        rows += [
            (r.outcome, r.policy, r.action, r.experiment, _run_label(r), r.reason) for r in shown
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = [
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5]
            for row in rows
        ]
        hidden = len(self.records) - len(shown)
        if hidden:
            runs = "run needed" if hidden == 1 else "runs needed"
            lines.append(f"({hidden} {runs} nothing; --json lists them)")
        per_experiment = self.extra.get("experiments")
        if isinstance(per_experiment, list) and per_experiment:
            lines += ["", "Per experiment:", *_count_table(per_experiment), ""]
        lines.append(self.summary_line())
        return "\n".join(lines)


def _quiet(record: Record) -> bool:
    """A decision to do nothing: counted, not listed (`--json` lists it)."""
    return record.outcome == "skipped" and isinstance(record.decision, Skip)


def _count_table(rows: list[dict[str, object]]) -> list[str]:
    """Rows of counts (the sweep's per-experiment figures) as aligned text columns."""
    keys = list(rows[0])
    cells = [[k.upper().replace("_", " ") for k in keys]]
    cells += [[str(row.get(k, "")) for k in keys] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(keys))]
    return [
        "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(line))
        for line in cells
    ]


def _run_label(record: Record) -> str:
    """The run's name with a short id (ids alone mean nothing to a person)."""
    if not record.run_id:
        return "-"
    short = record.run_id[:8]
    return f"{record.run_name} ({short})" if record.run_name else record.run_id


def log_decisions(report: Report, logger: logging.Logger) -> None:
    """One log line per decision that did or would do something (skips are only counted).

    In the Functions host this is how a dry run is watched: every `planned` line says what
    would have been done.
    """
    for record in report.records:
        if _quiet(record):
            continue
        logger.info(
            "%s %s %s run %s (%s) in %s: %s",
            record.outcome,
            record.policy,
            record.action,
            record.run_id or "-",
            record.run_name or "-",
            record.experiment,
            record.reason,
        )


def carry(exc: TrackingUnavailable, report: Report, journal: Sequence[Record]) -> list[Record]:
    """Make `exc` carry `report`, completed with every change of `journal` (the executor's)
    that the report does not hold yet; returns the records added, in the journal's order.

    The use case calls it when the server went away halfway: what was done before is then
    logged, announced and printed by the App like any report (`partial_of`).
    """
    held = {id(record) for record in report.records}
    added = [record for record in journal if id(record) not in held]
    report.extend(added)
    exc.partial = report
    return added


def partial_of(exc: BaseException) -> Report | None:
    """The report an interrupted use case left on `exc` (None when it left none)."""
    partial = getattr(exc, "partial", None)
    return partial if isinstance(partial, Report) else None
