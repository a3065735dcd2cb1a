"""The app's credential: which chain it builds where, that no link can prompt, and the probe.

The App Service identity endpoint is answered by an in-memory transport in the documented
shape; elsewhere PATH holds no `az`/`azd` and no service principal is set, so nothing is asked
of IMDS or login.microsoftonline.com (the session's network guard would fail the test).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from azure.core.credentials import AccessToken
from azure.identity import (
    AzureCliCredential,
    AzureDeveloperCliCredential,
    ChainedTokenCredential,
    DeviceCodeCredential,
    EnvironmentCredential,
    InteractiveBrowserCredential,
    ManagedIdentityCredential,
)

from shared.azure import credential as cred
from shared.azure.errors import CredentialUnavailable
from tests.azure_support import FakeAzure, Seen

IDENTITY_ENDPOINT = "http://127.0.0.1:41741/msi/token/"
IDENTITY_HEADER = "header-secret-value"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
# Interactive kinds: azure-identity's own base class plus the two azureml-mlflow appends.
INTERACTIVE = (InteractiveBrowserCredential, DeviceCodeCredential)


@pytest.fixture(name="no_identity")
def no_identity_fixture(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No identity of any kind: no Azure env vars, and no az / azd on PATH."""
    import os

    for key in list(os.environ):
        if key.startswith(("AZURE_", "IDENTITY_", "MSI_")):
            monkeypatch.delenv(key)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return monkeypatch


