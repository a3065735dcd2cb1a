"""Capability fallbacks of the MLflow adapter, with a client that refuses what Azure ML may."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from shared.tracking.gateway import RunQuery
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
    assert gateway.server_filters is False
    assert client.filters[0].startswith("attributes.status = 'FAILED'")
    # Later queries no longer send filters the server refused.
    client.filters.clear()
    assert {r.run_id for r in gateway.iter_runs(RunQuery("1", statuses=frozenset({"FAILED"})))} == {
        "a",
        "c",
    }
    assert client.filters == [""]


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
    assert gateway.server_filters is False
    assert gateway.server_tag_filters is True

    client.filters.clear()
    assert [r.run_id for r in gateway.iter_child_runs("1", "parent")] == ["child"]
    assert client.filters == ["tags.`mlflow.parentRunId` = 'parent'"]


def test_refused_tag_filter_falls_back_to_the_client_too():
    client = TagsOnlyClient()
    client.refuse_tags = True
    gateway = MlflowGateway("azureml://example", client=client)

    assert [r.run_id for r in gateway.iter_child_runs("1", "parent")] == ["child"]
    assert gateway.server_tag_filters is False
    assert client.filters[-1] == ""
