"""The one redaction the project applies to anything it shows: URIs and free text.

`redact_uri` drops user info (`user:password@`) and masks credential values in the query
and fragment (`sig=`, `code=`, tokens); `uri_origin` keeps only scheme, host and port.
`redact` masks, in any text, the secrets `register`ed (in every encoding a log line, a
percent-encoded echo or a JSON report can give them) and any user info, query credential,
`sig=`, bearer token or JWT it recognises. `shared.redact_logs` applies it at the edges.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, urlsplit

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


# -- free text ---------------------------------------------------------------------------------

# A registered value shorter than this is not masked verbatim (a 2-letter password would mask
# every such pair of letters); the patterns below still catch it inside a URI.
MIN_SECRET_LEN = 4

# User info after `//`, also JSON-escaped (`\/\/`) or percent-encoded once or twice.
_TEXT_USERINFO = re.compile(
    r"(?:(?<=//)|(?<=\\/\\/))[^/?#\s\"'<>\\@]*@"
    r"|(?i:(?<=%2F%2F)(?:(?!%2F)[^/?#\s&\"'<>%]|%(?!2F|40)[0-9A-F]{2})*?%40)"
    r"|(?i:(?<=%252F%252F)(?:(?!%252F)[^/?#\s&\"'<>%]|%(?!252F|2540)[0-9A-F]{2,4})*?%2540)"
)
# `key=value` after a query delimiter, plain or percent-encoded; the key decides (`_is_secret_key`).
_TEXT_PAIR = re.compile(
    r"(?:(?<=[?&;])|(?<=%3F)|(?<=%26)|(?<=%253F)|(?<=%2526)|(?<=&amp;))"
    r"(?P<key>[A-Za-z0-9_.%-]{1,48}?)(?P<eq>=|%3D|%253D)"
    r"(?P<value>(?:(?!%26|%2526|&amp;)[^&;#\s\"'<>\\])+)",
    re.IGNORECASE,
)
_TEXT_SIG = re.compile(
    r"(?<![A-Za-z0-9_])(?P<key>sig|signature)(?P<eq>=|%3D|%253D)(?P<value>[^&;#\s\"'<>\\%]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(?P<scheme>Bearer|Basic)\s+[A-Za-z0-9\-._~+/]{8,}=*", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")


def _forms(secret: str) -> set[str]:
    """`secret` as output can spell it: as is, percent-encoded (once, twice, form-style),
    JSON- or HTML-escaped, and with `/` written `\\/` (JSON from other languages)."""
    bases = {
        secret,
        quote(secret, safe=""),
        quote(quote(secret, safe=""), safe=""),
        quote(secret, safe=":/"),
        quote_plus(secret),
    }
    forms: set[str] = set()
    for base in bases:
        slashed = base.replace("/", "\\/")
        for form in (base, slashed, html.escape(base)):
            forms.add(form)
            forms.add(json.dumps(form)[1:-1])
            forms.add(json.dumps(json.dumps(form)[1:-1])[1:-1])
    return {f for f in forms if len(f) >= MIN_SECRET_LEN}


class _Registry:
    """The values to mask verbatim, and one pattern matching every form of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, secrets: Iterable[str]) -> None:
        new = {s for s in (x.strip() for x in secrets) if len(s) >= MIN_SECRET_LEN}
        with self._lock:
            if new <= self._secrets:
                return
            self._secrets |= new
            forms = set().union(*(_forms(s) for s in self._secrets))
            alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
            self._pattern = re.compile(alternatives, re.IGNORECASE)

    def mask(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(MASK, text)


_REGISTRY = _Registry()


def register(*secrets: str) -> None:
    """Mask these values wherever they appear in text given to `redact`, in any encoding."""
    _REGISTRY.add(secrets)


def secrets_of_uri(uri: str) -> list[str]:
    """What in `uri` is a credential: the whole URI when it has any, its user info and
    password, and each credential value of its query and fragment."""
    found: list[str] = []
    userinfo = _USERINFO.search(uri)
    if userinfo:
        info = userinfo[0][:-1]
        found += [info, unquote(info)]
        if ":" in info:
            password = info.split(":", 1)[1]
            found += [password, unquote(password)]
    tail = uri[min((i for i in (uri.find("?"), uri.find("#")) if i != -1), default=len(uri)) :]
    for pair in _PAIR.finditer(tail):
        if pair["value"] and _is_secret_key(pair["key"]):
            found += [pair["value"], unquote(pair["value"])]
    return [uri, *found] if found else []


def _mask_pair(match: re.Match[str]) -> str:
    if not _is_secret_key(unquote(unquote(match["key"]))):
        return match[0]
    return f"{match['key']}{match['eq']}{MASK}"


def redact(text: str) -> str:
    """`text` as it may be shown: registered secrets and recognisable credentials masked."""
    if not text:
        return text
    text = _REGISTRY.mask(text)
    text = _TEXT_USERINFO.sub("", text)
    text = _TEXT_PAIR.sub(_mask_pair, text)
    text = _TEXT_SIG.sub(lambda m: f"{m['key']}{m['eq']}{MASK}", text)
    text = _BEARER.sub(lambda m: f"{m['scheme']} {MASK}", text)
    return _JWT.sub(MASK, text)
