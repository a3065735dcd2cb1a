"""The README's settings table, `mlgov check` and the sample settings come from the declarations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.settings import SETTINGS, load_settings
from shared.settings.docs import BEGIN, END, markdown_table, replace_table

ROOT = Path(__file__).resolve().parents[2]
LOCAL_ONLY = {"AzureWebJobsStorage", "FUNCTIONS_WORKER_RUNTIME"}


def test_the_readme_table_matches_the_declarations():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(BEGIN) == 1
    assert readme.count(END) == 1
    assert replace_table(readme) == readme, "run: python scripts/settings_table.py"


def test_the_table_lists_every_setting_with_its_default():
    table = markdown_table()
    for entry in SETTINGS:
        [row] = [line for line in table.splitlines() if line.startswith(f"| `{entry.name}` |")]
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[2] == ("yes" if entry.per_experiment else "")
        if entry.shown_default is None and entry.default:
            assert cells[1] == f"`{entry.default}`"


def test_the_generator_script_checks_and_rewrites(tmp_path):
    script = ROOT / "scripts" / "settings_table.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    stale = f"# x\n\n{BEGIN}\n| old |\n{END}\n\nafter\n"
    assert replace_table(stale) == f"# x\n\n{markdown_table()}\n\nafter\n"


def test_the_sample_settings_are_declared_and_valid():
    values = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    declared = {entry.name for entry in SETTINGS}
    assert set(values) - LOCAL_ONLY <= declared
    settings = load_settings({k: v for k, v in values.items() if k not in LOCAL_ONLY})
    assert settings.dry_run is True


@pytest.fixture
def check_module():
    try:
        from shared.cli import check
    except ImportError as exc:  # pragma: no cover - the CLI is importable in a whole tree
        pytest.fail(f"shared.cli.check does not import: {exc}")
    return check


def test_check_shows_every_setting_and_masks_secrets(check_module):
    secret = "https://prod.example.invalid/workflows/run?sig=TOPSECRETSIG"
    settings = load_settings(
        {
            "GOVERNANCE_TEAMS_WEBHOOK_URL": secret,
            "MLFLOW_TRACKING_URI": "https://alice:s3cret@mlflow.example.invalid/",
            "AZURE_ML_WORKSPACE_ID": "/subscriptions/00000000-0000-4000-8000-000000000001/"
            "resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/mlw",
        }
    )
    text = check_module.render(settings)
    described = check_module.describe(settings)
    for entry in SETTINGS:
        assert f"  {entry.name} " in text, entry.name
        if entry.per_experiment:
            assert entry.key in described["default_policy"], entry.key
        else:
            assert entry.key in described, entry.key
    dumped = json.dumps(described, default=str)
    for shown in (text, dumped):
        assert "TOPSECRETSIG" not in shown
        assert "s3cret" not in shown
    assert described["teams_webhook_url"] == "(set, masked)"
    assert described["tracking_uri"] == "https://mlflow.example.invalid/"
    assert described["concurrency"] == 8
    assert described["default_policy"]["cleanup_statuses"] == ["FAILED"]
    assert "Azure:" in text


def test_check_reports_an_unusable_webhook(check_module):
    settings = load_settings({"GOVERNANCE_TEAMS_WEBHOOK_URL": "@Microsoft.KeyVault(SecretUri=x)"})
    described = check_module.describe(settings)
    assert described["warnings"] == [
        {"setting": "GOVERNANCE_TEAMS_WEBHOOK_URL", "problem": settings.warnings[0].problem}
    ]
    assert described["teams_webhook_url"] == "(not set)"
    assert "Warning: GOVERNANCE_TEAMS_WEBHOOK_URL: an unresolved Key Vault reference" in (
        check_module.render(settings)
    )
