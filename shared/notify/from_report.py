"""From a governance report to the notices its cards show: pure mappings over typed `Record`s.

Which record means what is decided here, by the type of its action and result;
`tests/unit/test_from_report.py` pins each mapping to the records the use cases produce.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shared.engine.actions import (
    DeleteRun,
    GuardNotice,
    RegisterModelVersion,
    RunFailedNotice,
    SetRunTags,
)
from shared.engine.report import Record, Report
from shared.engine.results import Registered
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

RESTORE_HOURS = 24


def _no_link(record: Record) -> str | None:
    return None


def promotion(record: Record) -> PromotionNotice | None:
    """A promotion applied (or planned in dry run); None for any other record."""
    action = record.decision
    if not (isinstance(action, RegisterModelVersion) and record.done):
        return None
    registered = record.result if isinstance(record.result, Registered) else None
    return PromotionNotice(
        model_name=action.model_name,
        version=registered.version if registered else "",
        run_id=record.run_id,
        run_name=record.run_name,
        experiment=record.experiment,
        metric=action.metric,
        value=action.value,
        threshold=action.threshold,
        goal=action.goal,
        previous_value=action.previous_value,
        previous_version=action.previous_version,
        run_url=action.run_url,
        dry_run=record.outcome == "planned",
        alias=action.alias or None,
    )


def failure(record: Record) -> FailureNotice | None:
    """A failed run's notice (from its event or the sweep's catch-up)."""
    action = record.decision
    if not (isinstance(action, RunFailedNotice) and record.done):
        return None
    return FailureNotice(
        experiment=record.experiment,
        run_id=record.run_id,
        run_name=record.run_name,
        owner=record.user,
        status=action.status,
        duration_s=action.duration_s,
        run_url=action.run_url,
        dry_run=record.outcome == "planned",
    )


def violation(record: Record, link: RunLink = _no_link) -> Violation | None:
    """A run that require-tags has just marked noncompliant (or whose missing keys changed).

    A run already marked is skipped by the policy, so it is not announced again each sweep.
    """
    action = record.decision
    if not (isinstance(action, SetRunTags) and action.violation and record.done):
        return None
    return Violation(
        experiment=record.experiment,
        run_id=record.run_id,
        run_name=record.run_name,
        owner=record.user,
        missing=action.violation,
        run_url=link(record),
    )


def deleted_run(record: Record, link: RunLink = _no_link) -> DeletedRun | None:
    action = record.decision
    if not (isinstance(action, DeleteRun) and record.done):
        return None
    return DeletedRun(
        experiment=record.experiment,
        run_id=record.run_id,
        run_name=record.run_name,
        status=action.status,
        age_hours=action.age_hours,
        run_url=link(record),
    )


def cleanup_notice(records: Sequence[Record], link: RunLink, cap: int) -> CleanupNotice | None:
    """The deletions of one sweep, or the guard that stopped them; None when neither."""
    for record in records:
        guard = record.decision
        if isinstance(guard, GuardNotice) and record.done:
            return CleanupNotice(
                deleted=(),
                guard_tripped=True,
                candidates=guard.candidates,
                cap=guard.cap or cap,
                dry_run=record.outcome == "planned",
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
