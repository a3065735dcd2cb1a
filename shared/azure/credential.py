"""The app's one Azure credential: managed identity in Azure, developer sign-ins elsewhere.

Never interactive: the chain holds only credentials that answer or fail on their own (no
browser, no device code), so an unattended sweep fails in seconds instead of waiting on a
prompt. `describe` says which credential would be used; `probe` tries it with a deadline.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.identity import ChainedTokenCredential

# The scope azureml-mlflow asks for on every tracking request: the cloud's Resource Manager
# endpoint + "/.default" (`Cloud._get_default_scope` in azureml/mlflow/_common/_cloud/cloud.py,
# called by `AzureMLAbstractRestStore.get_host_credentials`); azure-ai-ml's MLClient asks for
# the same one (`_get_cloud_information_from_metadata` -> credential_scopes).
ARM_SCOPE = "https://management.azure.com/.default"
# Azure ML's data-plane audience; some azure-ai-ml data-plane calls use it.
AML_SCOPE = "https://ml.azure.com/.default"
# Event Grid topics take tokens for this audience (azure.eventgrid._legacy._constants).
EVENTGRID_SCOPE = "https://eventgrid.azure.net/.default"

DEFAULT_PROBE_TIMEOUT = 10.0

Where = Literal["app-service", "developer"]


@dataclass(frozen=True, slots=True)
class CredentialPlan:
    """Which credentials the app would try, in order, and why (read from the environment)."""

    where: Where
    client_id: str | None
    sources: tuple[str, ...]
    service_principal: bool = False

    def describe(self) -> str:
        if self.where == "app-service":
            kind = (
                f"user-assigned, client id {self.client_id}"
                if self.client_id
                else "system-assigned (AZURE_CLIENT_ID not set)"
            )
            return f"managed identity of the App Service / Functions host ({kind})"
        first = (
            f"service principal from the environment (client id {self.client_id})"
            if self.service_principal
            else "environment service principal (not configured)"
        )
        return f"developer sign-in: {first}, then Azure CLI, then Azure Developer CLI"

    def what_to_configure(self) -> str:
        if self.where == "app-service":
            return (
                "give the Function App a managed identity with a role on the workspace "
                "(AzureML Data Scientist); for a user-assigned identity set AZURE_CLIENT_ID to "
                "its client id and attach it to the app"
            )
        return (
            "sign in with `az login` (or `azd auth login`), or set AZURE_TENANT_ID, "
            "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for a service principal"
        )


def _app_service_identity(environ: Mapping[str, str]) -> bool:
    # azure-identity picks its App Service / Functions managed identity exactly when both are
    # set (ManagedIdentityCredential.__init__ in azure/identity/_credentials/managed_identity.py;
    # without IDENTITY_SERVER_THUMBPRINT, which would mean Service Fabric). The host injects them.
    return bool(
        environ.get("IDENTITY_ENDPOINT")
        and environ.get("IDENTITY_HEADER")
        and not environ.get("IDENTITY_SERVER_THUMBPRINT")
    )


def _service_principal(environ: Mapping[str, str]) -> bool:
    # The variable sets EnvironmentCredential accepts (azure/identity/_constants.py).
    if not (environ.get("AZURE_TENANT_ID") and environ.get("AZURE_CLIENT_ID")):
        return False
    return bool(environ.get("AZURE_CLIENT_SECRET") or environ.get("AZURE_CLIENT_CERTIFICATE_PATH"))


def plan_credential(
    client_id: str | None = None, environ: Mapping[str, str] | None = None
) -> CredentialPlan:
    """What `build_credential` would build here.

    `client_id` selects a user-assigned identity; without it AZURE_CLIENT_ID is read, the
    variable azure-identity's own DefaultAzureCredential uses for the same purpose.
    """
    env = os.environ if environ is None else environ
    client_id = client_id or env.get("AZURE_CLIENT_ID") or None
    if _app_service_identity(env):
        return CredentialPlan("app-service", client_id, ("ManagedIdentityCredential",))
    return CredentialPlan(
        "developer",
        client_id,
        ("EnvironmentCredential", "AzureCliCredential", "AzureDeveloperCliCredential"),
        service_principal=_service_principal(env),
    )


def build_credential(client_id: str | None = None, **client_kwargs: Any) -> ChainedTokenCredential:
    """The app's credential for this process's environment (see `plan_credential`).

    In App Service / Functions only the managed identity is tried: an identity that cannot
    get a token must fail, not fall through to someone's CLI login. `client_kwargs` (e.g. a
    `transport`) go to the credentials that make HTTP calls.
    """
    from azure.identity import (
        AzureCliCredential,
        AzureDeveloperCliCredential,
        ChainedTokenCredential,
        EnvironmentCredential,
        ManagedIdentityCredential,
    )

    plan = plan_credential(client_id)
    if plan.where == "app-service":
        return ChainedTokenCredential(
            ManagedIdentityCredential(client_id=plan.client_id, **client_kwargs)
        )
    return ChainedTokenCredential(
        EnvironmentCredential(**client_kwargs),
        AzureCliCredential(process_timeout=10),
        AzureDeveloperCliCredential(process_timeout=10),
    )


def describe(client_id: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """One line for `mlgov check`: which credential the app would use here."""
    return plan_credential(client_id, environ).describe()


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of asking for one token; `message` never contains the token."""

    ok: bool
    scope: str
    message: str
    expires_on: int | None = None


