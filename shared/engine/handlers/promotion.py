"""Applies `RegisterModelVersion` as one idempotent unit: version, alias, run tag.

It uses what the decision read (the run's model, whether the registered model exists) and
reads only what may have changed since. The version is registered, then the run's versions
are listed: two invocations that both registered (concurrent duplicate events, a sweep
overlapping an event, a retry after a crash halfway) converge on the lowest, the others
deleting what they created. The alias is re-read right before it moves (compare-and-set).
The run's tags (`governance.promoted_to` and the compliance marks decided with it) go in one
request at the end, on every path that does not raise.

Who announces is decided in the registry: each version carries the invocation that registered
it (`governance.registered_by`, `governance.registered_until`). The owner of the surviving
version promotes and announces; another invocation that converges on it leaves it to its owner
while the owner may still run, and takes over only once the owner has ended without the
promotion being announced. The run's `governance.promoted_to` says so once written (a run
carrying it is never decided again); only when that write failed is the version marked
`governance.announced_at` after the card is delivered (`shared.usecases.notifications`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from shared import tags as T
from shared.engine import invocation
from shared.engine.actions import RegisterModelVersion
from shared.engine.invocation import Invocation, parse_moment
from shared.engine.results import Overtaken, Registered, Result
from shared.errors import TrackingUnavailable
from shared.model import ModelVersion
from shared.tracking.gateway import TrackingGateway

# Who announces a promotion to a version this invocation did not create.
Claim = Literal["own", "take-over", "announced", "owner's"]


def _overtaken_by(
    gateway: TrackingGateway, action: RegisterModelVersion, current: ModelVersion | None
) -> ModelVersion | None:
    """`current` (the version the alias points at now) if it moved since the decision to one
    that is as good as this run or better (then the alias must not move back). The
    comparison is the policy's own (`action.outranks`)."""
    if current is None or current.version == action.previous_version:
        return None
    if current.run_id == action.target.run_id or action.outranks(gateway, current):
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


def _best_rival(
    gateway: TrackingGateway, action: RegisterModelVersion, listed: list[ModelVersion]
) -> ModelVersion | None:
    """In a model this invocation found missing, another run's version registered meanwhile
    that is as good or better (a concurrent first promotion). A listing carries no aliases
    (MLflow's search leaves them out), so the rule is by metric, not by who holds the alias:
    whichever racer lists last sees both versions, and the better one ends with the alias."""
    for version in listed:
        if version.run_id != action.target.run_id and _overtaken_by(gateway, action, version):
            return version
    return None


def claim(version: ModelVersion, me: Invocation, *, alias_on_it: bool) -> Claim:
    """Who announces a promotion to `version`, a version of the run this invocation found
    rather than created: announced already, or the alias already on it when this invocation
    decided (whoever moved it announced it, in a failing invocation's card too): finish
    quietly; nobody this tool knows registered it, or this invocation did: its own; its owner
    has ended without either: take over; else it is the owner's, which may still be running."""
    if version.tags.get(T.ANNOUNCED_AT) or alias_on_it:
        return "announced"
    owner = version.tags.get(T.REGISTERED_BY, "")
    if not owner or owner == me.id:
        return "own"
    until = parse_moment(version.tags.get(T.REGISTERED_UNTIL))
    if until is None or me.started > until:
        return "take-over"
    return "owner's"


