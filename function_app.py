"""The Functions app: registers the blueprints in `functions/` and nothing else.

Importing this module must stay cheap: no settings read, no client built, no network.
"""

from __future__ import annotations

import azure.functions as func

from functions.run_events import bp as run_events
from functions.scheduled_sweep import bp as scheduled_sweep
from functions.summary import bp as scheduled_summary
from functions.sweep_queue import bp as sweep_queue

app = func.FunctionApp()
app.register_functions(run_events)
app.register_functions(scheduled_sweep)
app.register_functions(scheduled_summary)
app.register_functions(sweep_queue)
