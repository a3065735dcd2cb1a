"""`RunQuery.overhear` on every adapter: a walk the server cannot filter (it refused status
and time filters, as Azure ML may) hands the listener every run it reads, matching or not,
and says it read them all (`whole`); a walk the server filters hands it nothing. The sweep's
catch-up relies on it to take its runs from the cleanup scan's walk instead of another one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.model import Run
from shared.tracking.gateway import Overheard, RunQuery
from tests.contract.conftest import World


def walk(world: World, query: RunQuery) -> tuple[list[str], list[str], bool]:
    """The ids the walk yields, those it overheard (in its order), and whether it was whole."""
    heard: list[Run] = []

    def hear(run: Run) -> bool:
        heard.append(run)
        return True

    tap = Overheard(hear)
    found = [r.run_id for r in world.gateway.iter_runs(replace(query, overhear=tap))]
    return found, [r.run_id for r in heard], tap.whole


def seeded(world: World) -> tuple[list[str], dict[str, str]]:
    seeds = world.seeds
    experiments = [seeds.experiment(), seeds.experiment()]
    runs = {
        "old-failed": seeds.run(experiments[0], status="FAILED", ended_hours_ago=100),
        "recent": seeds.run(experiments[0], ended_hours_ago=2, tags={"mark": "x"}),
        "killed": seeds.run(experiments[1], status="KILLED", ended_hours_ago=5),
        "old": seeds.run(experiments[1], ended_hours_ago=90),
        "running": seeds.run(experiments[1], status="RUNNING", ended_hours_ago=None),
    }
    seeds.run(seeds.experiment(), status="FAILED", ended_hours_ago=100)  # outside the walk
    return experiments, runs


def test_a_walk_the_server_cannot_filter_is_heard_in_full(world: World) -> None:
    experiments, runs = seeded(world)
    cutoff = datetime.now(UTC) - timedelta(hours=72)
    query = RunQuery("", statuses=frozenset({"FAILED"}), finished_before=cutoff)

    found, heard, whole = walk(world, query.across(experiments))

    assert found == [runs["old-failed"]]  # the same matches either way
    if world.supports.status_filters:
        assert (heard, whole) == ([], False)
    else:
        # Every active run of both experiments, newest start first, as the walk read them.
        assert whole
        assert heard == [runs[n] for n in ("running", "recent", "killed", "old", "old-failed")]


def test_a_walk_with_no_condition_is_heard_in_full_everywhere(world: World) -> None:
    experiments, runs = seeded(world)

    found, heard, whole = walk(world, RunQuery("").across(experiments))

    assert whole
    assert heard == found
    assert set(found) == set(runs.values())


def test_a_walk_by_tag_or_by_id_is_never_whole(world: World) -> None:
    experiments, runs = seeded(world)
    recent = datetime.now(UTC) - timedelta(hours=24)
    by_tag = RunQuery("", tag_equals={"mark": "x"}, finished_after=recent).across(experiments)
    by_id = RunQuery("", run_ids=frozenset({runs["killed"]})).across(experiments)
    nothing = RunQuery("", statuses=frozenset()).across(experiments)

    # Tag filters go to the server everywhere: what it leaves out is not heard.
    assert walk(world, by_tag) == ([runs["recent"]], [], False)
    assert walk(world, by_id) == ([runs["killed"]], [], False)
    assert walk(world, nothing) == ([], [], False)
