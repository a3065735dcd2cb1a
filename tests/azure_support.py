"""Test doubles for the Azure SDKs: a static credential and an in-memory transport.

`FakeAzure` is azure-core's own `RequestsTransport` over a `requests` session whose adapter
answers from a routing table instead of opening a socket, so every SDK call goes through the
SDK's real pipeline (policies, serialisation, response types) and nothing leaves the process.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import urllib3
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter

SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
RESOURCE_GROUP = "workspace-1234"
WORKSPACE = "testworkspace"
ARM = "https://management.azure.com"
WORKSPACE_PATH = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    f"/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}"
)


class StaticCredential:
    """A `TokenCredential` that hands out one fixed token and records each scope asked for."""

    def __init__(self, token: str = "static-test-token") -> None:  # noqa: S107
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.scopes.append(scopes)
        return AccessTokenInfo(self.token, int(time.time()) + 3600)


@dataclass
class Seen:
    """One request as the transport received it."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query)

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, Any]
Handler = Callable[[Seen], Answer]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    answer: Handler


@dataclass
class FakeAzure:
    """Routes `(method, path regex) -> (status, JSON body)`; unrouted requests answer 404."""

    routes: list[Route] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def on(self, method: str, path_regex: str, answer: Handler | Answer) -> FakeAzure:
        if callable(answer):
            handler: Handler = answer
        else:
            fixed: Answer = answer

            def handler(_seen: Seen) -> Answer:
                return fixed

        self.routes.append(Route(method.upper(), re.compile(path_regex), handler))
        return self

    def answer(self, seen: Seen) -> Answer:
        self.seen.append(seen)
        for route in self.routes:
            if route.method == seen.method and route.pattern.fullmatch(seen.path):
                return route.answer(seen)
        return 404, {"error": {"code": "NotFound", "message": f"no route for {seen.path}"}}

    def transport(self) -> RequestsTransport:
        session = requests.Session()
        adapter = _Adapter(self)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return RequestsTransport(session=session, session_owner=False)

    def calls(self, method: str | None = None) -> list[Seen]:
        return [s for s in self.seen if method is None or s.method == method]


class _Adapter(HTTPAdapter):
    def __init__(self, fake: FakeAzure) -> None:
        super().__init__()
        self.fake = fake

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        body = request.body or b""
        seen = Seen(
            method=str(request.method),
            url=str(request.url),
            headers=dict(request.headers),
            body=body.encode() if isinstance(body, str) else bytes(body),
        )
        status, payload = self.fake.answer(seen)
        data = b"" if payload is None else json.dumps(payload).encode()
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(data),
            headers={"Content-Type": "application/json; charset=utf-8"},
            status=status,
            preload_content=False,
            decode_content=False,
        )
        return self.build_response(request, raw)


def workspace_body(
    resource_group: str = RESOURCE_GROUP,
    name: str = WORKSPACE,
    location: str = "eastus2",
    kind: str = "Default",
) -> dict[str, Any]:
    """A `Workspaces - Get` answer in the documented shape (azure-rest-api-specs,
    machinelearningservices .../preview/2024-10-01-preview/examples/Workspace/get.json),
    with the read-only `properties.mlFlowTrackingUri` the service fills in."""
    arm_id = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{name}"
    )
    host = f"{location}.api.azureml.ms"
    return {
        "id": arm_id,
        "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces",
        "location": location,
        "kind": kind,
        "identity": {
            "type": "SystemAssigned",
            "principalId": SUBSCRIPTION,
            "tenantId": SUBSCRIPTION,
        },
        "properties": {
            "friendlyName": name,
            "description": "test description",
            "storageAccount": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{resource_group}"
            "/providers/Microsoft.Storage/storageAccounts/teststorage",
            "keyVault": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{resource_group}"
            "/providers/Microsoft.KeyVault/vaults/testkv",
            "discoveryUrl": f"https://{host}/discovery",
            "mlFlowTrackingUri": f"azureml://{host}/mlflow/v1.0{arm_id}",
            "workspaceId": "00000000-aaaa-bbbb-cccc-dddddddddddd",
            "provisioningState": "Succeeded",
            "hbiWorkspace": False,
            "publicNetworkAccess": "Enabled",
        },
        "systemData": {"createdAt": "2024-01-01T12:34:56.999Z", "createdByType": "User"},
    }
