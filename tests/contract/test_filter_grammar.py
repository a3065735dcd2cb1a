"""The filters the adapter writes, parsed by MLflow 3.15's own grammar, and the order in
which the adapter gives up what a server refuses (no server: MLflow's parser in-process and
a client that refuses by rule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from shared import tags as T
from shared.tracking.capabilities import Capabilities
from shared.tracking.filters import in_list, listable, server_filter
from shared.tracking.gateway import RunQuery
from shared.tracking.mlflow_gateway import MlflowGateway

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
IDS = frozenset({"0a1b2c", "d3e4f5"})

QUERIES = [
    RunQuery("1", statuses=frozenset({"FAILED"}), finished_before=NOW - timedelta(hours=72)),
    RunQuery("1", finished_after=NOW - timedelta(hours=24)),
    RunQuery("1", run_ids=IDS, tags_present=frozenset({T.DELETED_AT, T.DELETED_REASON})),
    RunQuery("1", parent_run_ids=IDS),
    RunQuery("1", parent_run_ids=frozenset({"0a1b2c"}), tag_equals={"owner": "it's"}),
]


@pytest.mark.parametrize("query", QUERIES)
def test_every_filter_written_parses_in_mlflow(query: RunQuery) -> None:
    from mlflow.utils.search_utils import SearchUtils

    for caps in (Capabilities(), Capabilities(tag_null_filter=False)):
        written = server_filter(query, "FAILED", caps)
        parsed = SearchUtils.parse_search_filter(written)
        assert len(parsed) == written.count(" and ") + 1


def test_mlflow_has_no_status_list_but_a_run_id_list() -> None:
    # Why the adapter searches once per status (the issue expected `status IN`).
    from mlflow.exceptions import MlflowException
    from mlflow.utils.search_utils import SearchModelVersionUtils, SearchUtils

    with pytest.raises(MlflowException, match="Only the 'run_id' attribute"):
        SearchUtils.parse_search_filter("attributes.status IN ('FAILED', 'KILLED')")
    (ids,) = SearchUtils.parse_search_filter(in_list("attributes.run_id", IDS))
    assert sorted(ids["value"]) == sorted(IDS)
    (versions,) = SearchModelVersionUtils.parse_search_filter(in_list("run_id", IDS))
    assert sorted(versions["value"]) == sorted(IDS)


def test_ids_mlflow_would_drop_from_a_list_are_not_listed() -> None:
    # `_parse_run_ids` keeps `str.islower()` ids only: an all-digit or upper-case id is lost.
    assert listable("0a1b2c")
    assert not listable("0123")
    assert not listable("Job_Name")
    assert not listable("it's")
    query = RunQuery("1", run_ids=frozenset({"0a1b2c", "0123"}))
    assert "run_id" not in server_filter(query, None, Capabilities())


# -- what a refusing server makes the adapter give up, one thing at a time -----------------


class Page(list[Any]):
    token = None


class Refused(Exception):
    error_code = "INVALID_PARAMETER_VALUE"


def raw(run_id: str, experiment_id: str, status: str = "FAILED", parent: str | None = None) -> Any:
    tags = {T.PARENT_RUN_ID: parent} if parent else {}
    return SimpleNamespace(
        info=SimpleNamespace(
            run_id=run_id,
            experiment_id=experiment_id,
            status=status,
            start_time=1_000,
            end_time=2_000,
            lifecycle_stage="active",
        ),
        data=SimpleNamespace(tags=tags, metrics={}),
    )


class Server:
    """Runs in two experiments; refuses what it is told to, records every search."""

    def __init__(self, *, refuse: tuple[str, ...] = (), one_experiment: bool = False) -> None:
        self.refuse = refuse
        self.one_experiment = one_experiment
        self.searches: list[tuple[tuple[str, ...], str]] = []
        self.reads: list[str] = []
        self.runs = [
            raw("aa", "1"),
            raw("bb", "2", "KILLED"),
            raw("Cc", "2"),
            raw("dd", "1", parent="aa"),
        ]

    def search_runs(self, experiment_ids: list[str], filter_string: str = "", **_: Any) -> Page:
        self.searches.append((tuple(experiment_ids), filter_string))
        if self.one_experiment and len(experiment_ids) > 1:
            raise Refused("cannot search more than one experiment id at a time")
        if any(word in filter_string for word in self.refuse):
            raise Refused(f"unsupported filter: {filter_string}")
        return Page(r for r in self.runs if r.info.experiment_id in experiment_ids)

    def get_run(self, run_id: str) -> Any:
        self.reads.append(run_id)
        return next(r for r in self.runs if r.info.run_id == run_id)


def gateway(server: Server) -> MlflowGateway:
    return MlflowGateway("azureml://example", client=server)


def test_a_refused_id_list_reads_the_runs_one_by_one() -> None:
    server = Server(refuse=("run_id",))
    found = gateway(server).iter_runs(RunQuery("", run_ids=frozenset({"aa", "bb"})).across("12"))
    assert sorted(r.run_id for r in found) == ["aa", "bb"]
    assert server.reads == ["aa", "bb"]


def test_an_upper_case_id_is_read_alone_and_the_others_listed() -> None:
    server = Server()
    query = RunQuery("", run_ids=frozenset({"aa", "Cc"})).across("12")
    assert sorted(r.run_id for r in gateway(server).iter_runs(query)) == ["Cc", "aa"]
    assert server.searches == [(("1", "2"), "attributes.run_id IN ('aa')")]
    assert server.reads == ["Cc"]


def test_a_server_searching_one_experiment_at_a_time_is_searched_so() -> None:
    server = Server(one_experiment=True)
    gw = gateway(server)
    query = RunQuery("", statuses=frozenset({"FAILED"})).across(["1", "2"])
    assert sorted(r.run_id for r in gw.iter_runs(query)) == ["Cc", "aa", "dd"]
    assert gw.capabilities.multi_experiment_search is False
    assert gw.capabilities.status_filters is True  # the filter was not what it refused
    assert [ids for ids, _ in server.searches] == [("1", "2"), ("1",), ("2",)]


def test_refused_statuses_mean_one_search_for_all_of_them() -> None:
    server = Server(refuse=("attributes.status",))
    gw = gateway(server)
    query = RunQuery("", statuses=frozenset({"FAILED", "KILLED"})).across(["1", "2"])
    assert sorted(r.run_id for r in gw.iter_runs(query)) == ["Cc", "aa", "bb", "dd"]
    # Refused, then FAILED's search again without the clause, then KILLED's: no run twice.
    assert [f for _, f in server.searches] == ["attributes.status = 'FAILED'", "", ""]
    server.searches.clear()
    assert sorted(r.run_id for r in gw.iter_runs(query)) == ["Cc", "aa", "bb", "dd"]
    assert server.searches == [(("1", "2"), "")]  # learned: one search for both statuses


def test_a_refused_is_not_null_falls_back_to_like() -> None:
    server = Server(refuse=("IS NOT NULL",))
    gw = gateway(server)
    children = gw.child_runs_of(["1", "2"], ["aa", "bb"])
    assert {p: [c.run_id for c in kids] for p, kids in children.items()} == {"aa": ["dd"]}
    assert gw.capabilities.tag_null_filter is False
    assert gw.capabilities.tag_filters is True
    assert server.searches[-1][1] == f"tags.`{T.PARENT_RUN_ID}` LIKE '%'"