@pytest.fixture(name="app_service")
def app_service_fixture(no_identity: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The variables the Functions / App Service host injects for its managed identity."""
    no_identity.setenv("IDENTITY_ENDPOINT", IDENTITY_ENDPOINT)
    no_identity.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    return no_identity


def _interactive_base() -> type:
    from azure.identity._internal import InteractiveCredential

    return InteractiveCredential


def assert_never_interactive(chain: ChainedTokenCredential) -> None:
    for link in chain.credentials:
        assert not isinstance(link, (*INTERACTIVE, _interactive_base())), type(link)


def test_developer_chain_is_exactly_the_non_interactive_sign_ins(no_identity) -> None:
    chain = cred.build_credential()
    assert isinstance(chain, ChainedTokenCredential)
    assert [type(c) for c in chain.credentials] == [
        EnvironmentCredential,
        AzureCliCredential,
        AzureDeveloperCliCredential,
    ]
    assert_never_interactive(chain)


def test_app_service_chain_is_only_the_managed_identity(app_service) -> None:
    chain = cred.build_credential(CLIENT_ID)
    assert [type(c) for c in chain.credentials] == [ManagedIdentityCredential]
    assert_never_interactive(chain)
    # azure-identity chose its App Service flavour from IDENTITY_ENDPOINT/IDENTITY_HEADER,
    # not IMDS (169.254.169.254).
    assert type(chain.credentials[0]._credential).__name__ == "AppServiceCredential"


def test_azureml_mlflow_default_chain_would_prompt() -> None:
    """Why the app owns its credential: azureml-mlflow's own chain ends in prompts."""
    import inspect

    from azureml.mlflow._internal import utils

    source = inspect.getsource(utils.get_service_context_from_tracking_url_default_auth)
    assert "InteractiveBrowserCredential(" in source
    assert "DeviceCodeCredential(" in source


@pytest.mark.parametrize(
    ("environ", "where", "client_id", "service_principal"),
    [
        ({}, "developer", None, False),
        ({"AZURE_CLIENT_ID": CLIENT_ID}, "developer", CLIENT_ID, False),
        (
            {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_CLIENT_SECRET": "s"},
            "developer",
            CLIENT_ID,
            True,
        ),
        ({"IDENTITY_ENDPOINT": IDENTITY_ENDPOINT}, "developer", None, False),
        (
            {"IDENTITY_ENDPOINT": IDENTITY_ENDPOINT, "IDENTITY_HEADER": "h"},
            "app-service",
            None,
            False,
        ),
        (
            {
                "IDENTITY_ENDPOINT": IDENTITY_ENDPOINT,
                "IDENTITY_HEADER": "h",
                "IDENTITY_SERVER_THUMBPRINT": "x",
            },
            "developer",
            None,
            False,
        ),
    ],
)
def test_plan_follows_the_environment(environ, where, client_id, service_principal) -> None:
    plan = cred.plan_credential(environ=environ)
    assert (plan.where, plan.client_id, plan.service_principal) == (
        where,
        client_id,
        service_principal,
    )


def test_describe_names_the_identity() -> None:
    env = {"IDENTITY_ENDPOINT": IDENTITY_ENDPOINT, "IDENTITY_HEADER": "h"}
    assert "user-assigned, client id " + CLIENT_ID in cred.describe(CLIENT_ID, env)
    assert "system-assigned" in cred.describe(None, env)
    assert "Azure CLI" in cred.describe(None, {})
    assert "h" not in cred.describe(None, {"IDENTITY_HEADER": "h"}).split()


def _token_endpoint(fake: FakeAzure, expires_on: int) -> None:
    def answer(seen: Seen) -> tuple[int, object]:
        if seen.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
            return 401, {"error": "missing header"}
        # The App Service identity endpoint's documented answer (api-version 2019-08-01).
        return 200, {
            "access_token": "managed-identity-token",
            "expires_on": str(expires_on),
            "resource": seen.query["resource"][0],
            "token_type": "Bearer",
            "client_id": seen.query.get("client_id", [""])[0],
        }

    fake.on("GET", "/msi/token/?", answer)


def test_probe_gets_a_managed_identity_token(app_service) -> None:
    fake = FakeAzure()
    expires = int(time.time()) + 3600
    _token_endpoint(fake, expires)
    chain = cred.build_credential(CLIENT_ID, transport=fake.transport())

    result = cred.probe(chain, cred.ARM_SCOPE, timeout=30)

    assert result.ok, result.message
    assert result.expires_on == expires
    (request,) = fake.seen
    assert request.url.startswith(IDENTITY_ENDPOINT)
    assert request.query["resource"] == ["https://management.azure.com"]
    assert request.query["client_id"] == [CLIENT_ID]
    assert "managed-identity-token" not in result.message


def test_probe_of_an_unassigned_identity_says_what_to_configure(app_service) -> None:
    fake = FakeAzure().on(
        "GET",
        "/msi/token/?",
        (400, {"statusCode": 400, "message": "No managed identity found for specified ClientId"}),
    )
    chain = cred.build_credential(CLIENT_ID, transport=fake.transport())

    result = cred.probe(chain, cred.ARM_SCOPE, timeout=30)

    assert not result.ok
    assert result.expires_on is None
    assert "managed identity" in result.message
    assert "AZURE_CLIENT_ID" in result.message
    assert IDENTITY_HEADER not in result.message


def test_probe_with_no_identity_fails_without_any_network(no_identity) -> None:
    chain = cred.build_credential()

    result = cred.probe(chain, cred.ARM_SCOPE, timeout=30)

    assert not result.ok
    assert "az login" in result.message
    assert "AZURE_CLIENT_SECRET" in result.message
    with pytest.raises(CredentialUnavailable) as raised:
        cred.require_token(chain, cred.ARM_SCOPE, timeout=30)
    assert str(raised.value) == result.message


class _Hanging:
    def __init__(self) -> None:
        self.release = threading.Event()

    def get_token(self, *scopes: str, **_: object) -> AccessToken:
        self.release.wait()
        return AccessToken("late", 0)


def test_probe_stops_waiting_at_its_deadline(no_identity) -> None:
    hanging = _Hanging()
    try:
        result = cred.probe(hanging, cred.ARM_SCOPE, timeout=0.2)  # type: ignore[arg-type]
    finally:
        hanging.release.set()
    assert not result.ok
    assert "no token for https://management.azure.com/.default within 0.2 s" in result.message
