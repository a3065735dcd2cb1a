"""Azure ML workspaces from their coordinates, through azure-ai-ml's MLClient.

`WorkspaceRef` is a workspace's coordinates (or its ARM id, parsed); `WorkspaceResolver` asks
`MLClient.workspaces.get(name).mlflow_tracking_uri` once per workspace per process and points
MLflow's `azureml://` client at the app's credential; `list_workspaces` discovers the
workspaces of a subscription or resource group (`MLClient.workspaces.list(scope=...)`).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.azure.errors import WorkspaceNotFound, reraise

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.core.credentials import TokenCredential

_ARM_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)
_SCOPE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)(?:/resourceGroups/(?P<rg>[^/]+))?/?$", re.IGNORECASE
)
_ARM_ID_FORM = (
    "/subscriptions/<id>/resourceGroups/<group>/providers/"
    "Microsoft.MachineLearningServices/workspaces/<name>"
)

# A Functions invocation has minutes, Event Grid's delivery 30 s: azure-core's defaults
# (10 retries, 300 s socket timeouts) would outlast both. Callers may override any of them.
CLIENT_DEFAULTS: dict[str, Any] = {"retry_total": 3, "connection_timeout": 10, "read_timeout": 60}


@dataclass(frozen=True, slots=True)
class WorkspaceRef:
    """An Azure ML workspace's coordinates."""

    subscription_id: str
    resource_group: str
    name: str

    @classmethod
    def from_arm_id(cls, arm_id: str) -> WorkspaceRef:
        """Parse `/subscriptions/…/resourceGroups/…/providers/…/workspaces/<name>`."""
        match = _ARM_ID.match(arm_id.strip())
        if match is None:
            raise ValueError(f"not a workspace ARM id (expected {_ARM_ID_FORM})")
        return cls(match["sub"], match["rg"], match["name"])

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}"
        )


@dataclass(frozen=True, slots=True)
class WorkspaceInfo:
    """A workspace found by discovery: where it is and what kind (default, hub, project)."""

    ref: WorkspaceRef
    location: str | None
    kind: str | None


def ml_client(
    credential: TokenCredential,
    subscription_id: str,
    resource_group: str | None = None,
    workspace_name: str | None = None,
    *,
    cloud: str = "AzureCloud",
    **client_kwargs: Any,
) -> MLClient:
    """An `MLClient` with the app's credential, the cloud named and SDK telemetry off.

    Naming the cloud keeps the SDK from fetching cloud metadata; telemetry off keeps it from
    sending usage logs to Application Insights on its own. `client_kwargs` (a `transport`,
    retry or timeout options) go to every service client inside.
    """
    from azure.ai.ml import MLClient

    options = {**CLIENT_DEFAULTS, **client_kwargs}
    return MLClient(
        credential,
        subscription_id=subscription_id,
        resource_group_name=resource_group,
        workspace_name=workspace_name,
        cloud=cloud,
        enable_telemetry=False,
        **options,
    )


def resolve_tracking_uri(
    credential: TokenCredential, ref: WorkspaceRef, **client_kwargs: Any
) -> str:
    """The workspace's MLflow tracking URI, asked of Azure now (no cache)."""
    from azure.core.exceptions import AzureError

    client = ml_client(
        credential, ref.subscription_id, ref.resource_group, ref.name, **client_kwargs
    )
    try:
        workspace = client.workspaces.get(ref.name)
    except AzureError as exc:
        reraise(exc, f"workspace {ref.arm_id}")
    uri = getattr(workspace, "mlflow_tracking_uri", None)
    if not uri:
        raise WorkspaceNotFound(f"workspace {ref.arm_id} reports no MLflow tracking URI")
    return str(uri)


class WorkspaceResolver:
    """Tracking URIs by workspace, each resolved once for the process and then remembered.

    Resolving also hands the credential to MLflow's `azureml://` client for that URI
    (`configure_tracking_auth`), so the client never builds a chain of its own.
    """

    def __init__(
        self, credential: TokenCredential, *, cloud: str = "AzureCloud", **client_kwargs: Any
    ) -> None:
        self._credential = credential
        self._cloud = cloud
        self._client_kwargs = client_kwargs
        self._lock = threading.Lock()
        self._uris: dict[WorkspaceRef, str] = {}

    def tracking_uri(self, ref: WorkspaceRef) -> str:
        with self._lock:
            known = self._uris.get(ref)
        if known is not None:
            return known
        from shared.azure.tracking_auth import configure_tracking_auth

        uri = resolve_tracking_uri(self._credential, ref, cloud=self._cloud, **self._client_kwargs)
        configure_tracking_auth(uri, self._credential, cloud=self._cloud)
        with self._lock:
            return self._uris.setdefault(ref, uri)

    def known(self) -> dict[WorkspaceRef, str]:
        with self._lock:
            return dict(self._uris)

    def forget(self, ref: WorkspaceRef | None = None) -> None:
        """Drop one remembered URI (or all), e.g. after a workspace moved region."""
        with self._lock:
            if ref is None:
                self._uris.clear()
            else:
                self._uris.pop(ref, None)


def parse_scope(scope: str) -> tuple[str, str | None]:
    """`/subscriptions/<id>` or `/subscriptions/<id>/resourceGroups/<group>` -> (id, group)."""
    match = _SCOPE.match(scope.strip())
    if match is None:
        raise ValueError(
            "not a discovery scope (expected /subscriptions/<id> or "
            "/subscriptions/<id>/resourceGroups/<group>)"
        )
    return match["sub"], match["rg"]


def list_workspaces(
    credential: TokenCredential, scope: str, **client_kwargs: Any
) -> list[WorkspaceInfo]:
    """Every workspace in a subscription or resource group scope, in Azure's order."""
    from azure.core.exceptions import AzureError

    subscription_id, resource_group = parse_scope(scope)
    client = ml_client(credential, subscription_id, resource_group, **client_kwargs)
    listing = "subscription" if resource_group is None else "resource_group"
    try:
        found = list(client.workspaces.list(scope=listing))
    except AzureError as exc:
        reraise(exc, f"workspaces of {scope}")
    infos: list[WorkspaceInfo] = []
    for workspace in found:
        workspace_id = getattr(workspace, "id", None) or ""
        try:
            ref = WorkspaceRef.from_arm_id(workspace_id)
        except ValueError:
            ref = WorkspaceRef(subscription_id, workspace.resource_group, workspace.name)
        infos.append(WorkspaceInfo(ref, workspace.location, getattr(workspace, "_kind", None)))
    return infos
