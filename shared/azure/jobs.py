"""Restore a run on Azure ML through azure-ai-ml, where the MLflow endpoint cannot.

On Azure ML an MLflow run is a job, and a job is archived (hidden from the studio's lists),
not deleted: `MLClient.jobs.restore(name)` un-archives it. azure-ai-ml 1.35 does that by
reading the job (ARM `Jobs - Get`) and then clearing RunHistory's `hidden` flag, falling back
to writing the job back with `properties.isArchived = false` (`_archive_or_restore` in
azure/ai/ml/operations/_job_operations.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.azure.errors import reraise
from shared.azure.workspace import WorkspaceRef, ml_client
from shared.errors import RunNotFound, TrackingError

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.core.credentials import TokenCredential


def restore_job(
    target: MLClient | WorkspaceRef,
    run_id: str,
    *,
    credential: TokenCredential | None = None,
    **client_kwargs: Any,
) -> None:
    """Un-archive the job `run_id` (the MLflow run id is the job name on Azure ML).

    `target` is an `MLClient` for the workspace, or its `WorkspaceRef` with `credential`.
    Raises `RunNotFound` when the workspace has no such job, `TrackingError` when Azure ML
    refuses it (a pipeline's child job cannot be restored on its own), and the errors of
    `shared.azure.errors` for access and availability.
    """
    from azure.ai.ml.exceptions import MlException
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    if isinstance(target, WorkspaceRef):
        if credential is None:
            raise TypeError("restore_job needs a credential with a WorkspaceRef")
        client = ml_client(
            credential, target.subscription_id, target.resource_group, target.name, **client_kwargs
        )
        where = target.arm_id
    else:
        client = target
        where = f"workspace {getattr(client, 'workspace_name', None) or '?'}"
    try:
        client.jobs.restore(run_id)
    except ResourceNotFoundError as exc:
        raise RunNotFound(run_id, f"no Azure ML job of that name in {where}") from exc
    except MlException as exc:
        # The SDK's own refusals (e.g. PipelineChildJobError) carry a message without
        # personal data; that is the one worth showing.
        message = getattr(exc, "no_personal_data_message", None) or str(exc)
        raise TrackingError(f"restore of {run_id} refused by Azure ML: {message}") from exc
    except AzureError as exc:
        reraise(exc, f"restore of job {run_id} in {where}")
