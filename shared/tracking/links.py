"""Links to a run in the tracking server's own UI (Azure ML studio or the MLflow UI)."""

from __future__ import annotations

import re

from shared.model import Run
from shared.redact import redact_uri

_AZUREML_URI = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/?]+)",
    re.IGNORECASE,
)


def run_url(tracking_uri: str, run: Run) -> str | None:
    """Azure ML studio for azureml:// URIs, the MLflow UI for http(s) servers, else None."""
    match = _AZUREML_URI.search(tracking_uri)
    if tracking_uri.startswith("azureml://") and match:
        wsid = (
            f"/subscriptions/{match['sub']}/resourcegroups/{match['rg']}/workspaces/{match['ws']}"
        )
        return f"https://ml.azure.com/runs/{run.run_id}?wsid={wsid}"
    if tracking_uri.startswith(("http://", "https://")):
        # Links go into cards and reports: never the credentials a URI may carry.
        base = redact_uri(tracking_uri).rstrip("/")
        return f"{base}/#/experiments/{run.experiment_id}/runs/{run.run_id}"
    return None
