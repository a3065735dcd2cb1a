"""Per-experiment counts of one sweep (`report.extra["experiments"]` and the table)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from shared.engine.actions import DeleteRun, RegisterModelVersion, SetRunTags
from shared.engine.report import Record

# The sweep's progress callback: (experiment name, runs examined so far).
Progress = Callable[[str, int], None]


@dataclass(slots=True)
class ExperimentCounts:
    """`protected` counts every run cleanup spared (protect tag, restored, model, children)."""

    experiment: str
    examined: int = 0
    deleted: int = 0
    protected: int = 0
    skipped_by_guard: int = 0
    tagged: int = 0
    promoted: int = 0
    failed: int = 0


@dataclass(slots=True)
class _Row:
    counts: ExperimentCounts
    caught_up: int = 0
    # Promotion may take several actions per run; a run counts once.
    promoted_runs: set[str] = field(default_factory=set)


class SweepTally:
    """Counts kept per experiment (not per run), so they stay small however many runs."""

    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}

    def _row(self, experiment: str) -> _Row:
        row = self._rows.get(experiment)
        if row is None:
            row = self._rows[experiment] = _Row(ExperimentCounts(experiment))
        return row

    def include(self, experiment: str) -> None:
        self._row(experiment)

    def __getitem__(self, experiment: str) -> ExperimentCounts:
        return self._row(experiment).counts

    def count(self, record: Record) -> None:
        """Count a catch-up record (cleanup counts its own decisions as it makes them)."""
        row = self._row(record.experiment)
        if record.outcome == "failed":
            row.counts.failed += 1
        elif not record.done:
            return
        elif isinstance(record.decision, SetRunTags):  # in catch-up, only require-tags tags
            row.counts.tagged += 1
        elif isinstance(record.decision, RegisterModelVersion):
            row.promoted_runs.add(record.run_id)
            row.counts.promoted = len(row.promoted_runs)

    def count_carried(self, record: Record) -> None:
        """Count a change the executor applied that the sweep, interrupted, never saw come
        back (a deletion of a level cut short, a catch-up page in flight)."""
        if isinstance(record.decision, DeleteRun):
            if record.done:
                self[record.experiment].deleted += 1
            return
        self.count(record)

    def progress(self, forward: Progress | None) -> Progress:
        """A catch-up progress callback that also records how many runs it examined."""

        def report(experiment: str, runs: int) -> None:
            self._row(experiment).caught_up = runs
            if forward is not None:
                forward(experiment, runs)

        return report

    def rows(self) -> list[dict[str, object]]:
        result = []
        for row in self._rows.values():
            data = asdict(row.counts)
            data["examined"] = row.counts.examined + row.caught_up
            result.append(data)
        return result
