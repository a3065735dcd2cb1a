"""The session's network guard refuses, records and fails any attempt to leave loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests import network_guard

ROOT = Path(__file__).resolve().parents[2]
# TEST-NET-1 (RFC 5737): documentation addresses no host answers; never actually dialled here.
OUTSIDE = "192.0.2.10"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("169.254.169.254", False),
        ("10.0.0.5", False),
        ("0.0.0.0", False),  # noqa: S104 - classified, never bound
        ("2001:db8::1", False),
        ("login.microsoftonline.com", False),
    ],
)
def test_loopback_classification(host: str, loopback: bool) -> None:
    assert network_guard.is_loopback_host(host) is loopback


def test_connect_outside_loopback_is_refused_and_recorded() -> None:
    with network_guard.expect_blocked() as caught:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            with pytest.raises(network_guard.NetworkBlocked):
                sock.connect((OUTSIDE, 443))
            with pytest.raises(network_guard.NetworkBlocked):
                sock.connect_ex(("169.254.169.254", 80))
        finally:
            sock.close()
        with pytest.raises(network_guard.NetworkBlocked):
            socket.create_connection((OUTSIDE, 443), timeout=1)
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("login.microsoftonline.com", 443)
    assert caught == [
        f"connect to {OUTSIDE}:443",
        "connect to 169.254.169.254:80",
        f"connect to {OUTSIDE}:443",
        "lookup of login.microsoftonline.com",
    ]


def test_loopback_and_reserved_names_pass(tmp_path: Path) -> None:
    with network_guard.expect_blocked() as caught:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        try:
            with socket.create_connection(server.getsockname(), timeout=5):
                pass
        finally:
            server.close()
        assert socket.getaddrinfo("localhost", 80)
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("mlflow.example.invalid", 443)
    assert caught == []


def test_a_swallowed_attempt_still_fails_the_test(tmp_path: Path) -> None:
    """End to end through pytest itself: the attempt is caught and ignored by the test code,
    as an SDK's credential chain would, and the test fails all the same."""
    (tmp_path / "test_leak.py").write_text(
        textwrap.dedent(
            f"""
            import socket

            def test_leaks():
                try:
                    socket.create_connection(("{OUTSIDE}", 443), timeout=1)
                except OSError:
                    pass

            def test_stays_home():
                assert socket.getaddrinfo("127.0.0.1", 80)
            """
        )
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    report = tmp_path / "report.xml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.network_guard",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    cases = {c.get("name"): c for c in ElementTree.parse(report).iter("testcase")}  # noqa: S314
    assert set(cases) == {"test_leaks", "test_stays_home"}
    assert cases["test_stays_home"].find("failure") is None
    failure = cases["test_leaks"].find("failure")
    assert failure is not None
    assert failure.get("message") == f"Failed: network guard (call): connect to {OUTSIDE}:443"
