"""The batched reads of the tracking port, on every adapter: many experiments in one search,
runs by id, the children of many parents and the runs with registered versions of a page.

Where the world has a real server, the client calls are counted too: a batched read must not
grow with the experiments, parents or runs it is asked about.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared import tags as T
from shared.tracking.gateway import ModelSource, RunQuery
from tests.contract.conftest import World

MISSING_RUN = "f" * 32


def searches(world: World, method: str = "search_runs") -> int | None:
    return None if world.calls is None else world.calls[method]


def reset(world: World) -> None:
    if world.calls is not None:
        world.calls.clear()


def test_one_query_walks_many_experiments_newest_first(world: World) -> None:
    seeds = world.seeds
    experiments = [seeds.experiment() for _ in range(4)]
    outside = seeds.experiment()
    failed = [
        seeds.run(e, status="FAILED", ended_hours_ago=10 + i) for i, e in enumerate(experiments)
    ]
    for e in experiments:
        seeds.run(e, ended_hours_ago=100)
    seeds.run(outside, status="FAILED", ended_hours_ago=1)
    query = RunQuery("", statuses=frozenset({"FAILED"})).across(experiments)
    assert query.experiment_ids == tuple(experiments)

    # Learning what the server refuses costs a request or two the first time only.
    list(world.gateway.iter_runs(query))
    reset(world)
    walked = [r.run_id for r in world.gateway.iter_runs(query)]
    if world.supports.status_filters:
        # Four experiments, one search: two pages of 3 for 4 runs, not one per experiment.
        assert searches(world) in (None, 2)

    assert walked == failed  # across experiments, newest first
    assert {r.experiment_id for r in world.gateway.iter_runs(query)} == set(experiments)
    recent = RunQuery("", finished_after=datetime.now(UTC) - timedelta(hours=50))
    assert {r.run_id for r in world.gateway.iter_runs(recent.across(experiments))} == set(failed)


def test_many_statuses_and_tags_present_across_experiments(world: World) -> None:
    seeds = world.seeds
    first, second = seeds.experiment(), seeds.experiment()
    failed = seeds.run(first, status="FAILED", tags={"mark": ""})
    killed = seeds.run(second, status="KILLED", tags={"mark": "x"})
    seeds.run(second, status="FINISHED", tags={"mark": "y"})
    seeds.run(first, status="FAILED")
    both = RunQuery(
        "", statuses=frozenset({"FAILED", "KILLED"}), tags_present=frozenset({"mark"})
    ).across([first, second])
    found = [r.run_id for r in world.gateway.iter_runs(both)]
    assert sorted(found) == sorted([failed, killed])  # each once, however many searches


def test_runs_are_found_by_id_in_one_search(world: World) -> None:
    seeds = world.seeds
    first, second, outside = seeds.experiment(), seeds.experiment(), seeds.experiment()
    wanted = [seeds.run(first, status="FAILED"), seeds.run(second), seeds.run(second)]
    seeds.run(first)  # not asked for
    elsewhere = seeds.run(outside)
    gone = seeds.run(first)
    world.gateway.delete_run(gone)
    ids = frozenset({*wanted, elsewhere, gone, MISSING_RUN})
    query = RunQuery("", run_ids=ids).across([first, second])

    reset(world)
    assert {r.run_id for r in world.gateway.iter_runs(query)} == set(wanted)
    if world.supports.run_id_filter:
        assert searches(world) in (None, 1)
    failed = RunQuery("", run_ids=ids, statuses=frozenset({"FAILED"})).across([first, second])
    assert [r.run_id for r in world.gateway.iter_runs(failed)] == [wanted[0]]
    deleted = RunQuery("", run_ids=ids, deleted=True).across([first, second])
    assert [r.run_id for r in world.gateway.iter_runs(deleted)] == [gone]
    assert list(world.gateway.iter_runs(RunQuery(first, run_ids=frozenset()))) == []


def test_children_of_many_parents_in_one_lookup(world: World) -> None:
    seeds = world.seeds
    first, second = seeds.experiment(), seeds.experiment()
    lonely, single, double = (seeds.run(first) for _ in range(3))
    other = seeds.run(second)
    of_single = seeds.run(first, tags={T.PARENT_RUN_ID: single})
    of_double = {seeds.run(first, tags={T.PARENT_RUN_ID: double}) for _ in range(2)}
    of_other = seeds.run(second, tags={T.PARENT_RUN_ID: other})
    seeds.run(first, tags={T.PARENT_RUN_ID: "not-asked-about"})
    gone = seeds.run(first, tags={T.PARENT_RUN_ID: double})
    world.gateway.delete_run(gone)

    parents = [lonely, single, double, other]
    found = world.gateway.child_runs_of([first, second], parents)
    # Learned once; afterwards the whole page of parents is one search.
    reset(world)
    found = world.gateway.child_runs_of([first, second], parents)

    assert {p: {c.run_id for c in kids} for p, kids in found.items()} == {
        single: {of_single},
        double: of_double,
        other: {of_other},
    }
    assert all(c.parent_run_id == p for p, kids in found.items() for c in kids)
    if world.supports.tag_filters:
        # One search for all four parents: the five active children fill two pages of 3.
        assert searches(world) in (None, 2)
    assert world.gateway.child_runs_of([first], [single]) == {
        single: [world.gateway.get_run(of_single)]
    }
    assert world.gateway.child_runs_of([first], []) == {}
    assert world.gateway.child_runs_of([], [single]) == {}


def test_which_runs_have_registered_versions_in_one_search(world: World) -> None:
    seeds, experiment_id = world.seeds, world.seeds.experiment()
    runs = [seeds.run(experiment_id, model=True) for _ in range(5)]
    name = f"model-{experiment_id}"
    for run_id in (runs[0], runs[0], runs[3]):
        world.gateway.create_model_version(name, ModelSource(f"runs:/{run_id}/model"), run_id, {})
    asked = [*runs, MISSING_RUN]

    world.gateway.runs_with_model_versions(asked)
    reset(world)
    assert world.gateway.runs_with_model_versions(asked) == {runs[0], runs[3]}
    if world.supports.version_run_list_filter:
        assert searches(world, "search_model_versions") in (None, 1)
    assert world.gateway.runs_with_model_versions([runs[1]]) == frozenset()
    assert world.gateway.runs_with_model_versions([]) == frozenset()
