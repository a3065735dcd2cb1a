"""From a governance report to the notices its cards show: pure mappings over `Record`s.

Which record means what (policy, action, outcome, detail keys) is decided here and only here;
`tests/unit/test_from_report.py` pins each mapping to the shape the use cases produce.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from shared import tags as T
from shared.engine.report import Record, Report
from shared.notify.blocks import Card, plural
from shared.notify.cards import (
    CleanupNotice,
    DeletedRun,
    FailureNotice,
    PromotionNotice,
    Violation,
    batch_card,
    cleanup_card,
    failure_card,
    promotion_card,
    violations_card,
)

# A link to a run from what a record carries (experiment id, run id); None when unknown.
RunLink = Callable[[Record], str | None]

DONE = ("applied", "planned")
PROMOTE_POLICY = "promote-to-registry"
PROMOTE_ACTION = "register-model-version"
TAGS_POLICY = "require-tags"
TAGS_ACTION = "set-run-tags"
CLEANUP_POLICY = "cleanup-failed-runs"
DELETE_ACTION = "delete-run"
NOTIFY_ACTION = "notify"
FAILURE_TOPIC = "run-failed"
GUARD_TOPIC = "cleanup-guard"
RESTORE_HOURS = 24


def _no_link(record: Record) -> str | None:
    return None


def _float(details: Mapping[str, str], key: str) -> float | None:
    try:
        value = float(details.get(key, ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _int(details: Mapping[str, str], key: str) -> int:
    try:
        return int(details.get(key, "").strip())
    except ValueError:
        return 0


def _done(record: Record) -> bool:
    return record.outcome in DONE


def _topic(record: Record, topic: str) -> bool:
    return record.action == NOTIFY_ACTION and _done(record) and record.details.get("topic") == topic


def promotion(record: Record) -> PromotionNotice | None:
    """A promotion applied (or planned in dry run); None for any other record."""
    if not (record.policy == PROMOTE_POLICY and record.action == PROMOTE_ACTION and _done(record)):
        return None
    d = record.details
    value, threshold = _float(d, "value"), _float(d, "threshold")
    if value is None or threshold is None:
        return None
    return PromotionNotice(
        model_name=d.get("model_name", ""),
        version=d.get("version", ""),
        run_id=record.run_id,
        run_name=record.run_name,
        experiment=record.experiment,
        metric=d.get("metric", ""),
        value=value,
        threshold=threshold,
        goal=d.get("goal", "maximize"),
        previous_value=_float(d, "previous_value"),
        previous_version=d.get("previous_version") or None,
        run_url=d.get("run_url") or None,
        dry_run=record.outcome == "planned",
        alias=d.get("alias") or None,
    )


def failure(record: Record) -> FailureNotice | None:
    """The `run-failed` notice of the event path."""
    if not _topic(record, FAILURE_TOPIC):
        return None
    d = record.details
    return FailureNotice(
        experiment=record.experiment,
        run_id=record.run_id,
        run_name=d.get("run_name") or record.run_name,
        owner=d.get("owner") or record.user,
        status=d.get("status", "FAILED"),
        duration_s=_float(d, "duration_s"),
        run_url=d.get("run_url") or None,
        dry_run=record.outcome == "planned",
    )


def violation(record: Record, link: RunLink = _no_link) -> Violation | None:
    """A run that require-tags has just marked noncompliant (or whose missing keys changed).

    A run already marked is skipped by the policy, so it is not announced again each sweep.
    """
    if not (record.policy == TAGS_POLICY and record.action == TAGS_ACTION and _done(record)):
        return None
    d = record.details
    missing = d.get(f"set:{T.MISSING_TAGS}", "")
    if d.get(f"set:{T.COMPLIANCE}") != T.NONCOMPLIANT and not missing:
        return None
    return Violation(
        experiment=record.experiment,
        run_id=record.run_id,
        run_name=record.run_name,
        owner=record.user,
        missing=tuple(k for k in missing.split(",") if k) or ("(see the run)",),
        run_url=link(record),
    )


def deleted_run(record: Record, link: RunLink = _no_link) -> DeletedRun | None:
    if not (record.policy == CLEANUP_POLICY and record.action == DELETE_ACTION and _done(record)):
        return None
    return DeletedRun(
        experiment=record.experiment,
        run_id=record.run_id,
        run_name=record.run_name,
        status=record.details.get("status", ""),
        age_hours=_float(record.details, "age_hours") or 0.0,
        run_url=link(record),
    )


def cleanup_notice(records: Sequence[Record], link: RunLink, cap: int) -> CleanupNotice | None:
    """The deletions of one sweep, or the guard that stopped them; None when neither."""
    guard = next((r for r in records if _topic(r, GUARD_TOPIC)), None)
    if guard is not None:
        return CleanupNotice(
            deleted=(),
            guard_tripped=True,
            candidates=_int(guard.details, "candidates"),
            cap=_int(guard.details, "cap") or cap,
            dry_run=guard.outcome == "planned",
        )
    deleted = [d for r in records if (d := deleted_run(r, link)) is not None]
    if not deleted:
        return None
    planned = all(r.outcome == "planned" for r in records if deleted_run(r) is not None)
    return CleanupNotice(
        deleted=deleted,
        guard_tripped=False,
        candidates=len(deleted),
        cap=cap,
        dry_run=planned,
        restore_hours=RESTORE_HOURS,
    )


def report_cards(report: Report, link: RunLink = _no_link, *, cap: int = 0) -> list[Card]:
    """One card per kind of notice in the report: promotions, failures, violations, cleanup."""
    records = report.records
    cards: list[Card] = [promotion_card(p) for r in records if (p := promotion(r)) is not None]
    cards += [failure_card(f) for r in records if (f := failure(r)) is not None]
    violations = [v for r in records if (v := violation(r, link)) is not None]
    if violations:
        planned = any(r.outcome == "planned" for r in records if violation(r) is not None)
        cards.append(violations_card(violations, dry_run=planned))
    cleanup = cleanup_notice(records, link, cap)
    if cleanup is not None:
        cards.append(cleanup_card(cleanup))
    return cards


def one_card(cards: Sequence[Card], command: str) -> Card | None:
    """Every notice of one invocation as ONE card (one message), or None when there is none."""
    if not cards:
        return None
    return batch_card(cards, heading_text=f"mlgov {command}: {plural(len(cards), 'notices')}")
