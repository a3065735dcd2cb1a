"""Example cards from realistic sample data, rendered for docs/img (and used by the render test).

python scripts/example_cards.py docs/img      # writes <name>-card.json/.png per example
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.notify.cards import (
    ExperimentActivity,
    FailedAction,
    PromotionNotice,
    Summary,
    envelope,
    fit,
    promotion_card,
    summary_card,
)
from shared.usecases.summary import TOTAL_LABELS

STUDIO = (
    "https://ml.azure.com/runs/{run}?wsid=/subscriptions/11111111-2222-3333-4444-555555555555"
    "/resourcegroups/ml-project-rg/workspaces/ml-workspace-production"
)

PROMOTION = PromotionNotice(
    model_name="customer-churn-classifier",
    version="7",
    run_id="sleepy_lamp_x7k2m9p4qz",
    run_name="random-forest-depth-20",
    experiment="customer-churn",
    metric="auc_roc",
    value=0.91324,
    threshold=0.85,
    goal="maximize",
    previous_value=0.90107,
    previous_version="6",
    run_url=STUDIO.format(run="sleepy_lamp_x7k2m9p4qz"),
    alias="champion",
)

SUMMARY = Summary(
    window_start=datetime(2025, 11, 25, 8, 0, tzinfo=UTC),
    window_end=datetime(2025, 11, 26, 8, 0, tzinfo=UTC),
    # The labels `mlgov summary` uses (shared.usecases.summary.TOTAL_LABELS), in its order.
    totals={
        TOTAL_LABELS[key]: count
        for key, count in (
            ("finished", 46),
            ("failed", 7),
            ("killed", 1),
            ("deleted", 5),
            ("restored", 0),
            ("promotions", 2),
            ("noncompliant", 4),
            ("failed_actions", 1),
        )
    },
    experiments=[
        ExperimentActivity(
            "customer-churn",
            finished=31,
            failed=3,
            deleted=2,
            promotions=1,
            noncompliant=1,
            best_run_name="random-forest-depth-20",
            best_value=0.91324,
            best_run_url=STUDIO.format(run="sleepy_lamp_x7k2m9p4qz"),
        ),
        ExperimentActivity(
            "fraud-detection",
            finished=12,
            failed=4,
            killed=1,
            deleted=3,
            promotions=1,
            noncompliant=3,
            failed_actions=1,
            best_run_name="xgb-lr-0.05",
            best_value=0.97811,
            best_run_url=STUDIO.format(run="brave_kite_q8w3e5r7t1"),
        ),
        ExperimentActivity("demand-forecast", finished=3, best_run_name="prophet-weekly"),
        ExperimentActivity("image-tagging-sandbox"),
        ExperimentActivity("nlp-intent-archive"),
    ],
    promotions=[
        PROMOTION,
        PromotionNotice(
            model_name="fraud-detection",
            version="12",
            run_id="brave_kite_q8w3e5r7t1",
            run_name="xgb-lr-0.05",
            experiment="fraud-detection",
            metric="auc_roc",
            value=0.97811,
            threshold=0.95,
            goal="maximize",
            previous_value=0.97402,
            previous_version="11",
            run_url=STUDIO.format(run="brave_kite_q8w3e5r7t1"),
        ),
    ],
    failed_actions=[
        FailedAction(
            experiment="fraud-detection",
            run_id="quiet_river_m2n4b6v8c0",
            run_name="xgb-depth-12",
            action="delete-run",
            reason="tagged for deletion at 2025-11-26T02:30:00+00:00 but still active",
            run_url=STUDIO.format(run="quiet_river_m2n4b6v8c0"),
        )
    ],
    metric="auc_roc",
    source="ml-workspace-production",
)

EXAMPLES = {"promotion": promotion_card(PROMOTION), "summary": summary_card(SUMMARY)}


def main(argv: list[str]) -> int:
    from render_card import RenderError, render  # a sibling script (scripts/ is on sys.path)

    out = Path(argv[0]) if argv else Path("docs/img")
    out.mkdir(parents=True, exist_ok=True)
    for name, card in EXAMPLES.items():
        message = out / f"{name}-card.json"
        message.write_text(json.dumps(envelope(fit(card)), indent=2) + "\n", encoding="utf-8")
        try:
            render(fit(card), out / f"{name}-card.png")
        except RenderError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 1
        print(out / f"{name}-card.png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
