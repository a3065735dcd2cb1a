"""The one URI redaction: no user info and no query credential ever reaches output."""

from __future__ import annotations

import pytest

from shared.redact import MASK, redact_uri, uri_host, uri_origin


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (
            "https://alice:s3cret@mlflow.example.com:8443/base/",
            "https://mlflow.example.com:8443/base/",
        ),
        ("http://token@10.0.0.5:5000", "http://10.0.0.5:5000"),
        # An `@` inside the password (unencoded) still leaves nothing of it.
        ("https://u:p@ss@host.example/x", "https://host.example/x"),
        # A port urlsplit cannot read, a broken IPv6 host: user info goes all the same.
        ("http://u:pw@host:99999/x", "http://host:99999/x"),
        ("http://u:pw@[::1/x", "http://[::1/x"),
        ("postgresql://mlflow:pw@db.internal/mlflow", "postgresql://db.internal/mlflow"),
        # Nothing to hide: unchanged, case and form as written.
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("HTTP://Host.Example/Path", "HTTP://Host.Example/Path"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        (
            "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/1/resourceGroups/rg",
            "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/1/resourceGroups/rg",
        ),
        ("", ""),
        ("not a uri", "not a uri"),
    ],
)
def test_user_info_is_dropped(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (
            "https://prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke"
            "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=AbC123-_xyz",
            "https://prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke"
            f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={MASK}",
        ),
        (
            "https://fn.azurewebsites.net/api/x?code=k3y==&name=a",
            f"https://fn.azurewebsites.net/api/x?code={MASK}&name=a",
        ),
        ("https://h/x?SIG=1", f"https://h/x?SIG={MASK}"),
        (
            "https://h/x?access_token=t&refresh_token=r",
            f"https://h/x?access_token={MASK}&refresh_token={MASK}",
        ),
        ("https://h/x?token=t;x-api-key=k", f"https://h/x?token={MASK};x-api-key={MASK}"),
        ("https://h/x?client%5Fsecret=s", f"https://h/x?client%5Fsecret={MASK}"),
        ("https://h/x?password=p#frag", f"https://h/x?password={MASK}#frag"),
        # OAuth's implicit flow puts the token in the fragment.
        ("https://h/cb#access_token=t&state=s", f"https://h/cb#access_token={MASK}&state=s"),
        ("https://u:p@h/x?sig=s", f"https://h/x?sig={MASK}"),
        # Only parameters: a path segment that looks like one is the path.
        ("https://h/token=abc/x", "https://h/token=abc/x"),
        # An empty credential hides nothing; a bare key has no value.
        ("https://h/x?sig=&flag", "https://h/x?sig=&flag"),
        # Run links keep their UI route.
        ("http://h:5000/#/experiments/3/runs/abc", "http://h:5000/#/experiments/3/runs/abc"),
    ],
)
def test_query_and_fragment_credentials_are_masked(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


@pytest.mark.parametrize(
    ("uri", "origin", "host"),
    [
        (
            "https://user:pw@Example.com:8443/a?sig=1",
            "https://example.com:8443",
            "example.com:8443",
        ),
        ("https://[::1]:8443/x?sig=1", "https://[::1]:8443", "[::1]:8443"),
        ("http://127.0.0.1/x", "http://127.0.0.1", "127.0.0.1"),
        (" https://h.example/x ", "https://h.example", "h.example"),
        ("sqlite:////tmp/x.db", None, None),
        ("not a url", None, None),
        ("https://h:bad/x", None, None),
    ],
)
def test_origin_and_host_carry_no_path_query_or_user(
    uri: str, origin: str | None, host: str | None
) -> None:
    assert uri_origin(uri) == origin
    assert uri_host(uri) == host
