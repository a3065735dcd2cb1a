"""Capability fallbacks of the MLflow adapter, with a client that refuses what Azure ML may."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from shared.errors import CapabilityUnsupported
from shared.tracking.capabilities import Capabilities
from shared.tracking.gateway import Overheard, RunQuery
from shared.tracking.mlflow_gateway import MlflowGateway

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Refused(Exception):
    error_code = "INVALID_PARAMETER_VALUE"


class Unsupported(Exception):
    """How a registry without the alias endpoint answers (not INVALID_PARAMETER_VALUE, which
    MLflow uses for an invalid alias name)."""

    error_code = "ENDPOINT_NOT_FOUND"


class Page(list):
    token = None


def raw_run(run_id: str, status: str, hours_ago: float, tags: dict[str, str] | None = None):
    end = int((NOW - timedelta(hours=hours_ago)).timestamp() * 1000)
    return SimpleNamespace(
        info=SimpleNamespace(
            run_id=run_id,
            experiment_id="1",
            status=status,
            start_time=end - 1000,
            end_time=end,
            lifecycle_stage="active",
        ),
        data=SimpleNamespace(tags=tags or {}, metrics={}),
    )


class NoFilterClient:
    """Refuses any filter string, as a server without status/end-time filters would."""

    def __init__(self) -> None:
        self.filters: list[str] = []
        self.runs = [
            raw_run("a", "FAILED", 100),
            raw_run("b", "Finished", 100),
            raw_run("c", "Failed", 1),
        ]

    def search_runs(self, experiment_ids, filter_string="", **kwargs):
        self.filters.append(filter_string)
        if filter_string:
            raise Refused(f"unsupported filter: {filter_string}")
        return Page(self.runs)


def test_refused_filter_falls_back_to_client_side_filtering():
    client = NoFilterClient()
    gateway = MlflowGateway("azureml://example", client=client)
    query = RunQuery("1", statuses=frozenset({"FAILED"}), finished_before=NOW - timedelta(hours=72))
    assert [r.run_id for r in gateway.iter_runs(query)] == ["a"]
    assert gateway.capabilities.status_filters is False
    assert gateway.capabilities.time_filters is False
    assert client.filters[0].startswith("attributes.status = 'FAILED'")
    # Later queries no longer send filters the server refused.
    client.filters.clear()
    assert {r.run_id for r in gateway.iter_runs(RunQuery("1", statuses=frozenset({"FAILED"})))} == {
        "a",
        "c",
    }
    assert client.filters == [""]


def test_a_refused_walk_is_overheard_in_full_with_one_search_after_the_refusal():
    client = NoFilterClient()
    gateway = MlflowGateway("azureml://example", client=client)
    heard: list[str] = []

    def hear(run) -> bool:
        heard.append(run.run_id)
        return False

    tap = Overheard(hear)
    cutoff = NOW - timedelta(hours=72)
    query = RunQuery("1", statuses=frozenset({"FAILED"}), finished_before=cutoff, overhear=tap)

    assert [r.run_id for r in gateway.iter_runs(query)] == ["a"]
    # The refused search read nothing; its retry without a filter read (and heard) them all.
    assert heard == ["a", "b", "c"]
    assert tap.whole
    assert len(client.filters) == 2
    assert client.filters[1] == ""


def test_a_walk_the_server_filters_is_never_whole():
    client = NoFilterClient()
    client.search_runs = lambda experiment_ids, filter_string="", **kw: Page(client.runs[:1])
    gateway = MlflowGateway("azureml://example", client=client)
    tap = Overheard(lambda run: True)
    query = RunQuery("1", statuses=frozenset({"FAILED"}), overhear=tap)

    assert [r.run_id for r in gateway.iter_runs(query)] == ["a"]
    assert not tap.whole  # the server answered a filtered search: runs were left out


class NoAliasClient:
    """A registry that refuses aliases; version tags work."""

    def __init__(self) -> None:
        self.version_tags: dict[str, dict[str, str]] = {
            "1": {"governance.alias": "champion"},
            "2": {},
        }

    def set_registered_model_alias(self, name, alias, version):
        raise Unsupported("aliases are not supported")

    def get_model_version_by_alias(self, name, alias):
        raise Unsupported("aliases are not supported")

    def search_model_versions(self, filter_string=None, max_results=None, page_token=None):
        return Page(
            SimpleNamespace(
                name="m", version=v, run_id=f"run{v}", source="s", tags=dict(t), aliases=[]
            )
            for v, t in self.version_tags.items()
        )

    def set_model_version_tag(self, name, version, key, value):
        self.version_tags[version][key] = value

    def delete_model_version_tag(self, name, version, key):
        del self.version_tags[version][key]


def test_refused_alias_falls_back_to_a_version_tag():
    client = NoAliasClient()
    gateway = MlflowGateway("azureml://example", client=client)
    assert gateway.get_model_version_by_alias("m", "champion").version == "1"
    assert gateway.set_alias("m", "champion", "2") == "tag governance.alias"
    assert client.version_tags == {"1": {}, "2": {"governance.alias": "champion"}}
    assert gateway.get_model_version_by_alias("m", "champion").version == "2"


# -- refused filters are given up one kind at a time: attributes first, then tags --


class TagsOnlyClient:
    """Filters on tags, refuses status and time filters (what Azure ML may do)."""

    refuse_tags = False

    def __init__(self):
        self.filters = []
        self.runs = [
            raw_run("parent", "FAILED", 100, {}),
            raw_run("child", "FAILED", 100, {"mlflow.parentRunId": "parent"}),
            raw_run("other", "FINISHED", 1, {}),
        ]

    def search_runs(self, experiment_ids, filter_string="", **kwargs):
        self.filters.append(filter_string)
        if "attributes." in filter_string or (self.refuse_tags and "tags." in filter_string):
            raise Refused(f"unsupported filter: {filter_string}")
        if filter_string == "tags.`mlflow.parentRunId` = 'parent'":
            return Page(r for r in self.runs if r.data.tags.get("mlflow.parentRunId") == "parent")
        assert filter_string == ""
        return Page(self.runs)


def test_refused_status_filter_keeps_tag_filters_on_the_server():
    client = TagsOnlyClient()
    gateway = MlflowGateway("azureml://example", client=client)
    query = RunQuery("1", statuses=frozenset({"FAILED"}), finished_before=NOW - timedelta(hours=72))

    assert [r.run_id for r in gateway.iter_runs(query)] == ["parent", "child"]
    assert gateway.capabilities.status_filters is False
    assert gateway.capabilities.tag_filters is True

    client.filters.clear()
    assert [r.run_id for r in gateway.iter_child_runs("1", "parent")] == ["child"]
    assert client.filters == ["tags.`mlflow.parentRunId` = 'parent'"]


def test_refused_tag_filter_falls_back_to_the_client_too():
    client = TagsOnlyClient()
    client.refuse_tags = True
    gateway = MlflowGateway("azureml://example", client=client)

    assert [r.run_id for r in gateway.iter_child_runs("1", "parent")] == ["child"]
    assert gateway.capabilities.tag_filters is False
    assert client.filters[-1] == ""


# -- capabilities given up front: the fallback directly, the refused call never made --


def never(name):
    def call(*args, **kwargs):
        raise AssertionError(f"{name} called although the server refuses it")

    return call


class Unreachable:
    """A client any call of which fails the test: what the capabilities rule out."""

    def __getattr__(self, name):
        return never(name)


def test_known_refusals_go_straight_to_the_fallback():
    client = NoAliasClient()
    client.set_registered_model_alias = never("set_registered_model_alias")
    client.get_model_version_by_alias = never("get_model_version_by_alias")
    gateway = MlflowGateway(
        "azureml://example", client=client, capabilities=Capabilities(aliases=False)
    )
    assert gateway.set_alias("m", "champion", "2") == "tag governance.alias"
    assert gateway.get_model_version_by_alias("m", "champion").version == "2"


def test_a_server_known_not_to_restore_is_not_asked():
    gateway = MlflowGateway(
        "azureml://example", client=Unreachable(), capabilities=Capabilities(restore=False)
    )
    with pytest.raises(CapabilityUnsupported, match="az ml job restore --name r1"):
        gateway.restore_run("r1")


class VersionsClient:
    """Versions of two runs; refuses nothing, records the filters it is sent."""

    def __init__(self):
        self.filters = []

    def search_model_versions(self, filter_string=None, max_results=None, page_token=None):
        self.filters.append(filter_string)
        return Page(
            SimpleNamespace(name="m", version=v, run_id=r, source="s", tags={}, aliases=[])
            for v, r in (("1", "a"), ("2", "b"), ("3", "a"))
        )


def test_no_run_filter_on_versions_walks_them_by_name():
    client = VersionsClient()
    gateway = MlflowGateway(
        "azureml://example", client=client, capabilities=Capabilities(version_run_filter=False)
    )
    assert [v.version for v in gateway.find_model_versions("m", "a")] == ["1", "3"]
    assert gateway.run_has_model_versions("b")
    assert not gateway.run_has_model_versions("c")
    assert all("run_id" not in (f or "") for f in client.filters)


def test_each_gateway_learns_its_own_server():
    refusing, accepting = NoFilterClient(), TagsOnlyClient()
    first = MlflowGateway("azureml://one", client=refusing)
    second = MlflowGateway("azureml://two", client=accepting)
    list(first.iter_runs(RunQuery("1", statuses=frozenset({"FAILED"}))))
    assert first.capabilities.status_filters is False
    assert second.capabilities == Capabilities()


# -- an injected client: no MLflow import, no environment written --


def test_an_injected_client_imports_no_mlflow_and_writes_no_environment():
    script = textwrap.dedent(
        """
        import os, sys
        from types import SimpleNamespace
        before = dict(os.environ)
        from shared.tracking.gateway import Overheard, RunQuery
        from shared.tracking.mlflow_gateway import MlflowGateway

        class Page(list):
            token = None

        class Client:
            def search_experiments(self, **kwargs):
                return Page([SimpleNamespace(experiment_id=1, name="e")])
            def search_runs(self, experiment_ids, **kwargs):
                return Page([])
            def search_model_versions(self, **kwargs):
                return Page([])

        gateway = MlflowGateway("http://127.0.0.1:1", client=Client())
        assert [e.name for e in gateway.iter_experiments()] == ["e"]
        assert list(gateway.iter_runs(RunQuery("1", statuses=frozenset({"FAILED"})))) == []
        assert gateway.find_model_versions("m", "r") == []
        assert "mlflow" not in sys.modules, "mlflow imported"
        assert dict(os.environ) == before, "environment written"
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_runs_are_asked_a_thousand_a_page_and_experiments_two_hundred() -> None:
    """`MlflowClient.search_runs`' own default page for runs; MLflow's page limits elsewhere."""
    from shared.tracking.gateway import RunQuery as Query
    from shared.tracking.mlflow_gateway import MlflowGateway

    asked: dict[str, int] = {}

    class Page(list):  # type: ignore[type-arg]
        token = None

    class Client:
        def search_runs(self, **kwargs):  # type: ignore[no-untyped-def]
            asked["runs"] = kwargs["max_results"]
            return Page()

        def search_experiments(self, **kwargs):  # type: ignore[no-untyped-def]
            asked["experiments"] = kwargs["max_results"]
            return Page()

    gateway = MlflowGateway("http://127.0.0.1:9", client=Client())
    assert list(gateway.iter_runs(Query("1"))) == []
    assert list(gateway.iter_experiments()) == []
    assert asked == {"runs": 1000, "experiments": 200}
