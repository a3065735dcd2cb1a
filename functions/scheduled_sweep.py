"""`scheduled_sweep`: the timer that runs one sweep (cleanup, then catch-up), as `mlgov sweep` does.

One workspace (or one tracking server) is swept here, in-process. An estate of several is
fanned out: one message per workspace on the `mlgov-sweep` queue (the queue output binding),
each swept by `sweep_workspace` on whichever instance takes it. A tracking server that is
down raises, so the invocation shows as failed (timers are not retried: the next schedule is
the retry). The App is built on first use.
"""

from __future__ import annotations

import logging

import azure.functions as func

from functions.sweep_queue import CONNECTION, SWEEP_QUEUE

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)


# The schedule is an app setting (NCRONTAB, UTC); never run_on_startup in production,
# where a scale-out or restart would otherwise start extra sweeps.
@bp.function_name("scheduled_sweep")
@bp.timer_trigger(
    schedule="%GOVERNANCE_SWEEP_SCHEDULE%",
    arg_name="timer",
    run_on_startup=False,
    use_monitor=True,
)
@bp.queue_output(arg_name="messages", queue_name=SWEEP_QUEUE, connection=CONNECTION)
def scheduled_sweep(timer: func.TimerRequest, messages: func.Out[list[str]]) -> None:
    from shared.app.estate import sweep_message
    from shared.bootstrap import host_app, host_estate

    if timer.past_due:
        log.warning("scheduled_sweep is past due: running now")
    estate = host_estate()
    if estate is None:
        outcome = host_app().sweep(log=log)
        log.info("scheduled_sweep: %s", outcome.report.summary_line())
        return
    # Discovery is read again here, so a workspace created in the scope is swept too.
    members = tuple(estate.members())
    if len(members) == 1:
        outcome = estate.sweep_member(members[0], log=log)
        log.info("scheduled_sweep: %s", outcome.report.summary_line())
        return
    messages.set([sweep_message(member) for member in members])
    names = ", ".join(member.name for member in members)
    log.info("scheduled_sweep: %d workspaces queued on %s: %s", len(members), SWEEP_QUEUE, names)
