"""What one tracking server refuses, in one object: the adapters consult it, nobody else.

A field is True while the server is believed to support the feature. The MLflow adapter
starts from what it is given (all True by default) and turns off the filters a server
refuses once; the in-memory gateway refuses what its fields say, as Azure ML may.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Capabilities:
    """Per server, so several gateways in one process each learn their own server.

    Learned by the MLflow adapter (a refused filter is retried without it, then never sent
    again to that server), the most doubtful first (`filters.give_up`): `status_filters` and
    `time_filters` (given up together: a refusal does not say which clause it was),
    `run_id_filter` (`attributes.run_id IN (...)`; else one `get_run` per id),
    `tag_null_filter` (`IS NOT NULL`; else `LIKE '%'`), `tag_filters` (only when a query
    without the others is refused too: without them every child-run lookup walks the
    experiment), `multi_experiment_search` (several experiment ids in one `search_runs`;
    else one search per experiment), `version_run_list_filter` (`run_id IN (...)` on model
    versions; else one search per run) and `logged_model_run_filter`. The others are tried
    on every call unless set False up front, then the fallback is used directly: `aliases`
    (a `governance.alias` version tag), `version_run_filter` (walk every version),
    `logged_models` (run artifacts only), `restore` (CapabilityUnsupported).
    """

    status_filters: bool = True
    time_filters: bool = True
    tag_filters: bool = True
    run_id_filter: bool = True
    tag_null_filter: bool = True
    multi_experiment_search: bool = True
    version_run_list_filter: bool = True
    logged_model_run_filter: bool = True
    logged_models: bool = True
    version_run_filter: bool = True
    aliases: bool = True
    restore: bool = True

    @classmethod
    def azure_ml_like(cls) -> Capabilities:
        """Everything Azure ML's MLflow endpoint may refuse, refused (for tests and demos)."""
        return cls(
            status_filters=False,
            time_filters=False,
            run_id_filter=False,
            version_run_list_filter=False,
            logged_model_run_filter=False,
            logged_models=False,
            version_run_filter=False,
            aliases=False,
            restore=False,
        )

    def refuse_attribute_filters(self) -> None:
        self.status_filters = False
        self.time_filters = False
