"""The tracking port's contract, checked on every adapter (see conftest.py for the worlds).

What one adapter does here, every adapter does: a use case tested on the in-memory gateway
behaves the same against an MLflow server, with or without Azure ML's refusals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared import tags as T
from shared.errors import CapabilityUnsupported, RunNotFound, TrackingError
from shared.tracking.gateway import ModelSource, RunQuery
from tests.contract.conftest import PAGE_SIZE, World

MISSING_RUN = "0" * 32


def ids(world: World, query: RunQuery) -> set[str]:
    return {r.run_id for r in world.gateway.iter_runs(query)}


# -- experiments -----------------------------------------------------------------------


def test_experiments_are_listed_across_pages_and_looked_up(world: World) -> None:
    created = [world.seeds.experiment() for _ in range(PAGE_SIZE + 1)]
    listed = {e.experiment_id: e.name for e in world.gateway.iter_experiments()}
    assert set(created) <= set(listed)
    found = world.gateway.get_experiment(created[0])
    assert found is not None
    assert (found.experiment_id, found.name) == (created[0], listed[created[0]])
    assert world.gateway.get_experiment("987654321") is None


# -- runs ------------------------------------------------------------------------------


def test_get_run_maps_every_field(world: World) -> None:
    experiment_id = world.seeds.experiment()
    run_id = world.seeds.run(
        experiment_id,
        status="FAILED",
        tags={"owner": "ana"},
        metrics={"auc_roc": 0.91},
        ended_hours_ago=2,
        name="rf-01",
    )
    run = world.gateway.get_run(run_id)
    assert (run.run_id, run.experiment_id, run.status) == (run_id, experiment_id, "FAILED")
    assert (run.run_name, run.user, run.tags["owner"]) == ("rf-01", "tester", "ana")
    assert run.metrics == {"auc_roc": 0.91}
    assert run.end_time is not None
    assert run.start_time is not None
    assert run.end_time.tzinfo is UTC
    assert abs(run.end_time - run.start_time - timedelta(hours=0.5)) < timedelta(seconds=1)
    assert timedelta(hours=1.9) < datetime.now(UTC) - run.end_time < timedelta(hours=2.1)
    assert run.parent_run_id is None
    assert not run.deleted


def test_a_missing_run_is_run_not_found_for_every_run_call(world: World) -> None:
    with pytest.raises(RunNotFound):
        world.gateway.get_run(MISSING_RUN)
    with pytest.raises(RunNotFound):
        world.gateway.set_run_tags(MISSING_RUN, {"a": "1"})
    with pytest.raises(RunNotFound):
        world.gateway.delete_run(MISSING_RUN)


def test_runs_are_walked_across_pages_newest_first(world: World) -> None:
    experiment_id = world.seeds.experiment()
    # Distinct ends, so distinct starts: the order is defined.
    created = [world.seeds.run(experiment_id, ended_hours_ago=h) for h in range(1, 9)]
    walked = [r.run_id for r in world.gateway.iter_runs(RunQuery(experiment_id))]
    assert walked == created  # the first made ended (and started) most recently


def test_each_run_query_field_narrows(world: World) -> None:
    seeds, experiment_id = world.seeds, world.seeds.experiment()
    old_failed = seeds.run(experiment_id, status="FAILED", ended_hours_ago=100, tags={"t": "a"})
    new_failed = seeds.run(experiment_id, status="FAILED", ended_hours_ago=1, tags={"t": "b"})
    killed = seeds.run(experiment_id, status="KILLED", ended_hours_ago=100)
    quoted = 'it\'s "quoted"'  # both quote kinds: no filter literal can hold it
    finished = seeds.run(experiment_id, ended_hours_ago=1, tags={"t": quoted, "u": ""})
    running = seeds.run(experiment_id, status="RUNNING", ended_hours_ago=None)
    now = datetime.now(UTC)

    def query(**kwargs: object) -> set[str]:
        return ids(world, RunQuery(experiment_id, **kwargs))  # type: ignore[arg-type]

    assert query() == {old_failed, new_failed, killed, finished, running}
    assert query(statuses=frozenset({"FAILED"})) == {old_failed, new_failed}
    assert query(statuses=frozenset({"FAILED", "KILLED"})) == {old_failed, new_failed, killed}
    assert query(statuses=frozenset({"RUNNING"})) == {running}
    assert query(statuses=frozenset()) == set()
    before = now - timedelta(hours=72)
    assert query(finished_before=before) == {old_failed, killed}
    assert query(statuses=frozenset({"FAILED"}), finished_before=before) == {old_failed}
    # The running run has no end: it has not finished after anything.
    assert query(finished_after=now - timedelta(hours=24)) == {new_failed, finished}
    assert query(tag_equals={"t": "a"}) == {old_failed}
    assert query(tag_equals={"t": quoted}) == {finished}
    assert query(tag_equals={"t": "b"}, statuses=frozenset({"KILLED"})) == set()
    assert query(tags_present=frozenset({"t"})) == {old_failed, new_failed, finished}
    assert query(tags_present=frozenset({"t", "u"})) == {finished}
    assert query(deleted=True) == set()


def test_set_run_tags_sets_and_deletes(world: World) -> None:
    experiment_id = world.seeds.experiment()
    run_id = world.seeds.run(experiment_id, tags={"stale": "x", "kept": "y"})
    world.gateway.set_run_tags(run_id, {"a": "1", "b": "2"}, delete=("stale", "never-there"))
    tags = world.gateway.get_run(run_id).tags
    assert (tags["a"], tags["b"], tags["kept"]) == ("1", "2", "y")
    assert "stale" not in tags


def test_deleted_runs_are_a_separate_view(world: World) -> None:
    experiment_id = world.seeds.experiment()
    gone, kept = (world.seeds.run(experiment_id, status="FAILED") for _ in range(2))
    world.gateway.delete_run(gone)

    assert ids(world, RunQuery(experiment_id)) == {kept}
    deleted = list(world.gateway.iter_runs(RunQuery(experiment_id, deleted=True)))
    assert [(r.run_id, r.deleted) for r in deleted] == [(gone, True)]
    failed_deleted = RunQuery(experiment_id, statuses=frozenset({"FAILED"}), deleted=True)
    assert ids(world, failed_deleted) == {gone}
    assert world.gateway.get_run(gone).deleted
    # A deleted run's tags cannot be written (MLflow writes active runs only).
    with pytest.raises(TrackingError) as refused:
        world.gateway.set_run_tags(gone, {"a": "1"})
    assert not isinstance(refused.value, RunNotFound)


def test_restore_undoes_a_deletion_or_says_it_cannot(world: World) -> None:
    experiment_id = world.seeds.experiment()
    run_id = world.seeds.run(experiment_id)
    world.gateway.delete_run(run_id)
    if not world.supports.restore:
        with pytest.raises(CapabilityUnsupported, match="az ml job restore"):
            world.gateway.restore_run(run_id)
        assert world.gateway.get_run(run_id).deleted
        return
    world.gateway.restore_run(run_id)
    assert not world.gateway.get_run(run_id).deleted
    assert ids(world, RunQuery(experiment_id)) == {run_id}
    with pytest.raises(RunNotFound):
        world.gateway.restore_run(MISSING_RUN)


def test_child_runs_are_found_by_their_parent_tag(world: World) -> None:
    seeds, experiment_id = world.seeds, world.seeds.experiment()
    parent = seeds.run(experiment_id)
    children = {seeds.run(experiment_id, tags={T.PARENT_RUN_ID: parent}) for _ in range(2)}
    seeds.run(experiment_id, tags={T.PARENT_RUN_ID: "someone-else"})
    seeds.run(experiment_id)

    found = list(world.gateway.iter_child_runs(experiment_id, parent))
    assert {r.run_id for r in found} == children
    assert {r.parent_run_id for r in found} == {parent}
    gone = sorted(children)[0]
    world.gateway.delete_run(gone)
    assert {r.run_id for r in world.gateway.iter_child_runs(experiment_id, parent)} == (
        children - {gone}
    )


def test_run_url_names_the_run_or_is_none(world: World) -> None:
    experiment_id = world.seeds.experiment()
    run = world.gateway.get_run(world.seeds.run(experiment_id))
    url = world.gateway.run_url(run)
    assert url is None or url.endswith(f"/#/experiments/{experiment_id}/runs/{run.run_id}")


# -- models ------------------------------------------------------------------------------


def test_model_source_is_the_logged_model_else_the_artifact_folder(world: World) -> None:
    seeds, experiment_id = world.seeds, world.seeds.experiment()
    with_folder = world.gateway.get_run(seeds.run(experiment_id, model=True))
    without = world.gateway.get_run(seeds.run(experiment_id))

    assert world.gateway.find_model_source(with_folder, "model") == ModelSource(
        source=f"runs:/{with_folder.run_id}/model"
    )
    assert world.gateway.find_model_source(with_folder, "/model/") == ModelSource(
        source=f"runs:/{with_folder.run_id}/model"
    )
    assert world.gateway.find_model_source(without, "model") is None
    if not world.supports.logged_models:
        return  # such a server holds no LoggedModel to look up
    logged = world.gateway.get_run(seeds.run(experiment_id))
    seeds.logged_model(experiment_id, logged.run_id, "other")
    model_id = seeds.logged_model(experiment_id, logged.run_id, "model")
    seeds.logged_model(experiment_id, without.run_id, "model")  # another run's: not this one's
    assert world.gateway.find_model_source(logged, "model") == ModelSource(
        source=f"models:/{model_id}", model_id=model_id
    )


def test_model_versions_are_created_found_tagged_and_deleted(world: World) -> None:
    seeds, experiment_id = world.seeds, world.seeds.experiment()
    run_id, other = seeds.run(experiment_id, model=True), seeds.run(experiment_id, model=True)
    name = f"model-{experiment_id}"
    source = ModelSource(f"runs:/{run_id}/model")
    assert not world.gateway.run_has_model_versions(run_id)
    assert world.gateway.find_model_versions(name, run_id) == []

    # More versions than a page holds, the other run's in between.
    made = [world.gateway.create_model_version(name, source, run_id, {"k": "v"})]
    made.append(
        world.gateway.create_model_version(name, ModelSource(f"runs:/{other}/model"), other, {})
    )
    made += [world.gateway.create_model_version(name, source, run_id, {}) for _ in range(3)]
    assert [v.version for v in made] == ["1", "2", "3", "4", "5"]
    assert (made[0].name, made[0].run_id, made[0].tags["k"], made[0].aliases) == (
        name,
        run_id,
        "v",
        (),
    )
    assert world.gateway.run_has_model_versions(run_id)
    assert not world.gateway.run_has_model_versions(seeds.run(experiment_id))
    found = world.gateway.find_model_versions(name, run_id)
    assert [v.version for v in found] == ["1", "3", "4", "5"]

    world.gateway.set_model_version_tags(name, "3", {"a": "1", "b": "2"})
    (third,) = (v for v in world.gateway.find_model_versions(name, run_id) if v.version == "3")
    assert (third.tags["a"], third.tags["b"]) == ("1", "2")

    world.gateway.delete_model_version(name, "4")
    world.gateway.delete_model_version(name, "4")  # a racer removed it already: fine
    assert [v.version for v in world.gateway.find_model_versions(name, run_id)] == ["1", "3", "5"]
    assert [v.version for v in world.gateway.find_model_versions(name, other)] == ["2"]
    assert world.gateway.find_model_versions(f"{name}-none", run_id) == []


def test_an_alias_moves_between_versions(world: World) -> None:
    seeds, experiment_id = world.seeds, world.seeds.experiment()
    run_id = seeds.run(experiment_id, model=True)
    name = f"model-{experiment_id}"
    source = ModelSource(f"runs:/{run_id}/model")
    first, second = (world.gateway.create_model_version(name, source, run_id, {}) for _ in "12")
    assert world.gateway.get_model_version_by_alias(name, "champion") is None
    assert world.gateway.get_model_version_by_alias(f"{name}-none", "champion") is None
    how = "alias" if world.supports.aliases else f"tag {T.ALIAS_FALLBACK}"

    assert world.gateway.set_alias(name, "champion", first.version) == how
    assert world.gateway.set_alias(name, "champion", second.version) == how

    champion = world.gateway.get_model_version_by_alias(name, "champion")
    assert champion is not None
    assert champion.version == second.version
    versions = {v.version: v for v in world.gateway.find_model_versions(name, run_id)}
    if world.supports.aliases:
        assert (champion.aliases, versions[first.version].aliases) == (("champion",), ())
    else:
        # The fallback tag is on the alias's version only.
        assert champion.tags[T.ALIAS_FALLBACK] == "champion"
        assert T.ALIAS_FALLBACK not in versions[first.version].tags


@pytest.mark.parametrize("alias", ["v1", "latest", "Champion!"])
def test_an_alias_the_registry_rejects_is_a_tracking_error(world: World, alias: str) -> None:
    experiment_id = world.seeds.experiment()
    run_id = world.seeds.run(experiment_id, model=True)
    name = f"model-{experiment_id}"
    version = world.gateway.create_model_version(
        name, ModelSource(f"runs:/{run_id}/model"), run_id, {}
    )
    if not world.supports.aliases:
        # A registry without aliases never sees the name: the version is tagged instead.
        assert world.gateway.set_alias(name, alias, version.version) == f"tag {T.ALIAS_FALLBACK}"
        return
    with pytest.raises(TrackingError) as refused:
        world.gateway.set_alias(name, alias, version.version)
    assert refused.value.code == "INVALID_PARAMETER_VALUE"
