"""The adapter gives up refused filters one kind at a time: attributes first, then tags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from shared.tracking.gateway import RunQuery
from shared.tracking.mlflow_gateway import MlflowGateway

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Refused(Exception):
    error_code = "INVALID_PARAMETER_VALUE"


class Page(list):
    token = None


def raw_run(run_id, status, hours_ago, tags):
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
        data=SimpleNamespace(tags=tags, metrics={}),
    )


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
