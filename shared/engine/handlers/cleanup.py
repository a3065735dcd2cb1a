"""Handlers for `DeleteRun` and `RestoreRun`: the only code that deletes or restores runs.

Two sweeps may overlap (two timers, a CLI sweep during the timer) and go for the same run.
MLflow has no compare-and-set on runs (`delete_run` accepts a deleted run; `log_batch` checks
"must be in the 'active' state" before it writes, so a write may land after a deletion), so
the deletion is claimed with a tag of each sweep's own (`governance.deletion_claim.<id>`),
written with the reasons; the run is read again and deleted only when no other live claim is
on it. Of two claims the smaller id waits for the other to withdraw, the larger withdraws:
of two sweeps that each read only their own claim one would have written after the other
read, which cannot be, so at most one deletes and reports `applied`. A sweep that finds the
run claimed or deleted meanwhile reports `skipped`, never `failed`.
"""

from __future__ import annotations

import contextlib

from shared import tags as T
from shared.engine import invocation
from shared.engine.actions import DeleteRun, RestoreRun
from shared.engine.invocation import Invocation, parse_moment
from shared.engine.results import APPLIED, RestoreUnsupported, Result
from shared.errors import CapabilityUnsupported, RunNotFound, TrackingError, TrackingUnavailable
from shared.model import Run
from shared.tracking.gateway import TrackingGateway

DELETION_TAGS = (T.DELETED_REASON, T.DELETED_AT)
DELETED_MEANWHILE = "already deleted meanwhile (by a concurrent sweep)"
CONCURRENT = "claimed by a concurrent sweep, which deletes and reports it"
# How often the claim with the smaller id reads the run while the other sweep settles (it
# withdraws or deletes within a request or two); reads, not pauses: no wait of its own.
SETTLE_READS = 20


def claims(run: Run, me: Invocation) -> set[str]:
    """The ids of the other sweeps' live claims on `run` (a claim past its end is stale)."""
    found = set()
    for key, value in run.tags.items():
        if not key.startswith(T.DELETION_CLAIM):
            continue
        owner, until = key[len(T.DELETION_CLAIM) :], parse_moment(value)
        if owner != me.id and (until is None or until >= me.started):
            found.add(owner)
    return found


def delete_run(gateway: TrackingGateway, action: DeleteRun) -> Result:
    run_id = action.target.run_id
    me = invocation.current()
    # The decision may be minutes old (the whole workspace was counted first): re-read, and
    # let the policy's own rule judge the run as it is now.
    try:
        run = gateway.get_run(run_id)
    except RunNotFound:
        return Result("skipped", "run no longer exists")
    if run.deleted:
        return Result("skipped", "already deleted")
    if claims(run, me):
        return Result("skipped", CONCURRENT)
    why_not = action.recheck(run)
    if why_not is not None:
        return Result("skipped", why_not)
    if action.is_parent:
        active = [c.run_id for c in gateway.iter_child_runs(run.experiment_id, run_id)]
        if active:
            # Children are deleted before parents; one still active means it stayed.
            return Result("skipped", f"{len(active)} child runs are still active")

    claim = T.DELETION_CLAIM + me.id
    try:
        gateway.set_run_tags(run_id, {**action.set_tags, claim: me.ends_by.isoformat()})
        settled = _settle(gateway, run_id, me, claim)
        if settled is not None:
            return settled
        gateway.delete_run(run_id)
    except TrackingError:
        if _deleted_meanwhile(gateway, run_id):
            # Deleted between our re-read and our write: MLflow refuses the write ("must be
            # in the 'active' state"). The deletion is the other sweep's to report.
            return Result("skipped", DELETED_MEANWHILE)
        _untag(gateway, run_id, claim)
        raise
    except Exception:
        _untag(gateway, run_id, claim)
        raise
    return APPLIED


def _settle(gateway: TrackingGateway, run_id: str, me: Invocation, claim: str) -> Result | None:
    """None when this sweep's claim stands alone (delete now), else why it stepped back."""
    for _ in range(SETTLE_READS):
        run = gateway.get_run(run_id)
        if run.deleted:
            return Result("skipped", DELETED_MEANWHILE)
        others = claims(run, me)
        if not others:
            return None
        if min(others) < me.id:
            _withdraw(gateway, run_id, claim)
            return Result("skipped", CONCURRENT)
    _withdraw(gateway, run_id, claim)
    run = gateway.get_run(run_id)
    if not run.deleted and not claims(run, me):
        # Nobody is deleting it now: no reasons left on a live run (the next sweep would take
        # them for a restore by someone and spare the run for a grace period).
        _untag(gateway, run_id, claim)
    return Result("skipped", f"{CONCURRENT}; it has not settled: left for the next sweep")


def _withdraw(gateway: TrackingGateway, run_id: str, claim: str) -> None:
    # Only our own claim goes: the reasons on the run are the other sweep's as much as ours.
    with contextlib.suppress(TrackingError):
        gateway.set_run_tags(run_id, {}, delete=(claim,))


def _deleted_meanwhile(gateway: TrackingGateway, run_id: str) -> bool:
    """Whether the run is gone or deleted now (read once more; unknown counts as no)."""
    try:
        return gateway.get_run(run_id).deleted
    except RunNotFound:
        return True
    except Exception:  # noqa: BLE001 (unknown: the original error is raised)
        return False


def _untag(gateway: TrackingGateway, run_id: str, claim: str) -> None:
    # Leave no deletion tags on a run that is still there (best effort; the error wins).
    with contextlib.suppress(Exception):
        gateway.set_run_tags(run_id, {}, delete=(*DELETION_TAGS, claim))


def restore_run(gateway: TrackingGateway, action: RestoreRun) -> Result:
    run_id = action.target.run_id
    try:
        gateway.restore_run(run_id)
    except RunNotFound:
        return Result("skipped", "run no longer exists (purged by the server?)")
    except TrackingUnavailable:
        raise
    except CapabilityUnsupported as exc:
        return RestoreUnsupported("failed", str(exc))
    gateway.set_run_tags(run_id, action.set_tags, delete=action.clear_tags)
    return APPLIED
