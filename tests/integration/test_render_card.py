"""Cards render cleanly in the official Adaptive Cards renderer (headless Chromium, npm)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.notify.cards import (
    CleanupNotice,
    DeletedRun,
    EstateSummary,
    FailureNotice,
    Violation,
    WorkspaceActivity,
    batch_card,
    cleanup_card,
    envelope,
    estate_summary_card,
    failure_card,
    promotion_card,
    summary_card,
    violations_card,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "render_card.py"
RENDERER = ROOT / "scripts" / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.js"
sys.path.insert(0, str(ROOT / "scripts"))

from example_cards import PROMOTION, SUMMARY  # noqa: E402 (scripts/ is not a package)

CHROMIUM = next((p for n in ("chromium", "chromium-browser") if (p := shutil.which(n))), None)
# CI sets MLGOV_REQUIRE_RENDERER=1: there a missing renderer is a failure, not a skip.
if os.environ.get("MLGOV_REQUIRE_RENDERER") == "1" and (CHROMIUM is None or not RENDERER.is_file()):
    raise RuntimeError("MLGOV_REQUIRE_RENDERER=1 but chromium or scripts/node_modules is missing")
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
    ),
    pytest.mark.skipif(
        not RENDERER.is_file(),
        reason="npm adaptivecards is not installed (cd scripts && npm ci)",
    ),
]


def render(card: object, tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    source = tmp_path / f"{name}.json"
    source.write_text(json.dumps(card), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(source), str(tmp_path / f"{name}.png")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_png(path: Path) -> None:
    assert path.is_file()
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 2_000


def test_promotion_message_renders_without_renderer_errors(tmp_path: Path) -> None:
    done = render(envelope(promotion_card(PROMOTION)), tmp_path, "promotion")
    assert done.returncode == 0, done.stderr
    assert_png(tmp_path / "promotion.png")


def test_every_card_kind_renders_without_renderer_errors(tmp_path: Path) -> None:
    url = "https://ml.azure.com/runs/r1?wsid=/x"
    runs = [DeletedRun("fraud", f"r{i}", f"xgb_{i}*", "FAILED", 90.0, url) for i in range(25)]
    card = batch_card(
        [
            summary_card(SUMMARY),
            failure_card(FailureNotice("fraud", "r1", "xgb [1]", "", "KILLED", None, url)),
            violations_card([Violation("churn", "r2", "rf", "bob", ("owner",), url)], dry_run=True),
            cleanup_card(CleanupNotice(runs, False, 25, 100)),
            cleanup_card(CleanupNotice([], True, 412, 100)),
            estate_summary_card(ESTATE),
        ]
    )
    done = render(card, tmp_path, "batch")
    assert done.returncode == 0, done.stderr
    assert_png(tmp_path / "batch.png")


# The estate's digest: totals first, a row per workspace (one not summarised), links to each.
ESTATE = EstateSummary(
    SUMMARY.window_start,
    SUMMARY.window_end,
    {k: 3 * v for k, v in SUMMARY.totals.items()},
    [
        WorkspaceActivity(f"mlw-{n}", dict(SUMMARY.totals), f"https://ml.azure.com/home?wsid=/{n}")
        for n in ("dev", "test")
    ]
    + [WorkspaceActivity("mlw-prod [eu]", {}, None, "TrackingUnavailable: connection refused")],
)


def test_the_estate_summary_renders_without_renderer_errors(tmp_path: Path) -> None:
    done = render(envelope(estate_summary_card(ESTATE)), tmp_path, "estate")
    assert done.returncode == 0, done.stderr
    assert_png(tmp_path / "estate.png")


def test_renderer_errors_fail_the_script(tmp_path: Path) -> None:
    broken = {
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "Carousel", "pages": []},
            {"type": "TextBlock", "text": "a", "id": "same"},
            {"type": "TextBlock", "text": "b", "id": "same"},
        ],
    }
    done = render(broken, tmp_path, "broken")
    assert done.returncode == 1
    assert 'Duplicate Id "same"' in done.stderr
    assert "Unknown element type" in done.stderr
    assert not (tmp_path / "broken.png").exists()


def test_a_card_with_nothing_to_show_fails_the_script(tmp_path: Path) -> None:
    done = render({"type": "AdaptiveCard", "version": "1.4", "body": []}, tmp_path, "empty")
    assert done.returncode == 1
    assert "is blank: no text was drawn" in done.stderr
