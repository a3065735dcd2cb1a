"""The Functions app: registers the blueprints in `functions/` and nothing else.

Importing this module must stay cheap: no settings read, no client built, no network.
"""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()
