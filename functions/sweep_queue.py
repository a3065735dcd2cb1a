"""`sweep_workspace`: one workspace's sweep, for one message of the `mlgov-sweep` queue.

The queue trigger connects with the app's identity (`AzureWebJobsStorage__accountName`,
`__credential`, `__clientId`: identity-based host storage, learn.microsoft.com/azure/
azure-functions/functions-reference#connecting-to-host-storage-with-an-identity; the identity
holds Storage Queue Data Contributor). Raising fails the message: the runtime makes it visible
again and, after host.json's `extensions.queues.maxDequeueCount` attempts, moves it to
`mlgov-sweep-poison` (functions-bindings-storage-queue-trigger#poison-messages). A message
that names no workspace of the estate, or is not a sweep message, is logged and dropped.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)

SWEEP_QUEUE = "mlgov-sweep"
# The host storage connection: with an identity, AzureWebJobsStorage__* settings (infra).
CONNECTION = "AzureWebJobsStorage"


def requested_workspace(message: func.QueueMessage) -> str | None:
    """The workspace ARM id a sweep message names (`{"workspace": "<ARM id>"}`), else None."""
    try:
        body = json.loads(message.get_body().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    workspace = body.get("workspace") if isinstance(body, dict) else None
    return workspace if isinstance(workspace, str) and workspace.strip() else None


@bp.function_name("sweep_workspace")
@bp.queue_trigger(arg_name="message", queue_name=SWEEP_QUEUE, connection=CONNECTION)
def sweep_workspace(message: func.QueueMessage) -> None:
    from shared.bootstrap import host_estate

    workspace = requested_workspace(message)
    if workspace is None:
        log.error("sweep_workspace %s dropped: not a sweep message", message.id)
        return
    estate = host_estate()
    if estate is None:
        log.error("sweep_workspace %s dropped: the settings govern no workspace", message.id)
        return
    # A tracking server that is down raises here: the queue retries the message.
    outcome = estate.sweep_named(workspace, log=log)
    if outcome is None:  # outside the estate: sweep_named logged it
        return
    log.info(
        "sweep_workspace %s (attempt %s): %s",
        workspace.rsplit("/", 1)[-1],
        message.dequeue_count or 1,
        outcome.report.summary_line(),
    )
