"""The one redaction of URIs the project uses before showing one (logs, `mlgov check`, cards).

`redact_uri` drops user info (`user:password@`) and masks credential values in the query
and fragment (`sig=`, `code=`, tokens); `uri_origin` keeps only scheme, host and port.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

MASK = "(masked)"

# Query keys whose value is a credential: Azure SAS and Logic Apps (`sig`), Azure Functions
# keys (`code`), OAuth and API tokens. Any key ending in one of the suffixes counts too
# (`access_token`, `x-api-key`, `client_secret`): masking a harmless value costs nothing.
_SECRET_KEYS = frozenset({"sig", "signature", "code", "auth", "pwd", "pass", "credential"})
_SECRET_SUFFIXES = ("token", "secret", "password", "key", "sig", "signature")
# The authority's user info: from `//` up to the last `@` before the path, query or fragment.
# Textual, so a URI that `urlsplit` cannot parse (a bad port, a broken IPv6 host) loses it too.
_USERINFO = re.compile(r"(?<=//)[^/?#\s]*@")
# One `key=value` of a query or fragment, with `&` or `;` between pairs.
_PAIR = re.compile(r"(?P<key>[^&;=#?]+)=(?P<value>[^&;#]*)")


def _is_secret_key(key: str) -> bool:
    name = unquote(key).strip().lower()
    return name in _SECRET_KEYS or name.endswith(_SECRET_SUFFIXES)


def _mask_pairs(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        if not match["value"] or not _is_secret_key(match["key"]):
            return match[0]
        return f"{match['key']}={MASK}"

    return _PAIR.sub(mask, text)


def redact_uri(uri: str) -> str:
    """`uri` as it may be shown: no user info, credential query and fragment values masked.

    Everything else (scheme, host, port, path, harmless parameters) is kept as written, so
    the result still says which server or store is meant.
    """
    shown = _USERINFO.sub("", uri, count=1)
    query_at = shown.find("?")
    fragment_at = shown.find("#")
    if query_at == -1 and fragment_at == -1:
        return shown
    # Only what follows the path is masked: a path segment like `/key=1/` is not a parameter.
    cut = min(i for i in (query_at, fragment_at) if i != -1)
    return shown[:cut] + _mask_pairs(shown[cut:])


def uri_origin(uri: str) -> str | None:
    """`scheme://host[:port]` of `uri` (no user info, path or query); None without a host."""
    host = uri_host(uri)
    if host is None:
        return None
    return f"{urlsplit(uri.strip()).scheme}://{host}"


def uri_host(uri: str) -> str | None:
    """`host[:port]` of `uri`, an IPv6 host in brackets; None when it has no scheme or host."""
    try:
        parts = urlsplit(uri.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not parts.scheme or not host:
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port else shown
