"""MLflow's process-wide tracking URI, lent to one gateway while a call of it runs that
azureml-mlflow resolves through MLflow's *default* client.

azureml-mlflow's artifact repository takes its workspace from the default client, not from the
tracking URI it is handed: `AzureMLflowArtifactRepository.__init__` calls
`get_artifact_repository_client(artifact_uri)`, which calls `get_service_context`, which reads
`MlflowClient()._tracking_client.store` and, when that is an `AzureMLRestStore`, uses its
service context (azureml/mlflow/_store/artifact/artifact_repo.py and utils.py,
azureml-mlflow 1.62). `MlflowClient()` resolves its URI through
`mlflow.tracking._tracking_service.utils.get_tracking_uri()`: the module global
`_tracking_uri` that `mlflow.set_tracking_uri` sets, else the `MLFLOW_TRACKING_URI` variable.
The listing then names that service context's subscription, resource group and workspace in
its request (`RunArtifactsClient.get_file_paths`, azureml/mlflow/_client/artifact/
run_artifact_client.py), whatever workspace the run is in. With several workspaces in one
process, the global must therefore be the calling gateway's URI for the whole call.

`process_tracking_uri(uri)` makes it so: calls for the same URI run together; a call for
another URI waits until they are done, and one waiting for another URI holds new ones back
(no workspace waits for ever). The global is put back as it was when the last call ends; the
variable is never touched. Only `azureml://` URIs need this: MLflow's own
artifact repositories take the tracking URI they are given (mlflow/store/artifact/
artifact_repository_registry.py, `get_artifact_repository(..., tracking_uri=)`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from shared.budget import current
from shared.errors import TrackingUnavailable

__all__ = ["needs_process_uri", "process_tracking_uri"]


def needs_process_uri(uri: str | None) -> bool:
    """Whether calls through `uri` may resolve their workspace through the default client."""
    return bool(uri) and urlsplit(str(uri)).scheme.lower() == "azureml"


def _current() -> str | None:
    from mlflow.tracking._tracking_service import utils

    return getattr(utils, "_tracking_uri", None)


def _apply(uri: str | None) -> None:
    """MLflow's process-wide tracking URI set to `uri` (None: back to MLFLOW_TRACKING_URI).

    The module global alone, not `mlflow.set_tracking_uri`: that also exports the variable
    (which the settings are read from) and resets the tracer provider, neither wanted for the
    length of one call. Checked, so that a renamed global fails the call instead of leaving
    the listing to another workspace.
    """
    from mlflow.tracking._tracking_service import utils

    utils._tracking_uri = uri  # type: ignore[assignment]  # declared `None` in MLflow
    if uri is not None and utils.get_tracking_uri() != uri:
        raise RuntimeError(
            "cannot set MLflow's process tracking URI (mlflow.tracking._tracking_service."
            "utils._tracking_uri is not what get_tracking_uri reads)"
        )


class _Lease:
    """Who holds the process-wide URI now: `holders` calls for `uri`, `waiting` for others."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._uri: str | None = None
        self._holders = 0
        self._waiting = 0
        self._saved: str | None = None
        self._mine = threading.local()

    def _held(self) -> list[str]:
        held: list[str] | None = getattr(self._mine, "held", None)
        if held is None:
            held = self._mine.held = []
        return held

    def acquire(self, uri: str, timeout: float | None) -> None:
        held = self._held()
        with self._changed:
            if held:  # a call inside a call of this thread: the same gateway's, never another's
                if held[-1] != uri:
                    raise RuntimeError("another workspace's call inside an artifact call")
                self._holders += 1
                held.append(uri)
                return
            end = None if timeout is None else time.monotonic() + timeout
            counted = False
            try:
                while not (self._holders == 0 or (self._uri == uri and self._waiting == 0)):
                    if not counted and self._uri != uri:
                        self._waiting += 1
                        counted = True
                    left = None if end is None else end - time.monotonic()
                    if left is not None and left <= 0:
                        raise TimeoutError
                    self._changed.wait(left)
            finally:
                if counted:
                    self._waiting -= 1
                    self._changed.notify_all()
            if self._holders == 0:
                self._saved = _current()
                if self._saved != uri:
                    _apply(uri)
                self._uri = uri
            self._holders += 1
        held.append(uri)

    def release(self) -> None:
        self._held().pop()
        with self._changed:
            self._holders -= 1
            if self._holders == 0:
                if self._saved != self._uri:
                    _apply(self._saved)
                self._uri = None
                self._changed.notify_all()


_LEASE = _Lease()


@contextmanager
def process_tracking_uri(
    uri: str, what: str = "artifact call", *, always: bool = False
) -> Iterator[None]:
    """Run the block with MLflow's process-wide tracking URI set to `uri` (a no-op for URIs
    whose calls never read it, unless `always`: a local store's registry reads it too).
    Waiting for it is bounded by the current deadline scope (`shared.budget`): past it,
    `TrackingUnavailable` and the call is not started."""
    if not (always or needs_process_uri(uri)):
        yield
        return
    scope = current()
    try:
        _LEASE.acquire(uri, None if scope is None else max(0.0, scope.remaining()))
    except TimeoutError:
        assert scope is not None
        raise TrackingUnavailable(
            f"{what} not attempted: {scope.why_expired()} while another workspace's "
            "artifact call held the process's MLflow tracking URI"
        ) from None
    try:
        yield
    finally:
        _LEASE.release()
