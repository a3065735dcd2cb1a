"""The host's view of `on_run_event`: indexed with an Event Grid trigger bound to its parameter,
and importing the app builds nothing (no settings read, no MLflow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter imports the app as the host does (get_functions() once per app object).
SCRIPT = """
import inspect, json, sys
import function_app
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("mlflow", "sklearn", "pandas"))
# The App (and the settings it is built from) come on first use, never at import.
built = sorted(m for m in ("shared.bootstrap", "shared.settings", "shared.app") if m in sys.modules)
out = {"heavy": heavy, "built": built, "functions": {}}
for fn in function_app.app.get_functions():
    params = list(inspect.signature(fn.get_user_function()).parameters)
    out["functions"][fn.get_function_name()] = {
        "bindings": fn.get_bindings_dict()["bindings"], "params": params,
    }
print(json.dumps(out, default=str))
"""


def test_on_run_event_is_indexed_with_an_event_grid_trigger():
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_")}
    # An invalid setting: importing the app must not read (or fail on) settings.
    environ["GOVERNANCE_PROMOTION_THRESHOLD"] = "high"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    indexed = json.loads(result.stdout.splitlines()[-1])

    assert indexed["heavy"] == []
    assert indexed["built"] == []
    function = indexed["functions"]["on_run_event"]
    (binding,) = function["bindings"]
    assert binding["type"] == "eventGridTrigger"
    assert binding["name"] == "event"
    assert function["params"] == [binding["name"]]
