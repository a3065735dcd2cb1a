"""`mlgov handle-event` refuses hostile input with exit 2 and a message, before any tracking
call (the tracking URI points at a closed loopback port: a request would fail differently)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.cli import main
from tests.conftest import free_port

EXIT_INVALID = 2


@pytest.fixture
def closed_server(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("GOVERNANCE_POLICY_FILE", "GOVERNANCE_TEAMS_WEBHOOK_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")


@pytest.mark.usefixtures("closed_server")
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[" * 1000 + "]" * 1000, "nested deeper than"),
        ('{"a": ' * 1000 + "1" + "}" * 1000, "nested deeper than"),
        (b"\xff\xfe{}", "not UTF-8"),
        ("{not json", "not JSON"),
    ],
    ids=["array-1000-deep", "object-1000-deep", "not-utf8", "not-json"],
)
def test_hostile_event_files_exit_2_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str | bytes, expected: str
) -> None:
    path = tmp_path / "events.json"
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, encoding="utf-8")
    assert main(["handle-event", str(path), "--json"]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "mlgov: invalid input:" in err
    assert expected in err
    assert "Traceback" not in err


@pytest.mark.usefixtures("closed_server")
def test_an_endless_event_file_is_refused_after_the_size_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["handle-event", "/dev/zero"]) == EXIT_INVALID
    assert "larger than" in capsys.readouterr().err


@pytest.mark.parametrize("verb", [["sweep"], ["sweep", "--dry-run"], ["summary"], ["restore"]])
def test_a_sqlite_uri_in_a_missing_folder_creates_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    verb: list[str],
) -> None:
    folder = tmp_path / "missing"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/store.db")
    assert main(verb) == EXIT_INVALID
    assert "no MLflow store at" in capsys.readouterr().err
    assert not folder.exists()
