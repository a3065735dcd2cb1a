"""Parsers of the settings that name a place: the tracking URI, the Teams webhook, the Event Grid
topic, and GUIDs (the workspace settings are in `shared.settings.workspaces`). Messages never
echo a value that may carry a credential.
"""

from __future__ import annotations

import re
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
