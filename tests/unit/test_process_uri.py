"""MLflow's process-wide tracking URI lent to one gateway's artifact call at a time.

What azureml-mlflow's artifact repository reads is `MlflowClient()`'s URI (the module global,
else MLFLOW_TRACKING_URI): these tests resolve it as `MlflowClient()` does, from threads that
hold the scope for different workspaces. tests/integration/test_artifact_scope.py lists real
artifacts through azureml-mlflow itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import mlflow
import pytest
from mlflow.tracking._tracking_service import utils

from shared.budget import deadline
from shared.errors import TrackingUnavailable
from shared.tracking import process_uri
from shared.tracking.process_uri import needs_process_uri, process_tracking_uri

WS = (
    "azureml://westeurope.api.azureml.ms/mlflow/v2.0/subscriptions/"
    "00000000-1111-2222-3333-444444444444/resourceGroups/rg/providers/"
    "Microsoft.MachineLearningServices/workspaces/{}"
)
A, B, C = WS.format("mlw-a"), WS.format("mlw-b"), WS.format("mlw-c")
SAFETY_S = 30  # only so that a broken lease fails the test instead of hanging it


def default_client_uri() -> str:
    """The URI `MlflowClient()` is built on (`utils._resolve_tracking_uri(None)`,
    mlflow/tracking/client.py): the store azureml-mlflow's `get_service_context` reads."""
    return str(utils._resolve_tracking_uri(None))


@pytest.fixture(autouse=True)
def process_setting(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's MLflow setting as a deployment leaves it, put back afterwards."""
    saved = utils._tracking_uri
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    yield
    mlflow.set_tracking_uri(saved)  # type: ignore[arg-type]


def wait_until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    done = threading.Event()
    for _ in range(SAFETY_S * 100):
        if condition():
            return
        done.wait(0.01)
    pytest.fail(f"never happened: {what}")


def test_only_azureml_uris_are_lent() -> None:
    assert needs_process_uri(A)
    assert needs_process_uri(A.replace("azureml", "AzureML", 1))
    assert not needs_process_uri("http://127.0.0.1:5000")
    assert not needs_process_uri("sqlite:///mlflow.db")
    assert not needs_process_uri(None)

    with process_tracking_uri("http://127.0.0.1:5000"):
        assert utils._tracking_uri is None  # untouched: MLflow's own repositories take the URI


def test_the_block_sees_the_gateways_uri_and_the_process_setting_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As a deployment leaves it: a variable set by the host, no global (nothing called set).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", C)

    with process_tracking_uri(A):
        assert default_client_uri() == A
        with process_tracking_uri(A):  # the same gateway's call inside its call
            assert default_client_uri() == A
        assert default_client_uri() == A
        # The variable the settings are read from is never the lent URI.
        assert os.environ["MLFLOW_TRACKING_URI"] == C

    assert utils._tracking_uri is None
    assert os.environ["MLFLOW_TRACKING_URI"] == C
    assert default_client_uri() == C


def test_a_uri_set_for_the_whole_process_stays_set() -> None:
    """One workspace: `build_gateway` made its URI the process's; its calls change nothing."""
    mlflow.set_tracking_uri(A)

    with process_tracking_uri(A):
        assert default_client_uri() == A
    with process_tracking_uri(B):
        assert default_client_uri() == B

    assert utils._tracking_uri == A
    assert os.environ["MLFLOW_TRACKING_URI"] == A


def test_a_call_for_another_workspace_waits_until_the_first_is_done() -> None:
    seen: list[tuple[str, str]] = []
    a_inside, a_may_leave = threading.Event(), threading.Event()

    def call_a() -> None:
        with process_tracking_uri(A):
            seen.append(("a", default_client_uri()))
            a_inside.set()
            assert a_may_leave.wait(SAFETY_S)
            seen.append(("a", default_client_uri()))

    def call_b() -> None:
        with process_tracking_uri(B):
            seen.append(("b", default_client_uri()))

    first = threading.Thread(target=call_a)
    first.start()
    assert a_inside.wait(SAFETY_S)
    second = threading.Thread(target=call_b)
    second.start()
    wait_until(lambda: process_uri._LEASE._waiting == 1, "b waits for a")
    a_may_leave.set()
    first.join(SAFETY_S)
    second.join(SAFETY_S)

    assert seen == [("a", A), ("a", A), ("b", B)]
    assert utils._tracking_uri is None
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_calls_for_the_same_workspace_run_together() -> None:
    both_inside = threading.Barrier(2, timeout=SAFETY_S)
    seen: list[str] = []

    def call() -> None:
        with process_tracking_uri(A):
            both_inside.wait()  # breaks (and fails the test) if the second had to wait
            seen.append(default_client_uri())

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SAFETY_S)

    assert seen == [A, A]


def test_many_calls_of_two_workspaces_each_see_their_own() -> None:
    wrong: list[tuple[str, str]] = []

    def calls(uri: str) -> None:
        for _ in range(200):
            with process_tracking_uri(uri):
                got = default_client_uri()
                if got != uri:
                    wrong.append((uri, got))

    threads = [threading.Thread(target=calls, args=(u,)) for u in (A, B, A, B)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SAFETY_S)

    assert wrong == []
    assert utils._tracking_uri is None


def test_waiting_past_the_deadline_is_tracking_unavailable() -> None:
    a_inside, a_may_leave = threading.Event(), threading.Event()

    def hold_a() -> None:
        with process_tracking_uri(A):
            a_inside.set()
            assert a_may_leave.wait(SAFETY_S)

    holder = threading.Thread(target=hold_a)
    holder.start()
    assert a_inside.wait(SAFETY_S)
    try:
        with (
            deadline("event invocation", 0),
            pytest.raises(TrackingUnavailable, match="list_artifacts not attempted"),
            process_tracking_uri(B, "list_artifacts"),
        ):
            pytest.fail("entered while another workspace's call held the URI")
        assert process_uri._LEASE._waiting == 0
    finally:
        a_may_leave.set()
        holder.join(SAFETY_S)
    with process_tracking_uri(B):  # the lease is free again
        assert default_client_uri() == B
