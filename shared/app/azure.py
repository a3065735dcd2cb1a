"""The app's Azure side, one per process: its credential, the workspace's tracking URI, the
MLClient that restores jobs and the events publisher. The SDK calls are in `shared.azure`;
this module decides from the settings which of them the app needs and keeps what it built.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.azure.credential import (
    ARM_SCOPE,
    DEFAULT_PROBE_TIMEOUT,
    CredentialPlan,
    ProbeResult,
    plan_credential,
    probe,
)
from shared.azure.errors import CredentialUnavailable
from shared.azure.tracking_auth import is_azureml_uri, parse_tracking_uri
from shared.azure.workspace import WorkspaceRef
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.transport import HttpTransport

    from shared.azure.events_out import EventPublisher
    from shared.azure.workspace import WorkspaceResolver

__all__ = [
    "AzureSeam",
    "AzureServices",
    "process_azure",
    "reset_azure",
    "tracking_needs_azure",
    "use_azure",
    "workspace_mode",
    "workspace_of",
]


@dataclass(frozen=True, slots=True)
class AzureSeam:
    """What a test hands the app instead of the real thing: the credential, the azure-core
    transport azure-ai-ml's clients send through, and the CA bundle the events topic is
    trusted by. Nothing given: the app's own non-interactive chain and the network."""

    credential: TokenCredential | None = None
    transport: HttpTransport[Any, Any] | None = None
    events_verify: str | None = None
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT


def workspace_mode(settings: Settings) -> bool:
    """No `MLFLOW_TRACKING_URI`, but a workspace named: its tracking URI is asked of Azure."""
    return not settings.tracking_uri and settings.workspace is not None


def tracking_needs_azure(settings: Settings) -> bool:
    """Whether tracking calls need the app's credential (an `azureml://` URI, or a workspace
    whose URI is resolved)."""
    return is_azureml_uri(settings.tracking_uri) or workspace_mode(settings)


def workspace_of(settings: Settings) -> WorkspaceRef | None:
    """The workspace the app governs: the one the settings name, else the one an `azureml://`
    tracking URI points at; None for any other tracking server."""
    workspace = settings.workspace
    if workspace is not None:
        return WorkspaceRef(workspace.subscription_id, workspace.resource_group, workspace.name)
    if is_azureml_uri(settings.tracking_uri):
        target = parse_tracking_uri(str(settings.tracking_uri))
        return WorkspaceRef(target.subscription_id, target.resource_group, target.workspace_name)
    return None


class AzureServices:
    """The process's one credential and what is built on it, each made on first use.

    The credential is `shared.azure.credential.build_credential(AZURE_CLIENT_ID)` (never
    interactive) unless the seam gives one; every Azure call of the app goes through it.
    """

    def __init__(self, client_id: str | None, seam: AzureSeam | None = None) -> None:
        self.client_id = client_id
        self.seam = seam or AzureSeam()
        self._lock = threading.Lock()
        self._credential: TokenCredential | None = self.seam.credential
        self._resolver: WorkspaceResolver | None = None
        self._ml_clients: dict[WorkspaceRef, MLClient] = {}
        self._publishers: dict[tuple[str, str], EventPublisher] = {}
        self._token_ok: set[str] = set()

    def _client_kwargs(self) -> dict[str, Any]:
        return {} if self.seam.transport is None else {"transport": self.seam.transport}

    @property
    def credential(self) -> TokenCredential:
        with self._lock:
            if self._credential is None:
                from shared.azure.credential import build_credential

                self._credential = build_credential(self.client_id)
            return self._credential

    def plan(self) -> CredentialPlan:
        return plan_credential(self.client_id)

    def describe(self) -> str:
        """Which credential the app uses (for `mlgov check`)."""
        if self.seam.credential is not None:
            return f"{type(self.seam.credential).__name__} (given to the app)"
        return self.plan().describe()

    def probe(self, scope: str = ARM_SCOPE) -> ProbeResult:
        """Ask for one token within the seam's timeout; never raises."""
        result = probe(self.credential, scope, self.seam.probe_timeout, plan=self.plan())
        if result.ok:
            with self._lock:
                self._token_ok.add(scope)
        return result

    def require_identity(self, scope: str = ARM_SCOPE) -> None:
        """Fail within seconds, naming what to configure, when no token can be had (once a
        token came, the process does not ask again: the credential caches it)."""
        with self._lock:
            if scope in self._token_ok:
                return
        result = self.probe(scope)
        if not result.ok:
            raise CredentialUnavailable(f"no usable Azure identity: {result.message}")

    def resolver(self) -> WorkspaceResolver:
        from shared.azure.workspace import WorkspaceResolver

        credential = self.credential
        with self._lock:
            if self._resolver is None:
                self._resolver = WorkspaceResolver(credential, **self._client_kwargs())
            return self._resolver

    def tracking_uri(self, settings: Settings) -> str:
        """The URI MLflow talks to, with the app's credential handed to its `azureml://`
        client first: `MLFLOW_TRACKING_URI` when set, else the workspace's, resolved once."""
        from shared.azure.tracking_auth import configure_tracking_auth

        if settings.tracking_uri:
            if is_azureml_uri(settings.tracking_uri):
                configure_tracking_auth(settings.tracking_uri, self.credential)
            return settings.tracking_uri
        ref = workspace_of(settings)
        if ref is None:
            raise ValueError("no Azure ML workspace in the settings")
        return self.resolver().tracking_uri(ref)

    def ml_client(self, ref: WorkspaceRef) -> MLClient:
        from shared.azure.workspace import ml_client

        credential = self.credential
        with self._lock:
            client = self._ml_clients.get(ref)
            if client is None:
                client = ml_client(
                    credential,
                    ref.subscription_id,
                    ref.resource_group,
                    ref.name,
                    **self._client_kwargs(),
                )
                self._ml_clients[ref] = client
            return client

    def restore_job(self, ref: WorkspaceRef, run_id: str) -> None:
        """Un-archive the run's job in the workspace (`MLClient.jobs.restore`)."""
        from shared.azure.jobs import restore_job

        restore_job(self.ml_client(ref), run_id)

    def publisher(self, endpoint: str, source: str) -> EventPublisher:
        from shared.azure.events_out import EventPublisher

        credential = self.credential
        with self._lock:
            publisher = self._publishers.get((endpoint, source))
            if publisher is None:
                publisher = EventPublisher(
                    endpoint, credential, source, connection_verify=self.seam.events_verify
                )
                self._publishers[(endpoint, source)] = publisher
            return publisher


class _Process:
    """The process's AzureServices (one credential per process), and a test's seam."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.services: AzureServices | None = None
        self.seam: AzureSeam | None = None


_PROCESS = _Process()


def process_azure(settings: Settings) -> AzureServices:
    """The process's Azure services for these settings' identity (built once, kept)."""
    with _PROCESS.lock:
        services = _PROCESS.services
        if services is None or services.client_id != settings.azure_client_id:
            services = AzureServices(settings.azure_client_id, _PROCESS.seam)
            _PROCESS.services = services
        return services


def reset_azure() -> None:
    """Forget the process's credential and what was built on it (the next use rebuilds)."""
    with _PROCESS.lock:
        _PROCESS.services = None


@contextmanager
def use_azure(seam: AzureSeam) -> Iterator[None]:
    """Every App, gateway and `mlgov check` built meanwhile uses `seam` (for tests)."""
    with _PROCESS.lock:
        previous, _PROCESS.seam, _PROCESS.services = _PROCESS.seam, seam, None
    try:
        yield
    finally:
        with _PROCESS.lock:
            _PROCESS.seam, _PROCESS.services = previous, None
