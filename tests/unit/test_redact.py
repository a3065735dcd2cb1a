"""The one redaction: no user info, query credential, webhook signature or token reaches output."""

from __future__ import annotations

import html
import io
import json
import logging
from urllib.parse import quote

import pytest

from shared.redact import MASK, redact, redact_uri, register, secrets_of_uri, uri_host, uri_origin


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


# -- free text: registered secrets in every encoding, and what any text may carry -------------

WEBHOOK = (
    "https://prod-7.westeurope.logic.azure.com:443/workflows/4f1d/triggers/manual/paths/invoke"
    "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=Zq9-RegisteredSig_0123"
)
BARE_SIG = "Zq9-RegisteredSig_0123"


def _spellings(secret: str) -> dict[str, str]:
    once = quote(secret, safe="")
    return {
        "plain": secret,
        "percent-encoded": once,
        "percent-encoded twice": quote(once, safe=""),
        "json slash-escaped": secret.replace("/", "\\/"),
        "json-escaped in our JSON": json.dumps(secret.replace("/", "\\/"))[1:-1],
        "html-escaped": html.escape(secret),
    }


@pytest.mark.parametrize("spelling", sorted(_spellings(WEBHOOK)))
def test_a_registered_webhook_is_masked_in_every_spelling(spelling: str) -> None:
    register(WEBHOOK, BARE_SIG)
    text = f"POST failed: {_spellings(WEBHOOK)[spelling]} answered 400"
    shown = redact(text)
    assert BARE_SIG not in shown
    assert quote(BARE_SIG, safe="") not in shown
    assert shown.startswith("POST failed: ")
    assert shown.endswith(" answered 400")


def test_the_bare_signature_is_masked_alone() -> None:
    register(BARE_SIG)
    assert redact(f"signature {BARE_SIG} expired") == f"signature {MASK} expired"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # User info of any URI, plain, JSON-escaped, percent-encoded once and twice.
        (
            "API request to http://bob:hunter2@10.0.0.1:5000/api failed",
            "API request to http://10.0.0.1:5000/api failed",
        ),
        ("url https:\\/\\/bob:pw@h\\/x", "url https:\\/\\/h\\/x"),
        ("next=http%3A%2F%2Fbob%3Apw%40h%2Fx", "next=http%3A%2F%2Fh%2Fx"),
        ("n=http%253A%252F%252Fbob%253Apw%2540h", "n=http%253A%252F%252Fh"),
        # Query credentials, plain and encoded; the key decides.
        ("GET /x?code=abc&name=b", f"GET /x?code={MASK}&name=b"),
        ("u=%2Fx%3Fsig%3Dabcdef%26a%3D1", f"u=%2Fx%3Fsig%3D{MASK}%26a%3D1"),
        ("sig=abcdef at the start", f"sig={MASK} at the start"),
        # Tokens.
        ("Authorization: Bearer abcdefghijkl.mnop", f"Authorization: Bearer {MASK}"),
        ("header Basic YWxpY2U6c2VjcmV0", f"header Basic {MASK}"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig-part", f"token {MASK}"),
        # Ordinary text is left exactly as it was.
        ("exit code=1 after 3 attempts", "exit code=1 after 3 attempts"),
        ('{"error_code": "INTERNAL_ERROR"}', '{"error_code": "INTERNAL_ERROR"}'),
        (
            "http://127.0.0.1:5000/#/experiments/1/runs/abc",
            "http://127.0.0.1:5000/#/experiments/1/runs/abc",
        ),
        ("mail me at ops@example.com", "mail me at ops@example.com"),
        ("", ""),
    ],
)
def test_text_redaction(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_a_short_password_is_not_masked_verbatim_but_its_uri_loses_it() -> None:
    register("pw")  # shorter than MIN_SECRET_LEN: masking every "pw" would garble output
    assert redact("pwd and http://u:pw@h/x") == "pwd and http://h/x"


def test_secrets_of_a_uri_are_its_user_info_password_and_query_credentials() -> None:
    found = secrets_of_uri("https://ann:p%40ss@h.example/x?sig=S1g-value&name=n")
    assert {"ann:p%40ss", "ann:p@ss", "p%40ss", "p@ss", "S1g-value"} <= set(found)
    assert "n" not in found
    assert secrets_of_uri("http://127.0.0.1:5000") == []


# -- at the edges: log records, streams, cards -------------------------------------------------


def test_a_log_record_is_redacted_in_message_args_and_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from shared.redact_logs import install_logging

    register(BARE_SIG)
    install_logging()
    log = logging.getLogger("tests.redact")
    with caplog.at_level(logging.INFO, logger="tests.redact"):
        try:
            raise RuntimeError(f"receiver said {quote(WEBHOOK, safe='')}")
        except RuntimeError:
            log.exception("post to %s failed", WEBHOOK)
    (record,) = [r for r in caplog.records if r.name == "tests.redact"]
    assert BARE_SIG not in record.getMessage()
    assert record.exc_text is not None
    assert "RuntimeError: receiver said" in record.exc_text
    assert BARE_SIG not in caplog.text
    assert quote(BARE_SIG, safe="") not in caplog.text


def test_the_stream_redacts_a_secret_written_in_pieces() -> None:
    from shared.redact_logs import RedactingStream

    register(BARE_SIG)
    target = io.StringIO()
    stream = RedactingStream(target)
    stream.write(f"sig {BARE_SIG[:6]}")
    stream.write(f"{BARE_SIG[6:]} end\npartial ")
    assert target.getvalue() == f"sig {MASK} end\n"
    stream.write(BARE_SIG)
    stream.flush()
    assert target.getvalue() == f"sig {MASK} end\npartial {MASK}"


def test_cards_are_redacted_before_the_sink_and_its_error_after() -> None:
    from shared.notify.teams import Delivery
    from shared.redact_logs import RedactingSink

    register(BARE_SIG)
    seen: list[object] = []

    class Echo:
        def post(self, card: object) -> Delivery:
            seen.append(card)
            return Delivery(False, 400, 1, f"HTTP 400: {BARE_SIG}")

    delivery = RedactingSink(Echo()).post({"body": [{"text": f"failed: {WEBHOOK}"}], "n": 3})
    assert seen == [{"body": [{"text": f"failed: {MASK}"}], "n": 3}]
    assert delivery.error == f"HTTP 400: {MASK}"
