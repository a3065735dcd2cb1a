"""Handlers for `DeleteRun` and `RestoreRun`: the only code that deletes or restores runs."""

from __future__ import annotations

import contextlib

from shared import tags as T
from shared.engine.actions import DeleteRun, RestoreRun
from shared.engine.results import APPLIED, RestoreUnsupported, Result
from shared.errors import CapabilityUnsupported, RunNotFound, TrackingUnavailable
from shared.tracking.gateway import TrackingGateway

DELETION_TAGS = (T.DELETED_REASON, T.DELETED_AT)


def delete_run(gateway: TrackingGateway, action: DeleteRun) -> Result:
    run_id = action.target.run_id
    # The decision may be minutes old (the whole workspace was counted first): re-read, and
    # let the policy's own rule judge the run as it is now.
    try:
        run = gateway.get_run(run_id)
    except RunNotFound:
        return Result("skipped", "run no longer exists")
    if run.deleted:
        return Result("skipped", "already deleted")
    why_not = action.recheck(run)
    if why_not is not None:
        return Result("skipped", why_not)
    if action.is_parent:
        active = [c.run_id for c in gateway.iter_child_runs(run.experiment_id, run_id)]
        if active:
            # Children are deleted before parents; one still active means it stayed.
            return Result("skipped", f"{len(active)} child runs are still active")

    gateway.set_run_tags(run_id, action.set_tags)
    try:
        gateway.delete_run(run_id)
    except Exception:
        # Leave no deletion tags on a run that is still there (best effort; the error wins).
        with contextlib.suppress(Exception):
            gateway.set_run_tags(run_id, {}, delete=DELETION_TAGS)
        raise
    return APPLIED


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
