"""Applies `RegisterModelVersion` as one idempotent unit: version, alias, run tag.

Every step first looks at what is already there, so a duplicate event or a retry after a
crash halfway finishes the job instead of registering a second version for the same run.
Two invocations that both looked before either registered (concurrent duplicate events, a
sweep overlapping an event) both create a version; each then re-lists the run's versions and
the one that created a higher version deletes it, so the lowest survives and takes the alias.
"""

from __future__ import annotations

from shared import tags as T
from shared.engine.actions import RegisterModelVersion
from shared.engine.results import Overtaken, Registered, Result
from shared.model import ModelVersion
from shared.tracking.gateway import TrackingGateway


def _overtaken_by(
    gateway: TrackingGateway, action: RegisterModelVersion, ours: str | None
) -> ModelVersion | None:
    """The version the alias points at now, if it moved since the decision to one that is
    as good as this run or better (then the alias must not move back). The comparison is the
    policy's own (`action.outranks`)."""
    current = gateway.get_model_version_by_alias(action.model_name, action.alias)
    if current is None or current.version in (ours, action.previous_version):
        return None
    if action.outranks(gateway, current):
        return None
    return current


def _skip_overtaken(action: RegisterModelVersion, current: ModelVersion, registered: str) -> Result:
    note = f"; v{registered} of this run stays registered without the alias" if registered else ""
    return Overtaken(
        outcome="skipped",
        reason=f"{action.alias} moved meanwhile to {action.model_name} v{current.version}, "
        f"as good or better: left there{note}",
        current_version=current.version,
    )


def _keep_lowest(
    gateway: TrackingGateway, name: str, run_id: str, ours: ModelVersion
) -> tuple[ModelVersion, str]:
    """After creating `ours`, the run's surviving version, and a note when `ours` was a
    duplicate of a concurrent registration (then deleted).

    Every racer applies the same rule (lowest number wins; delete only what you created), so
    they converge on one version without coordinating.
    """
    versions = gateway.find_model_versions(name, run_id)  # sorted, lowest first
    if not versions or versions[0].version == ours.version:
        return ours, ""
    survivor = versions[0]
    gateway.delete_model_version(name, ours.version)
    note = f" (a concurrent registration made v{survivor.version} first: v{ours.version} deleted)"
    return survivor, note


def register_model_version(gateway: TrackingGateway, action: RegisterModelVersion) -> Result:
    run_id, name = action.target.run_id, action.model_name
    version_tags = {
        T.SOURCE_RUN_ID: run_id,
        T.METRIC: action.metric,
        T.METRIC_VALUE: repr(action.value),
    }

    duplicate = ""
    existing = gateway.find_model_versions(name, run_id)
    if existing:
        version = existing[0]
        created = False
    else:
        overtaken = _overtaken_by(gateway, action, None)
        if overtaken is not None:
            return _skip_overtaken(action, overtaken, "")
        source = gateway.find_model_source(gateway.get_run(run_id), action.artifact_path)
        if source is None:
            return Result(outcome="skipped", reason=action.no_model_reason)
        version = gateway.create_model_version(name, source, run_id, version_tags)
        version, duplicate = _keep_lowest(gateway, name, run_id, version)
        created = not duplicate
    # A version registered by an interrupted attempt (or by hand) may lack the governance tags.
    stale = {k: v for k, v in version_tags.items() if version.tags.get(k) != v}
    if stale:
        gateway.set_model_version_tags(name, version.version, stale)

    # Compare-and-set: re-read the alias right before moving it.
    overtaken = _overtaken_by(gateway, action, version.version)
    if overtaken is not None:
        return _skip_overtaken(action, overtaken, version.version)
    how = gateway.set_alias(name, action.alias, version.version)
    gateway.set_run_tags(run_id, {T.PROMOTED_TO: f"{name}:{version.version}"})

    verb = "registered" if created else "reused"
    via = "" if how == "alias" else f" (registry refused aliases: set as {how})"
    return Registered(
        reason=f"{action.reason}; {verb} {name} v{version.version}{duplicate}, "
        f"{action.alias} -> v{version.version}{via}",
        version=version.version,
        alias_set_as=how,
        source=version.source,
    )
