"""`scheduled_summary`: the timer that posts the window's digest to Teams, as `mlgov summary` does.

Without a webhook the card is only logged. Delivery never fails the invocation; a tracking
server that is down does (timers are not retried: the next schedule is the retry).
"""

from __future__ import annotations

import logging

import azure.functions as func

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)


@bp.function_name("scheduled_summary")
@bp.timer_trigger(
    schedule="%GOVERNANCE_SUMMARY_SCHEDULE%",
    arg_name="timer",
    run_on_startup=False,
    use_monitor=True,
)
def scheduled_summary(timer: func.TimerRequest) -> None:
    from shared.bootstrap import host_app, host_estate

    if timer.past_due:
        log.warning("scheduled_summary is past due: running now")
    estate = host_estate()
    if estate is not None:  # several workspaces: one digest for the estate, totals first
        result = estate.summary()
        state = "delivered" if result.delivered else "NOT delivered"
        log.info("scheduled_summary: %d workspaces; card %s", len(result.summary.workspaces), state)
        return
    app = host_app()
    outcome = app.summary()
    channel = app.channel
    sent = (
        ("posted" if channel.posts else f"only {channel.label}")
        if outcome.delivered
        else "NOT delivered"
    )
    log.info("scheduled_summary: %s; card %s", dict(outcome.summary.totals), sent)
