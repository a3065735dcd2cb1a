"""Make MLflow's `azureml://` client authenticate with the app's credential, not its own chain.

Left alone, azureml-mlflow builds a service context per tracking URI whose credential ends in
InteractiveBrowserCredential and DeviceCodeCredential
(`get_service_context_from_tracking_url_default_auth`, azureml/mlflow/_internal/utils.py),
and finding the cloud for it may fetch ARM metadata. Its loader keeps those contexts in a
per-URI cache (`_AzureMLServiceContextLoader`, azureml/mlflow/_internal/service_context_loader.py)
that every `azureml://` store, registry and artifact repository reads first; azure-ai-ml's own
`workspaces.get` fills it the same way (`azureml.mlflow.get_mlflow_tracking_uri_v2`). We put
a context holding our credential, with the cloud named explicitly, there before MLflow asks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

# The path azureml-mlflow parses (`_WORKSPACE_INFO_REGEX` in azureml/mlflow/_internal/utils.py).
_WORKSPACE_PATH = re.compile(
    r".*/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/?]+)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class AzureMLTrackingTarget:
    """The workspace an `azureml://` tracking URI points at, and the host serving it."""

    uri: str
    host: str
    subscription_id: str
    resource_group: str
    workspace_name: str


def parse_tracking_uri(uri: str) -> AzureMLTrackingTarget:
    """The parts of an `azureml://<host>/mlflow/v…/subscriptions/…/workspaces/<name>` URI."""
    parts = urlsplit(uri)
    match = _WORKSPACE_PATH.match(parts.path)
    if parts.scheme != "azureml" or not parts.netloc or match is None:
        raise ValueError(
            "not an Azure ML workspace tracking URI (azureml://<region>.api.azureml.ms/mlflow/"
            "v2.0/subscriptions/<id>/resourceGroups/<group>/providers/"
            "Microsoft.MachineLearningServices/workspaces/<name>)"
        )
    return AzureMLTrackingTarget(uri, parts.netloc, match["sub"], match["rg"], match["ws"])


def is_azureml_uri(uri: str | None) -> bool:
    return bool(uri) and urlsplit(str(uri)).scheme == "azureml"


def configure_tracking_auth(
    tracking_uri: str, credential: TokenCredential, *, cloud: str = "AzureCloud"
) -> None:
    """From now on, MLflow clients for `tracking_uri` get their tokens from `credential`.

    Call it before the first `MlflowClient` for the URI; calling it again (or after a client
    exists) swaps the credential in place, so clients already built use the new one too.
    `cloud` is an azureml-mlflow cloud name (AzureCloud, AzureChinaCloud, AzureUSGovernment).
    """
    from azureml.mlflow._common._cloud.cloud import KNOWN_CLOUDS
    from azureml.mlflow._internal.service_context_loader import _AzureMLServiceContextLoader
    from azureml.mlflow._internal.utils import ServiceContext

    target = parse_tracking_uri(tracking_uri)
    if cloud not in KNOWN_CLOUDS:
        raise ValueError(f"unknown Azure cloud {cloud!r}; one of {', '.join(KNOWN_CLOUDS)}")
    loader: Any = _AzureMLServiceContextLoader
    if loader.has_service_context(tracking_uri):
        existing = loader.get_service_context(tracking_uri)
        # Stores MLflow has cached hold this very object: replacing its credential reaches them.
        existing._auth = credential
        existing._cloud = KNOWN_CLOUDS[cloud]
        return
    context = ServiceContext(
        host_url=f"https://{target.host}",
        subscription_id=target.subscription_id,
        workspace_name=target.workspace_name,
        resource_group_name=target.resource_group,
        auth=credential,
        cloud=KNOWN_CLOUDS[cloud],
    )
    loader.add_service_context(tracking_uri, context)


def tracking_credential(tracking_uri: str) -> object | None:
    """The credential MLflow would use for `tracking_uri` now (None: none configured yet)."""
    from azureml.mlflow._internal.service_context_loader import _AzureMLServiceContextLoader

    loader: Any = _AzureMLServiceContextLoader
    if not loader.has_service_context(tracking_uri):
        return None
    auth: object = loader.get_service_context(tracking_uri).auth
    return auth
