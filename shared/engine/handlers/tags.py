"""Handlers for `SetRunTags`, `SetVersionTags` and notices (which change nothing in tracking)."""

from __future__ import annotations

from shared.engine.actions import Notice, SetRunTags, SetVersionTags
from shared.engine.results import APPLIED, Result
from shared.tracking.gateway import TrackingGateway


def set_run_tags(gateway: TrackingGateway, action: SetRunTags) -> Result:
    gateway.set_run_tags(action.target.run_id, action.set_tags, action.delete_tags)
    return APPLIED


def set_version_tags(gateway: TrackingGateway, action: SetVersionTags) -> Result:
    gateway.set_model_version_tags(action.model_name, action.version, dict(action.set_tags))
    return APPLIED


def notice(gateway: TrackingGateway, action: Notice) -> Result:
    # Nothing to change in tracking: the notifier delivers the notice after the run, and
    # only a delivered notice is recorded on the run (`usecases.notifications`).
    return APPLIED
