"""`on_run_event`: Azure ML run events from Event Grid (either schema) -> the App's events path.

Poison events are logged and dropped (raising would make Event Grid redeliver them for a
day); a tracking server that is down raises, so the platform redelivers the event. When the
settings govern workspaces, the event goes to the App of the workspace it names (`topic` /
`source`); an event from outside the estate is logged and dropped, never retried.
"""

from __future__ import annotations

import logging

import azure.functions as func

from functions.wire import wire

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)


@bp.event_grid_trigger(arg_name="event")
def on_run_event(event: func.EventGridEvent) -> None:
    # The library passes a func.CloudEvent instead when the body has `specversion`.
    from shared.bootstrap import host_app, host_estate

    payload = wire(event)
    estate = host_estate()
    if estate is None:
        outcome = host_app().handle_events(payload, log=log)
    else:
        routed = estate.route(payload, log=log)
        if routed is None:  # outside the estate: route() logged it; not retried
            return
        outcome = routed
    if outcome.rejected:  # one event in, so at most one rejected
        problem = outcome.rejected[0].problem
        log.error("on_run_event %s dropped (malformed, not retried): %s", event.id, problem)
        return
    log.info("on_run_event %s: %s", event.id, outcome.report.summary_line())
    # A run unreadable for now (401/403 while a new deployment's role propagates): redelivered.
    if outcome.redelivery is not None:
        raise outcome.redelivery
