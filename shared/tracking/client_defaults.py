"""MLflow client settings mlgov relies on when the user has not chosen them (set at startup).

The composition root applies them once to the process environment, which MLflow's REST client
reads on every request; no gateway constructor writes the environment. The figures are
`shared.budget`'s; the bounds MLflow has no setting for are `shared.http_deadline`'s.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from shared import budget

# The REST client retries 7 times with exponential backoff by default: minutes, far beyond
# Event Grid's 30 s. These defaults apply only where the user has not set them.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(budget.HTTP_MAX_RETRIES),
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(budget.HTTP_BACKOFF_FACTOR),
    "MLFLOW_HTTP_REQUEST_TIMEOUT": str(budget.READ_TIMEOUT_S),
    # An unattended governance job sends no usage telemetry of MLflow's unless asked to.
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def apply_client_defaults(environ: MutableMapping[str, str]) -> None:
    """Set each of `HTTP_DEFAULTS` in `environ` (normally `os.environ`) where it is unset."""
    for key, value in HTTP_DEFAULTS.items():
        environ.setdefault(key, value)
