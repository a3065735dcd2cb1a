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

What is read, and when: the executor deletes a level of runs (children before parents) in
stages (`DELETION`): one search re-reads every run of the level (`read`, active runs only),
then each run is checked and claimed (`begin`), one search reads the claimed runs again
(`read`), then each is settled and deleted (`end`). A run missing from a search (deleted, or
gone) is read alone with `get_run`, which tells the two apart; so is every run when the
search fails, and the run of a deletion applied on its own (`delete_run`). The claim with the
smaller id reads its run alone while the other settles.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TypeVar

from shared import tags as T
from shared.engine import invocation
from shared.engine.actions import DeleteRun, RestoreRun
from shared.engine.invocation import Invocation, parse_moment, running
from shared.engine.results import APPLIED, RestoreUnsupported, Result
from shared.errors import CapabilityUnsupported, RunNotFound, TrackingError, TrackingUnavailable
from shared.model import Run
from shared.tracking.gateway import RunQuery, TrackingGateway, TrackingReader

_R = TypeVar("_R")

DELETION_TAGS = (T.DELETED_REASON, T.DELETED_AT)
DELETED_MEANWHILE = "already deleted meanwhile (by a concurrent sweep)"
CONCURRENT = "claimed by a concurrent sweep, which deletes and reports it"
# How often the claim with the smaller id reads the run while the other sweep settles (it
# withdraws or deletes within a request or two); reads, not pauses: no wait of its own. The
# level's read of the claimed runs is the first of them.
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


class Deletion:
    """`DeleteRun` in stages, over every deletion of a level at once (`StagedHandler`).

    `begin` and `end` take the run as the level's `read` found it; None when that read did
    not hold it: the run is then read alone, inside the stage.
    """

    def read(self, gateway: TrackingReader, actions: Sequence[DeleteRun]) -> dict[str, Run]:
        """The active runs of `actions`, by id: one `attributes.run_id IN (...)` search per
        200 ids (`shared.tracking.gateway.RUN_IDS_PER_SEARCH`; the executor reads a level in
        parts of that size, at once), over their experiments at once."""
        # A search answers each run whole, tags included, of the active ones only (MLflow's
        # `SqlAlchemyStore._search_runs`, mlflow/store/tracking/sqlalchemy_store.py: tags
        # loaded eagerly, `lifecycle_stage IN` the view's stages): what `get_run` tells, but
        # for a deleted run, which stays out (and is then read alone).
        experiments = list(dict.fromkeys(a.target.experiment_id for a in actions))
        ids = frozenset(a.target.run_id for a in actions)
        query = RunQuery(experiments[0], run_ids=ids).across(experiments)
        return {run.run_id: run for run in gateway.iter_runs(query)}

    def begin(self, gateway: TrackingGateway, action: DeleteRun, run: Run | None) -> Result | None:
        """Check the run as it is now, then claim it; None once claimed (`end` follows)."""
        run_id = action.target.run_id
        me = invocation.current()
        if run is None:
            # Not among the level's active runs (or that read failed): deleted, or gone?
            try:
                run = gateway.get_run(run_id)
            except RunNotFound:
                return Result("skipped", "run no longer exists")
        if run.deleted:
            return Result("skipped", "already deleted")
        if claims(run, me):
            return Result("skipped", CONCURRENT)
        # The decision may be minutes old (the whole workspace was counted first): the
        # policy's own rule judges the run as it is now.
        why_not = action.recheck(run)
        if why_not is not None:
            return Result("skipped", why_not)
        if action.is_parent:
            active = [c.run_id for c in gateway.iter_child_runs(run.experiment_id, run_id)]
            if active:
                # Children are deleted before parents; one still active means it stayed.
                return Result("skipped", f"{len(active)} child runs are still active")
        claim = _claim(me)
        tags = {**action.set_tags, claim: me.ends_by.isoformat()}
        return _guarded(gateway, run_id, claim, lambda: gateway.set_run_tags(run_id, tags))

    def end(self, gateway: TrackingGateway, action: DeleteRun, run: Run | None) -> Result:
        """Delete the claimed run once its claim stands alone, or say why it stepped back."""
        run_id = action.target.run_id
        me = invocation.current()
        claim = _claim(me)

        def settle_then_delete() -> Result:
            settled = _settle(gateway, run_id, me, claim, run)
            if settled is not None:
                return settled
            gateway.delete_run(run_id)
            return APPLIED

        return _guarded(gateway, run_id, claim, settle_then_delete)

    def abandon(self, gateway: TrackingGateway, action: DeleteRun) -> None:
        """Take the claim and the reasons off a run claimed whose deletion will not follow
        (the level was cut short); raises when the server refuses."""
        claim = _claim(invocation.current())
        gateway.set_run_tags(action.target.run_id, {}, delete=(*DELETION_TAGS, claim))


DELETION = Deletion()


def delete_run(gateway: TrackingGateway, action: DeleteRun) -> Result:
    """One deletion on its own, both stages, the run read alone (`get_run`) each time."""
    with running(invocation.current()):  # one claim for both stages
        begun = DELETION.begin(gateway, action, None)
        return begun if begun is not None else DELETION.end(gateway, action, None)


def _claim(me: Invocation) -> str:
    return T.DELETION_CLAIM + me.id


def _guarded(
    gateway: TrackingGateway, run_id: str, claim: str, step: Callable[[], _R]
) -> _R | Result:
    """`step()`, a write of the claim or what follows it; on an error no deletion tag stays."""
    try:
        return step()
    except TrackingError:
        if _deleted_meanwhile(gateway, run_id):
            # Deleted between our read and our write: MLflow refuses the write ("must be
            # in the 'active' state"). The deletion is the other sweep's to report.
            return Result("skipped", DELETED_MEANWHILE)
        _untag(gateway, run_id, claim)
        raise
    except Exception:
        _untag(gateway, run_id, claim)
        raise


def _settle(
    gateway: TrackingGateway, run_id: str, me: Invocation, claim: str, first: Run | None
) -> Result | None:
    """None when this sweep's claim stands alone (delete now), else why it stepped back.
    `first`: the run as the level's read found it (None: read it alone)."""
    for attempt in range(SETTLE_READS):
        run = first if attempt == 0 and first is not None else gateway.get_run(run_id)
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