# Lines of a chain's error that carry no reason: its header and troubleshooting links.
_NOISE = ("ChainedTokenCredential failed", "Attempted credentials", "To mitigate", "Visit http")


def _reasons(error: BaseException, limit: int = 6, width: int = 200) -> str:
    # A chain's error gives each credential's failure on its own line: keep those, one line.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    kept = [line[:width].rstrip(" .") for line in lines if not line.startswith(_NOISE)]
    return "; ".join(kept[:limit]) or type(error).__name__


def probe(
    credential: TokenCredential,
    scope: str = ARM_SCOPE,
    timeout: float = DEFAULT_PROBE_TIMEOUT,
    *,
    plan: CredentialPlan | None = None,
) -> ProbeResult:
    """Try to get a token for `scope` within `timeout` seconds; never raises.

    The token request runs on a daemon thread so a credential that hangs (an identity
    endpoint that never answers) cannot hold the caller past the deadline.
    """
    plan = plan or plan_credential()
    outcome: dict[str, Any] = {}

    def ask() -> None:
        try:
            outcome["token"] = credential.get_token(scope)
        except BaseException as exc:  # noqa: BLE001 - reported, not raised: this is a probe
            outcome["error"] = exc

    worker = threading.Thread(target=ask, name="mlgov-credential-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        message = f"{plan.describe()}: no token for {scope} within {timeout:g} s"
        return ProbeResult(False, scope, f"{message}; {plan.what_to_configure()}")
    if "error" in outcome:
        reason = _reasons(outcome["error"])
        message = f"{plan.describe()} could not get a token for {scope}: {reason}"
        return ProbeResult(False, scope, f"{message}. To fix: {plan.what_to_configure()}")
    token = outcome["token"]
    return ProbeResult(True, scope, f"{plan.describe()}: token for {scope}", int(token.expires_on))


def require_token(
    credential: TokenCredential,
    scope: str = ARM_SCOPE,
    timeout: float = DEFAULT_PROBE_TIMEOUT,
    *,
    plan: CredentialPlan | None = None,
) -> None:
    """`probe`, raising `CredentialUnavailable` with its message when no token came."""
    from shared.azure.errors import CredentialUnavailable

    result = probe(credential, scope, timeout, plan=plan)
    if not result.ok:
        raise CredentialUnavailable(result.message)
