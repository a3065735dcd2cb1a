"""`scheduled_sweep`: the timer that runs one sweep (cleanup, then catch-up), as `mlgov sweep` does.

A tracking server that is down raises, so the invocation shows as failed (timers are not
retried: the next schedule is the retry). The App is built on first use.
"""

from __future__ import annotations

import logging

import azure.functions as func

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
def scheduled_sweep(timer: func.TimerRequest) -> None:
    from shared.bootstrap import host_app

    if timer.past_due:
        log.warning("scheduled_sweep is past due: running now")
    outcome = host_app().sweep(log=log)
    log.info("scheduled_sweep: %s", outcome.report.summary_line())
