"""MLflow's request headers without probing for Databricks again on every request.

MLflow 3.15 asks every registered request-header provider, on every REST call, whether it is
in context (`resolve_request_headers` in mlflow/tracking/request_header/registry.py, called by
`http_request` in mlflow/utils/rest_utils.py). Its Databricks provider answers by trying to
import `dbruntime`, `IPython` and `pyspark` (`is_in_cluster`, `is_in_databricks_notebook`,
`is_in_databricks_job` in mlflow/utils/databricks_utils.py); Python does not remember an
import that failed, so outside Databricks each request searches `sys.path` several times
again. Profiled against a loopback server (`bench/RESULTS.md`, "the client's own work"), that
was about 40 % of the client's CPU per request: ~1.4 ms of ~3.5 ms for a `log-batch`.

Whether a process runs on Databricks does not change while it runs, so the answer is taken
once: outside Databricks the provider is replaced, in MLflow's registry, by one that says it
is not in context; on Databricks nothing is changed. The other providers (MLflow's default
one, any a plugin registered) are asked as before.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

_LOCK = threading.Lock()


class _NotDatabricks:
    """Stands for MLflow's Databricks provider in a process that is not on Databricks."""

    def in_context(self) -> bool:
        return False

    def request_headers(self) -> dict[str, str]:
        return {}


def settle_databricks_headers() -> bool:
    """Ask MLflow's Databricks header provider once whether it is in context; if not, stop it
    being asked on every request. Idempotent; True when the provider was replaced (now or by
    an earlier call), False on Databricks or when MLflow's names have moved (then nothing is
    changed: tests/unit/test_request_headers.py pins them)."""
    try:
        from mlflow.tracking.request_header import registry
        from mlflow.tracking.request_header.databricks_request_header_provider import (
            DatabricksRequestHeaderProvider,
        )
    except ImportError:
        return False
    providers: Any = getattr(registry._request_header_provider_registry, "_registry", None)
    if not isinstance(providers, list):
        return False
    with _LOCK:
        for index, provider in enumerate(providers):
            if isinstance(provider, _NotDatabricks):
                return True
            if type(provider) is not DatabricksRequestHeaderProvider:
                continue
            try:
                on_databricks = bool(provider.in_context())  # type: ignore[no-untyped-call]
            except Exception:  # MLflow logs and skips a provider that raises: so do we
                log.debug("Databricks header provider raised", exc_info=True)
                return False
            if on_databricks:
                return False
            providers[index] = _NotDatabricks()
            return True
    return False
