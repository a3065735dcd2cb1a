"""MLflow client settings mlgov relies on when the user has not chosen them (set at startup).

The composition root applies them once to the process environment, which MLflow's REST client
reads on every request; no gateway constructor writes the environment.
"""

from __future__ import annotations

from collections.abc import MutableMapping

# The REST client retries 7 times with exponential backoff by default: minutes, far beyond
# Event Grid's 30 s. These defaults apply only where the user has not set them. MLflow reads
# the backoff factor as an int (0.5 would fail every request); with urllib3 2 the first retry
# does not wait and the second waits factor * 2 s, so 1 keeps the total pause at ~2 s.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    # An unattended governance job sends no usage telemetry of MLflow's unless asked to.
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def apply_client_defaults(environ: MutableMapping[str, str]) -> None:
    """Set each of `HTTP_DEFAULTS` in `environ` (normally `os.environ`) where it is unset."""
    for key, value in HTTP_DEFAULTS.items():
        environ.setdefault(key, value)
