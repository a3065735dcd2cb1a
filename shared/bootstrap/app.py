"""The App from settings: real adapters unless given others (the tracking gateway, the Teams
channel, the process's Azure side)."""

from __future__ import annotations

from shared.app import App, Clock, utcnow
from shared.app.azure import (
    AzureSeam,
    AzureServices,
    process_azure,
    tracking_needs_azure,
    workspace_mode,
)
from shared.budget import Budget
from shared.notify.sinks import Channel, LogCardSink
from shared.settings import Settings, get_settings
from shared.tracking.gateway import TrackingGateway

__all__ = [
    "azure_services",
    "build_app",
    "build_gateway",
    "default_channel",
    "teams_channel",
]


def azure_services(settings: Settings, seam: AzureSeam | None = None) -> AzureServices | None:
    """The Azure side the settings call for (None: no Azure call to make): the process's
    one credential, or one built on `seam` (a test's credential and transport)."""
    if seam is not None:
        return AzureServices(settings.azure_client_id, seam)
    if tracking_needs_azure(settings) or settings.events_topic_endpoint:
        return process_azure(settings)
    return None


def build_gateway(
    settings: Settings, *, azure: AzureServices | None = None, process_default: bool = True
) -> TrackingGateway:
    """The MLflow gateway. For Azure ML (an `azureml://` URI, or a workspace's coordinates
    with no `MLFLOW_TRACKING_URI`) the app's credential must give a token first, within
    seconds (`CredentialUnavailable`, a configuration error, names what to set); MLflow's
    `azureml://` client then uses that credential, never a chain of its own.

    `process_default`: a workspace resolved from its coordinates also becomes MLflow's
    process-wide tracking URI, as with one workspace always. An estate member's gateway
    passes False: its artifact calls lend the process-wide URI only while they run
    (`shared.tracking.process_uri`), so no member's URI outlives its own call.
    """
    import os

    from shared.tracking.client_defaults import apply_client_defaults
    from shared.tracking.mlflow_gateway import MlflowGateway

    # MLflow's REST client reads these from the process environment on every request.
    apply_client_defaults(os.environ)
    if not tracking_needs_azure(settings):
        return MlflowGateway(settings.effective_tracking_uri())
    services = azure or process_azure(settings)
    services.require_identity()
    uri = services.tracking_uri(settings)
    if process_default and workspace_mode(settings):
        import mlflow

        # The default client (`MlflowClient()`) is the workspace's, as before the estate
        # (docs/azure.md); MLflow also exports it as MLFLOW_TRACKING_URI.
        mlflow.set_tracking_uri(uri)
    return MlflowGateway(uri)


def teams_channel(settings: Settings, budget: Budget | None = None) -> Channel | None:
    """The Teams webhook, when one is set.

    A dry run posts too: its cards say DRY RUN and list what would have been done, which is
    how a team watches a policy before letting it act. Delivery is bounded: `budget.notify_s`
    for all attempts, and each request by its deadline (`shared.http_deadline`).
    """
    if settings.teams_webhook_url is None:
        return None
    from shared.budget import default_budget
    from shared.http_deadline import bounded_session
    from shared.notify.teams import TeamsNotifier, mask_url

    url = settings.teams_webhook_url
    notify_s = (budget or default_budget()).notify_s
    notifier = TeamsNotifier(url, session=bounded_session(), total_timeout_s=notify_s)
    return Channel(notifier, f"teams {mask_url(url.get_secret_value())}", posts=True)


def default_channel(settings: Settings, budget: Budget | None = None) -> Channel:
    """Teams, or one log line per card without a webhook (the Functions host's fallback)."""
    channel = teams_channel(settings, budget)
    if channel is not None:
        return channel
    why = "GOVERNANCE_TEAMS_WEBHOOK_URL is not set"
    return Channel(LogCardSink(why), f"log ({why})")


def build_app(
    settings: Settings | None = None,
    *,
    gateway: TrackingGateway | None = None,
    channel: Channel | None = None,
    clock: Clock | None = None,
    budget: Budget | None = None,
    azure: AzureSeam | None = None,
) -> App:
    """The application; what is not given is built from `settings` (default: the process
    environment's, `get_settings()`) and the wait figures from `MLGOV_*_SECONDS`.

    Building it registers the settings' secrets with the one redaction and redacts the logs
    from then on; its cards are redacted on their way out (`shared.redact_logs`).
    Azure calls go through the process's one credential, or through `azure`'s (a test's
    credential and transport).
    """
    import os

    from shared.redact_logs import install, redacted_channel

    settings = settings if settings is not None else get_settings()
    budget = budget if budget is not None else Budget.from_environ(os.environ)
    install(settings)
    services = azure_services(settings, azure)
    return App(
        settings=settings,
        gateway=gateway if gateway is not None else build_gateway(settings, azure=services),
        channel=redacted_channel(
            channel if channel is not None else default_channel(settings, budget)
        ),
        clock=clock or utcnow,
        budget=budget,
        azure=services,
    )