def _register(gateway: TrackingGateway, action: RegisterModelVersion) -> tuple[Result, str]:
    """The result, and the run's `governance.promoted_to` value ("" when not promoted)."""
    run_id, name = action.target.run_id, action.model_name
    version_tags = {
        T.SOURCE_RUN_ID: run_id,
        T.METRIC: action.metric,
        T.METRIC_VALUE: repr(action.value),
    }
    me = invocation.current()
    owner_tags = {T.REGISTERED_BY: me.id, T.REGISTERED_UNTIL: me.ends_by.isoformat()}
    source = action.source
    if source is None:  # decided without looking (a caller of its own): look now
        source = gateway.find_model_source(gateway.get_run(run_id), action.artifact_path)
    if source is None:
        return Result(outcome="skipped", reason=action.no_model_reason), ""
    # The owner's tags go in the creating request itself: no version is ever without them.
    ours = gateway.create_model_version(
        name,
        source,
        run_id,
        version_tags | owner_tags,
        create_model=action.model_exists is not True,
    )
    if action.model_exists is False:
        # A model this invocation found missing holds a few versions at most: one listing
        # answers both "which of this run's versions survives" and "who else registered".
        listed = gateway.model_versions(name)
        mine = [v for v in listed if v.run_id == run_id]
        current = _best_rival(gateway, action, listed)
    else:
        mine = gateway.find_model_versions(name, run_id)  # sorted, lowest first
        current = None
    # Every racer applies the same rule (lowest number wins; delete only what you created).
    version, duplicate = ours, ""
    if mine and mine[0].version != ours.version:
        version = mine[0]
        gateway.delete_model_version(name, ours.version)
        duplicate = (
            f" (a concurrent registration made v{version.version} first: v{ours.version} deleted)"
        )
    alias_on_it = action.previous_version == version.version
    claimed = "own" if version is ours else claim(version, me, alias_on_it=alias_on_it)
    if claimed == "owner's":
        # Its owner may still be running: the promotion and its card are the owner's. Should
        # the owner have died, the next look at the run once it has ended takes over (a
        # redelivery, the sweep's catch-up): the run is left untagged for that.
        owner = version.tags.get(T.REGISTERED_BY, "")
        return Result(
            outcome="skipped",
            reason=f"{action.reason}; {name} v{version.version} is being promoted by the "
            f"invocation that registered it ({owner[:12]}), which announces it{duplicate}",
        ), ""
    # A version registered by an interrupted attempt (or by hand) may lack the governance tags.
    stale = {k: v for k, v in version_tags.items() if version.tags.get(k) != v}
    if stale:
        gateway.set_model_version_tags(name, version.version, stale)

    if action.model_exists is not False:
        current = gateway.get_model_version_by_alias(name, action.alias)
    if current is not None and current.version == version.version:
        current = None
    overtaken = _overtaken_by(gateway, action, current)
    if overtaken is not None:
        if version is ours:
            # Registered only to find the alias gone to a version as good or better: the
            # new version would be an orphan nobody asked for (rare: one request more).
            gateway.delete_model_version(name, ours.version)
            return _skip_overtaken(action, overtaken, ""), ""
        return _skip_overtaken(action, overtaken, version.version), ""
    how = gateway.set_alias(name, action.alias, version.version)

    verb = "reused" if duplicate else "registered"
    via = "" if how == "alias" else f" (registry refused aliases: set as {how})"
    note = {
        "own": "",
        "take-over": "; taken over from the invocation that registered it, which ended "
        "without announcing it",
        "announced": "; its promotion was announced already: not again",
    }[claimed]
    registered = Registered(
        # Announced already: done before, not by this invocation, and no card again.
        outcome="skipped" if claimed == "announced" else "applied",
        reason=f"{action.reason}; {verb} {name} v{version.version}{duplicate}, "
        f"{action.alias} -> v{version.version}{via}{note}",
        version=version.version,
        alias_set_as=how,
        source=version.source,
    )
    return registered, f"{name}:{version.version}"


def register_model_version(gateway: TrackingGateway, action: RegisterModelVersion) -> Result:
    result, promoted_to = _register(gateway, action)
    tags = dict(action.with_tags)
    if promoted_to:
        tags[T.PROMOTED_TO] = promoted_to
    if tags or action.with_deletes:
        try:
            gateway.set_run_tags(action.target.run_id, tags, action.with_deletes)
        except TrackingUnavailable as exc:
            if promoted_to:
                # The alias has moved: the promotion is done and is reported (and announced)
                # by this failing invocation; the retry finds it and only tags the run.
                exc.applied = result
            raise
    if promoted_to and isinstance(result, Registered):
        # The run says it is promoted: no later invocation decides it again (the policy's
        # precheck), so none can take its version over and announce it twice.
        return replace(result, run_tagged=True)
    return result
