"""The sweep on a server that refuses status and time filters (as Azure ML may), over the
in-memory gateway configured to refuse them: the cleanup scan's walk of every run also
feeds the catch-up, so the workspace is read once, not twice, and the sweep ends exactly as
on a server that filters (the same records, in the same order, and the same runs, tags and
model versions)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from shared import tags as T
from shared.engine.actions import GuardNotice
from shared.errors import TrackingError
from shared.model import Run
from shared.tracking.capabilities import Capabilities
from shared.tracking.filters import unfiltered
from shared.tracking.gateway import RunQuery
from shared.tracking.memory import InMemoryGateway
from shared.usecases import sweep as sweep_module
from shared.usecases.sweep import Heard, sweep
from tests.support import NOW, settings

GOVERNANCE = {
    "experiments": "churn-*",
    "cleanup_statuses": "FAILED",
    # Shorter than the catch-up window: a failed run 2 h old is both a candidate and recent.
    "cleanup_after_hours": "1",
    "catchup_hours": "24",
    "required_tags": "owner",
    "promotion_metric": "auc",
    "promotion_threshold": "0.8",
}


class Walks(InMemoryGateway):
    """Keeps every run query; `walks` are those a server answers with every run it holds
    (no filter could be sent for them): what reads the whole workspace."""

    def __init__(self, refusing: bool) -> None:
        caps = Capabilities(status_filters=not refusing, time_filters=not refusing)
        super().__init__(capabilities=caps, clock=lambda: NOW)
        self.queries: list[RunQuery] = []

    def iter_runs(self, query: RunQuery) -> Iterator[Run]:
        self.queries.append(query)
        return super().iter_runs(query)

    @property
    def walks(self) -> list[RunQuery]:
        return [q for q in self.queries if unfiltered(q, self.capabilities)]


def add(gateway: InMemoryGateway, experiment_id: str, name: str, hours: float | None, **kw):
    """A run named `name` that ended `hours` ago (None: still running)."""
    end = None if hours is None else NOW - timedelta(hours=hours)
    start = (end or NOW) - timedelta(minutes=30 + len(name))  # distinct starts: a fixed order
    status = kw.pop("status", "FINISHED" if end else "RUNNING")
    return gateway.add_run(
        experiment_id, status=status, start_time=start, end_time=end, name=name, **kw
    )


def seed(gateway: InMemoryGateway, experiments: tuple[str, ...] = ("churn-a", "churn-b")) -> None:
    """Per experiment: cleanup candidates (one protected, one parent of a kept child, one
    recent enough for the catch-up), runs to tag and promote, history, a running run."""
    for index, experiment in enumerate(experiments):
        eid = gateway.create_experiment(experiment)
        owner = {"owner": "team"}
        for i in range(3):
            add(gateway, eid, f"{experiment}-old-failed-{i}", 100 + i, status="FAILED")
        add(
            gateway,
            eid,
            f"{experiment}-kept",
            100,
            status="FAILED",
            tags={"governance.keep": "true"},
        )
        parent = add(gateway, eid, f"{experiment}-parent", 120, status="FAILED")
        add(gateway, eid, f"{experiment}-child", 119, parent_run_id=parent, tags=owner)
        # A candidate that also ended within the catch-up window: deleted, never caught up.
        add(gateway, eid, f"{experiment}-recent-failed", 2, status="FAILED")
        for i, auc in enumerate((0.91, 0.95 - index / 100)):
            run_id = add(
                gateway, eid, f"{experiment}-good-{i}", 3 + i, tags=owner, metrics={"auc": auc}
            )
            gateway.log_model(run_id)
        no_owner = add(gateway, eid, f"{experiment}-no-owner", 6, metrics={"auc": 0.99})
        gateway.log_model(no_owner)
        add(gateway, eid, f"{experiment}-killed", 7, status="KILLED", tags=owner)
        for i in range(5):
            add(gateway, eid, f"{experiment}-history-{i}", 50 + i, tags=owner)
        add(gateway, eid, f"{experiment}-running", None)


def ids(gateway: InMemoryGateway) -> dict[str, str]:
    return {e.name: e.experiment_id for e in gateway.iter_experiments()}


def state(gateway: InMemoryGateway) -> dict[str, object]:
    """Every run (deleted or not) with its tags, every model version and alias, by name."""
    runs = {}
    for experiment in gateway.iter_experiments():
        for deleted in (False, True):
            query = RunQuery(experiment.experiment_id, deleted=deleted)
            for run in gateway.iter_runs(query):
                tags = {k: v for k, v in run.tags.items() if not k.startswith(T.DELETION_CLAIM)}
                runs[run.run_name] = (run.deleted, tags)
    models = {}
    for experiment in gateway.iter_experiments():
        versions = gateway.model_versions(experiment.name)
        models[experiment.name] = [
            (
                version.version,
                version.run_id,
                version.aliases,
                {k: v for k, v in version.tags.items() if k != T.REGISTERED_BY},
            )
            for version in versions
        ]
    return {"runs": runs, "models": models}


def records(report) -> list[dict[str, object]]:
    return [r.to_dict() for r in report.records]


def swept(gateway: Walks, **env: str):
    return sweep(gateway, settings(**{**GOVERNANCE, **env}), NOW)


def pair(**env: str):
    """The same workspace on a server that filters and on one that refuses, each swept."""
    accepting, refusing = Walks(refusing=False), Walks(refusing=True)
    seed(accepting)
    seed(refusing)
    return (accepting, swept(accepting, **env)), (refusing, swept(refusing, **env))


def test_a_refusing_server_is_walked_once_and_the_sweep_ends_as_on_one_that_filters():
    (accepting, filtered), (refusing, fallback) = pair()

    assert accepting.walks == []  # every search there is filtered by status and time
    (walk,) = refusing.walks  # the cleanup scan's, once; the catch-up reads no run again
    assert walk.statuses == frozenset({"FAILED"})
    assert len(walk.experiment_ids) == 2
    assert records(fallback) == records(filtered)
    assert state(refusing) == state(accepting)
    # Not a vacuous equality: the sweep deleted, tagged and promoted.
    actions = {(r.action, r.outcome) for r in fallback.records}
    assert {("delete-run", "applied"), ("set-run-tags", "applied")} <= actions
    assert ("register-model-version", "applied") in actions
    assert fallback.extra["experiments"] == filtered.extra["experiments"]


def test_a_run_the_cleanup_deleted_is_not_caught_up():
    _, (refusing, report) = pair()

    name = "churn-a-recent-failed"
    mine = [r for r in report.records if r.run_name == name]
    assert [(r.action, r.outcome) for r in mine] == [("delete-run", "applied")]
    assert refusing.get_run(mine[0].run_id).deleted


class ChangedAfterTheScan(Walks):
    """Someone protects and tags a candidate between the scan and its deletion (while the
    cleanup reads the candidates' model versions): the deletion steps back, and the
    catch-up must govern the run as it is now, not as the scan read it."""

    target = "churn-a-recent-failed"

    def runs_with_model_versions(self, run_ids):  # type: ignore[no-untyped-def]
        for run_id in run_ids:
            if self.get_run(run_id).run_name == self.target:
                self.set_run_tags(run_id, {"governance.keep": "true", "owner": "late"})
        return super().runs_with_model_versions(run_ids)


def test_a_run_whose_deletion_stepped_back_is_caught_up_as_it_is_now():
    worlds = []
    for refusing in (False, True):
        gateway = ChangedAfterTheScan(refusing)
        seed(gateway)
        worlds.append((gateway, swept(gateway)))
    (accepting, filtered), (refusing, fallback) = worlds

    assert len(refusing.walks) == 1
    assert records(fallback) == records(filtered)
    assert state(refusing) == state(accepting)
    (run,) = [
        r
        for r in refusing.iter_runs(RunQuery(ids(refusing)["churn-a"]))
        if r.run_name == ChangedAfterTheScan.target
    ]
    assert not run.deleted
    assert run.tags[T.COMPLIANCE] == T.COMPLIANT  # governed with the owner it has now


def test_beyond_heard_max_the_catch_up_walks_again_with_the_same_end(monkeypatch):
    monkeypatch.setattr(sweep_module, "HEARD_MAX", 2)
    (accepting, filtered), (refusing, fallback) = pair()

    assert len(refusing.walks) == 2  # the scan's, then the catch-up's own, as before
    assert records(fallback) == records(filtered)
    assert state(refusing) == state(accepting)


class ScanBroken(Walks):
    """The cleanup's search of one experiment is refused (its catch-up search is not)."""

    def iter_runs(self, query: RunQuery) -> Iterator[Run]:
        if query.statuses and ids(self)["churn-b"] in query.experiment_ids:
            raise TrackingError("search_runs failed: PERMISSION_DENIED")
        return super().iter_runs(query)


def test_an_experiment_whose_scan_failed_is_caught_up_by_its_own_search():
    worlds = []
    for refusing in (False, True):
        gateway = ScanBroken(refusing)
        seed(gateway)
        worlds.append((gateway, swept(gateway)))
    (accepting, filtered), (refusing, fallback) = worlds

    assert records(fallback) == records(filtered)
    assert state(refusing) == state(accepting)
    assert fallback.exit_code == 1  # the broken scan is reported
    # The other experiment came from the scan's walk; the broken one was searched alone.
    catch_up = [q for q in refusing.queries if q.finished_after is not None]
    assert [q.experiment_ids for q in catch_up] == [(ids(refusing)["churn-b"],)]


def test_several_cleanup_filters_and_an_experiment_without_cleanup_keep_the_order(tmp_path: Path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "overrides:\n"
        '  - experiments: "churn-b"\n    cleanup_after_hours: 12\n'
        '  - experiments: "churn-c"\n    cleanup_statuses: ""\n',
        encoding="utf-8",
    )
    worlds = []
    for refusing in (False, True):
        gateway = Walks(refusing)
        seed(gateway, ("churn-a", "churn-b", "churn-c"))
        worlds.append((gateway, swept(gateway, policy_file=str(policy))))
    (accepting, filtered), (refusing, fallback) = worlds

    # Two cleanup scans (one per filter), then the catch-up reads churn-c only; the records
    # of the merged runs come in the order of the one search a filtering server answers.
    by_name = ids(refusing)
    assert [q.experiment_ids for q in refusing.walks] == [
        (by_name[n],) for n in ("churn-a", "churn-b", "churn-c")
    ]
    assert records(fallback) == records(filtered)
    assert state(refusing) == state(accepting)


def test_a_dry_run_without_run_policies_reads_only_the_cleanup_scan():
    gateway = Walks(refusing=True)
    seed(gateway)
    env = {
        "required_tags": "",
        "promotion_metric": "",
        "promotion_threshold": "",
        "dry_run": "true",
    }
    report = swept(gateway, **env)

    (walk,) = gateway.walks
    assert walk.statuses == frozenset({"FAILED"})
    assert not any(q.finished_after for q in gateway.queries)
    assert all(r.outcome in ("planned", "skipped") for r in report.records)


def test_heard_keeps_the_catch_up_window_only_and_at_most_heard_max(monkeypatch):
    window = RunQuery("1", finished_after=NOW - timedelta(hours=24))
    heard = Heard(window)
    runs = [
        Run(f"{i:032x}", "1", "FINISHED", NOW - timedelta(hours=h + 1), NOW - timedelta(hours=h))
        for i, h in enumerate([1, 2, 30, 40, 50] * 200)
    ]
    other = Run("f" * 32, "9", "FINISHED", NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    running = Run("e" * 32, "1", "RUNNING", NOW - timedelta(hours=1), None)
    kept = [r for r in [*runs, other, running] if heard.wanted(r)]
    assert len(kept) == 400  # 2 of every 5 ended within the window; not the 1,002 read

    monkeypatch.setattr(sweep_module, "HEARD_MAX", 10)
    capped = Heard(window)
    assert sum(capped.wanted(r) for r in runs) == 10
    assert not capped.wanted(runs[0])  # full: nothing more is kept


@pytest.mark.parametrize("refusing", [False, True])
def test_the_guard_counts_everything_before_any_deletion_either_way(refusing: bool):
    gateway = Walks(refusing)
    seed(gateway)
    report = swept(gateway, cleanup_max_runs="3")

    assert not any(r.action == "delete-run" for r in report.records)
    (guard,) = [r for r in report.records if isinstance(r.decision, GuardNotice)]
    assert "10 runs qualify" in guard.reason
    assert len(gateway.walks) == (1 if refusing else 0)


def test_the_extras_of_every_run_the_sweep_keeps_heard_stay_known() -> None:
    """A catch-up candidate the cleanup walk kept (up to `HEARD_MAX`) still has its artifact
    root and model ids, so looking for its model reads nothing again."""
    from types import SimpleNamespace

    from shared.tracking.models import RunExtras
    from shared.usecases.sweep import HEARD_MAX

    def raw(i: int) -> SimpleNamespace:
        info = SimpleNamespace(run_id=f"r{i}", artifact_uri=f"mlflow-artifacts:/1/r{i}/artifacts")
        return SimpleNamespace(info=info, outputs=None)

    extras = RunExtras()
    for i in range(HEARD_MAX):
        extras.remember(raw(i))
    first = extras.get("r0")
    assert first is not None
    assert first.artifact_uri == "mlflow-artifacts:/1/r0/artifacts"
    for i in range(HEARD_MAX, extras.keep + 1):
        extras.remember(raw(i))
    assert extras.get("r0") is None  # still bounded: the oldest goes first
