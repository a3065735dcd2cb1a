"""Card builders: schema and element rules for Teams, content, grouping and order, size guard."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.notify.cards import (
    CleanupNotice,
    DeletedRun,
    ExperimentActivity,
    FailedAction,
    FailureNotice,
    PromotionNotice,
    Summary,
    Violation,
    batch_card,
    cleanup_card,
    envelope,
    failure_card,
    fit,
    promotion_card,
    size_of,
    summary_card,
    violations_card,
)

BODY_TYPES = {"TextBlock", "FactSet", "Container", "ColumnSet", "Column"}
URL = "https://ml.azure.com/runs/{}?wsid=/subscriptions/x/resourcegroups/rg/workspaces/ws"

PROMOTION = PromotionNotice(
    model_name="churn",
    version="7",
    run_id="r-7",
    run_name="rf-depth-20",
    experiment="customer-churn",
    metric="auc_roc",
    value=0.91324,
    threshold=0.85,
    goal="maximize",
    previous_value=0.90107,
    previous_version="6",
    run_url=URL.format("r-7"),
    alias="champion",
)
FAILURE = FailureNotice(
    experiment="fraud",
    run_id="r-9",
    run_name="xgb-9",
    owner="alice@contoso.com",
    status="FAILED",
    duration_s=4391.0,
    run_url=URL.format("r-9"),
)


def violation(i: int, owner: str, experiment: str = "churn") -> Violation:
    return Violation(experiment, f"r-{i}", f"run-{i}", owner, ("owner", "cost_center"), None)


def deleted(n: int) -> list[DeletedRun]:
    return [
        DeletedRun("fraud", f"r-{i}", f"xgb-{i}", "FAILED", 80.0, URL.format(i)) for i in range(n)
    ]


def summary(**changes: Any) -> Summary:
    base = Summary(
        window_start=datetime(2025, 11, 25, 8, tzinfo=UTC),
        window_end=datetime(2025, 11, 26, 8, tzinfo=UTC),
        totals={"Runs finished": 46, "Runs failed": 7, "Models promoted": 1},
        experiments=[
            ExperimentActivity("quiet-one"),
            ExperimentActivity("small", finished=2),
            ExperimentActivity("busy", finished=30, failed=3, best_run_name="rf", best_value=0.9),
            ExperimentActivity("middle", finished=5, noncompliant=2),
        ],
        promotions=[PROMOTION],
        failed_actions=[
            FailedAction("fraud", "r-1", "xgb-1", "delete-run", "HTTP 503 from server")
        ],
        metric="auc_roc",
    )
    return dataclasses.replace(base, **changes)


def all_cards() -> dict[str, dict[str, Any]]:
    cards = {
        "promotion": promotion_card(PROMOTION),
        "promotion-dry": promotion_card(dataclasses.replace(PROMOTION, dry_run=True)),
        "failure": failure_card(FAILURE),
        "violations": violations_card([violation(1, "bob"), violation(2, "")]),
        "cleanup": cleanup_card(CleanupNotice(deleted(3), False, 3, 100)),
        "guard": cleanup_card(CleanupNotice([], True, 412, 100)),
        "summary": summary_card(summary()),
    }
    cards["batch"] = batch_card(list(cards.values()))
    return cards


def elements(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += elements(value)
    elif isinstance(node, list):
        for value in node:
            found += elements(value)
    return found


def texts(card: dict[str, Any]) -> list[str]:
    out = []
    for e in elements(card):
        if e.get("type") == "TextBlock":
            out.append(e["text"])
        if e.get("type") == "FactSet":
            out += [f"{f['title']}: {f['value']}" for f in e["facts"]]
    return out


def all_text(card: dict[str, Any]) -> str:
    return "\n".join(texts(card))


@pytest.mark.parametrize("name", list(all_cards()))
def test_card_is_schema_1_4_with_only_teams_safe_elements(name: str) -> None:
    card = all_cards()[name]
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    body_types = {e["type"] for e in elements(card["body"]) if "type" in e}
    assert body_types <= BODY_TYPES, body_types - BODY_TYPES
    assert {a["type"] for a in card.get("actions", [])} <= {"Action.OpenUrl"}
    assert "Action.Submit" not in json.dumps(card)
    ids = [e["id"] for e in elements(card) if "id" in e]
    assert len(ids) == len(set(ids)), "the renderer rejects duplicate ids"
    assert size_of(card) <= 24_000


def test_envelope_is_the_teams_workflows_message_shape() -> None:
    card = promotion_card(PROMOTION)
    assert envelope(card) == {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def test_promotion_card_shows_the_decision_and_links_the_run() -> None:
    card = promotion_card(PROMOTION)
    text = all_text(card)
    assert "Model promoted: churn v7" in texts(card)[0]
    assert "auc\\_roc: 0.9132 (threshold ≥ 0.85)" in text
    assert "Previous champion: v6: 0.9011 (+0.0122)" in text
    assert f"[rf-depth-20]({URL.format('r-7')})" in text
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open run", "url": URL.format("r-7")}
    ]
    assert "DRY RUN" not in text


def test_minimize_goal_and_first_champion() -> None:
    notice = dataclasses.replace(
        PROMOTION, goal="minimize", metric="rmse", previous_value=None, previous_version=None
    )
    text = all_text(promotion_card(notice))
    assert "(threshold ≤ 0.85)" in text
    assert "none: first version to be promoted" in text


def test_links_are_omitted_without_a_usable_url() -> None:
    for url in (None, "javascript:alert(1)", "ftp://host/x"):
        card = promotion_card(dataclasses.replace(PROMOTION, run_url=url))
        assert "actions" not in card
        assert "](" not in all_text(card)
        assert "Run: rf-depth-20" in all_text(card)


def test_user_data_is_escaped_and_urls_cannot_break_links() -> None:
    notice = dataclasses.replace(
        FAILURE, run_name="a_*b*_[x]", run_url="https://h/run (1)?q=[2]", experiment="e\nx"
    )
    text = all_text(failure_card(notice))
    assert "[a\\_\\*b\\*\\_\\[x\\]](https://h/run%20%281%29?q=%5B2%5D)" in text
    assert "in e x" in text


def test_dry_run_cards_say_so_visibly() -> None:
    banner = "DRY RUN: decided and reported; nothing was changed."
    for name, card in all_cards().items():
        dry = name.endswith("-dry")
        assert texts(card)[0].startswith("Dry run") is dry, name
        assert (banner in texts(card)) is (dry or name == "batch"), name
    dry_promotion = promotion_card(dataclasses.replace(PROMOTION, dry_run=True, version=""))
    assert texts(dry_promotion)[0] == "Dry run: would promote: churn (new version)"
    assert "champion would move here" in all_text(dry_promotion)
    for card in (
        failure_card(dataclasses.replace(FAILURE, dry_run=True)),
        violations_card([violation(1, "a")], dry_run=True),
        cleanup_card(CleanupNotice(deleted(1), False, 1, 100, dry_run=True)),
        summary_card(summary(dry_run=True)),
    ):
        assert texts(card)[0].startswith("Dry run: ")
        assert banner in texts(card)


def test_failure_card_facts() -> None:
    text = all_text(failure_card(FAILURE))
    assert "Run failed: xgb-9 in fraud" in text
    assert "Owner: alice@contoso.com" in text
    assert "Duration: 1 h 13 min" in text
    killed = failure_card(dataclasses.replace(FAILURE, status="killed", owner="", duration_s=None))
    assert texts(killed)[0].startswith("Run killed")
    assert "Owner: (no owner recorded)" in all_text(killed)
    assert "Duration: unknown" in all_text(killed)


def test_violations_are_grouped_by_owner_most_first_unknown_last() -> None:
    card = violations_card(
        [violation(1, "zoe"), violation(2, ""), violation(3, "bob"), violation(4, "zoe")]
    )
    lines = texts(card)
    assert lines[0] == "4 runs missing required tags"
    owners = [line for line in lines if line.startswith("**")]
    assert owners == ["**zoe** (2)", "**bob** (1)", "**(no owner recorded)** (1)"]
    zoe_at = lines.index("**zoe** (2)")
    assert lines[zoe_at + 1].startswith("run-1 in churn: missing owner, cost\\_center")
    assert lines[zoe_at + 2].startswith("run-4 ")
    assert "These runs are tagged" in all_text(violations_card([violation(1, "a")]))
    dry = violations_card([violation(1, "a")], dry_run=True)
    assert "These runs would be tagged" in all_text(dry)


def test_cleanup_card_counts_and_explains_restore() -> None:
    text = all_text(cleanup_card(CleanupNotice(deleted(3), False, 3, 100, restore_hours=48)))
    assert "Cleanup: 3 runs deleted" in text
    assert "xgb-2" in text
    assert "ended 3.3 days ago" in text
    assert "mlgov restore --since 48" in text
    dry = all_text(cleanup_card(CleanupNotice(deleted(1), False, 1, 100, dry_run=True)))
    assert "Cleanup: 1 run would be deleted" in dry
    assert "mlgov restore" not in dry


def test_tripped_guard_names_the_setting_to_raise() -> None:
    text = all_text(cleanup_card(CleanupNotice([], True, 412, 100)))
    assert "Nothing was deleted" in text
    assert "412 runs" in text
    assert "GOVERNANCE_CLEANUP_MAX_RUNS = 100" in text
    assert "raise GOVERNANCE_CLEANUP_MAX_RUNS above 412" in text


def test_summary_puts_totals_first_then_active_experiments_by_activity() -> None:
    card = summary_card(summary(source="ml-workspace-production"))
    body_types = [b["type"] for b in card["body"]]
    assert body_types.index("FactSet") < [texts(b) for b in card["body"]].index(["Experiments"])
    assert card["body"][3]["facts"][0] == {"title": "Runs finished", "value": "46"}
    names = [t for t in texts(card) if t in ("**busy**", "**middle**", "**small**")]
    assert names == ["**busy**", "**middle**", "**small**"]
    text = all_text(card)
    assert "quiet-one" not in text
    assert "1 experiment in scope had no activity." in text
    assert "30 finished · 3 failed" in text.replace("\u00a0", " ")
    assert "best auc\\_roc 0.9 (rf)" in text
    assert "**churn v7** from [rf-depth-20]" in text
    assert "delete-run on xgb-1 (fraud): HTTP 503 from server" in text
    assert "ml-workspace-production · last 24 h" in text
    assert "Tue 25 Nov 08:00 → Wed 26 Nov 08:00 UTC" in text


def test_quiet_summary_says_nothing_happened() -> None:
    quiet = summary(
        experiments=[ExperimentActivity("a")], promotions=[], failed_actions=[], totals={}
    )
    assert "No runs finished and no governance action was needed" in all_text(summary_card(quiet))


def test_long_lists_are_capped_for_readability() -> None:
    text = all_text(cleanup_card(CleanupNotice(deleted(57), False, 57, 100)))
    assert "Cleanup: 57 runs deleted" in text
    assert "[xgb-19]" in text
    assert "[xgb-20]" not in text
    assert "… and 37 more runs" in text


def test_batch_merges_notices_into_one_card_with_unique_ids() -> None:
    parts = [failure_card(FAILURE), cleanup_card(CleanupNotice(deleted(2), False, 2, 100))]
    merged = batch_card(parts)
    assert texts(merged)[0] == "mlgov: 2 notices"
    assert "Run failed: xgb-9 in fraud" in texts(merged)
    assert "Cleanup: 2 runs deleted" in texts(merged)
    assert "actions" not in merged  # the bodies carry the links
    assert f"[xgb-9]({URL.format('r-9')})" in all_text(merged)
    twice = batch_card([parts[1], parts[1]])
    ids = [e["id"] for e in elements(twice) if "id" in e]
    assert len(ids) == len(set(ids)) == 3
    assert batch_card([parts[0]]) == parts[0]


def test_fit_shortens_lists_below_the_limit_and_says_how_many_more() -> None:
    owners = [violation(i, f"owner-{i // 20}", "x" * 60) for i in range(800)]
    card = violations_card(owners)
    assert size_of(card) > 24_000
    fitted = fit(card)
    assert size_of(fitted) <= 24_000
    assert size_of(card) > 24_000, "fit() works on a copy"
    text = all_text(fitted)
    assert text.count("… and ") >= 1
    assert "more owners" in text or "more runs" in text
    assert texts(fitted)[0] == "800 runs missing required tags"


def test_fit_accounts_for_every_row_it_hides() -> None:
    rows = [{"type": "TextBlock", "text": f"row {i} " + "y" * 50} for i in range(1000)]
    card = {
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": "title"},
            {"type": "Container", "id": "list.runs.big", "items": rows},
        ],
    }
    fitted = fit(card, limit_bytes=4_000)
    assert size_of(fitted) <= 4_000
    items = fitted["body"][1]["items"]
    more = items[-1]["text"]
    assert more.startswith("… and ")
    assert more.endswith(" more runs")
    hidden = int(more.split()[2])
    assert len(items) - 1 + hidden == 1000
    assert fit(fitted, limit_bytes=4_000) == fitted  # idempotent


def test_fit_leaves_small_cards_alone_and_never_rejects() -> None:
    card = promotion_card(PROMOTION)
    assert fit(card) == card
    huge = {
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": "T" * 50_000},
            {"type": "TextBlock", "text": "x" * 50_000},
        ],
    }
    fitted = fit(huge, limit_bytes=2_000)
    assert size_of(fitted) <= 2_000
    assert fitted["body"]


def test_fit_falls_back_to_a_short_notice_when_nothing_can_be_shortened() -> None:
    facts = [{"title": f"fact {i}", "value": "v" * 20} for i in range(500)]
    card = {
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "TextBlock", "text": "Big facts"}, {"type": "FactSet", "facts": facts}],
    }
    fitted = fit(card, limit_bytes=2_000)
    assert size_of(fitted) <= 2_000
    assert texts(fitted)[0] == "Big facts"
    assert "too large for Teams" in texts(fitted)[1]
    assert "actions" not in fitted
