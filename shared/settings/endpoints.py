"""Parsers of the settings that name a place: the tracking URI, the Teams webhook, the Event Grid
topic, and the Azure ML workspace (its coordinates or its ARM id). Messages never echo a value
that may carry a credential.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from pydantic import SecretStr

from shared.redact import redact_uri
from shared.settings.parse import Unusable, is_blank

DEFAULT_EMBEDDED_DB = "mlgov.db"
# URI schemes MLflow's client can track to (no scheme: a local path).
TRACKING_SCHEMES = frozenset(
    {
        "http",
        "https",
        "azureml",
        "sqlite",
        "file",
        "databricks",
        "databricks-uc",
        "postgresql",
        "mysql",
        "mssql",
    }
)
# Schemes whose URI names a server: without a host it cannot be reached.
_NEEDS_HOST = frozenset({"http", "https", "azureml"})
# App Service passes this literal when it cannot resolve a Key Vault reference (secret
# missing, role not yet propagated): https://learn.microsoft.com/azure/app-service/app-service-key-vault-references
_KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(", re.IGNORECASE)
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
# ARM's rules: resource group names are letters, digits, `-_.()`, at most 90, not ending in `.`;
# workspace names match `^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$` (the workspaces resource schema).
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$")
_WORKSPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,32}$")
# ARM ids are case-insensitive; Azure itself returns `resourcegroups` in some answers.
_WORKSPACE_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Workspace:
    """An Azure ML workspace's coordinates, from the three settings or from its ARM id."""

    subscription_id: str
    resource_group: str
    name: str

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}"
        )


def _split(value: str) -> SplitResult:
    """`urlsplit` that also parses the port, so `http://[::1` and `:99999` fail here."""
    parts = urlsplit(value)
    _ = parts.hostname, parts.port
    return parts


def tracking_uri(value: object) -> str | None:
    if is_blank(value):
        return None
    uri = str(value).strip()
    if any(char.isspace() or ord(char) < 32 for char in uri):
        raise ValueError("not a URI: it contains white space or control characters")
    try:
        parts = _split(uri)
    except ValueError as exc:
        raise ValueError(f"not a valid URI ({exc})") from None
    scheme = parts.scheme.lower()
    # A one-letter scheme is a Windows drive letter, i.e. a local path.
    if scheme and len(scheme) > 1 and scheme not in TRACKING_SCHEMES:
        raise ValueError(
            f"unsupported scheme {scheme!r} (expected azureml://, http(s)://, sqlite:///…)"
        )
    if scheme in _NEEDS_HOST and not parts.hostname:
        raise ValueError(f"a {scheme}:// URI needs a host name")
    return uri


def display_uri(uri: str) -> str:
    """The URI without user-info (`https://user:secret@host` -> `https://host`) or query
    credentials, for output (see `shared.redact`)."""
    return redact_uri(uri)


def _https_url(value: str) -> str:
    try:
        parts = _split(value)
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme.lower() != "https":
        raise ValueError("must be an https:// URL")
    if not parts.hostname:
        raise ValueError("the URL has no host name")
    return value


def webhook(value: object) -> SecretStr | None:
    """The Teams webhook (its `sig=` is a credential: never shown)."""
    if is_blank(value):
        return None
    url = str(value).strip()
    if _KEY_VAULT_REFERENCE.match(url):
        raise Unusable(
            "an unresolved Key Vault reference (@Microsoft.KeyVault(...)): the secret is "
            "missing or the app's identity cannot read it yet; no cards are posted until it "
            "resolves"
        )
    return SecretStr(_https_url(url))


def topic_endpoint(value: object) -> str | None:
    """An Event Grid topic endpoint, `https://<topic>.<region>-1.eventgrid.azure.net/api/events`."""
    if is_blank(value):
        return None
    url = _https_url(str(value).strip())
    if "@" in urlsplit(url).netloc:
        raise ValueError("must not carry credentials (the app's identity authenticates)")
    return url


def guid(value: object) -> str | None:
    if is_blank(value):
        return None
    text = str(value).strip()
    if not _GUID.match(text):
        raise ValueError(f"not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx): {text!r}")
    return text


def resource_group(value: object) -> str | None:
    if is_blank(value):
        return None
    text = str(value).strip()
    if not _RESOURCE_GROUP.match(text):
        raise ValueError(
            f"not a resource group name: {text!r} (letters, digits, -_.(), at most 90, "
            "not ending in '.')"
        )
    return text


def workspace_name(value: object) -> str | None:
    if is_blank(value):
        return None
    text = str(value).strip()
    if not _WORKSPACE.match(text):
        raise ValueError(
            f"not a workspace name: {text!r} (3-33 letters, digits, '-' or '_', "
            "starting with a letter or digit)"
        )
    return text


def workspace_id(value: object) -> Workspace | None:
    """`/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/
    workspaces/{name}`, parsed into coordinates (each part checked like its own setting)."""
    if is_blank(value):
        return None
    text = str(value).strip()
    match = _WORKSPACE_ID.match(text)
    if not match:
        raise ValueError(
            "not a workspace ARM id: expected /subscriptions/{subscription}/resourceGroups/"
            "{group}/providers/Microsoft.MachineLearningServices/workspaces/{name}, "
            f"got {text!r}"
        )
    subscription = guid(match["subscription"])
    group = resource_group(match["group"])
    name = workspace_name(match["name"])
    # Each part is non-blank by the pattern, so each parser returned text.
    assert subscription is not None
    assert group is not None
    assert name is not None
    return Workspace(subscription, group, name)


def workspace_id_text(value: object) -> str | None:
    """The ARM id as given, once `workspace_id` accepts it."""
    return None if workspace_id(value) is None else str(value).strip()
