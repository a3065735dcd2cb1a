"""The estate's application from settings: each member's gateway, the scope's discovery through
azure-ai-ml, and `build_estate` (as `build_app`, one App per member)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from shared.app import utcnow
from shared.app.azure import AzureServices, process_azure
from shared.app.estate import EstateApp, GatewayFactory
from shared.bootstrap.app import azure_services, build_gateway, default_channel
from shared.budget import Budget
from shared.estate import Discover, Estate, Member
from shared.notify.sinks import Channel
from shared.settings import Settings, get_settings
from shared.settings.workspaces import Coordinates, Workspace
from shared.tracking.gateway import TrackingGateway

__all__ = [
    "NO_RUNS",
    "TrackingUris",
    "build_estate",
    "discovery",
    "gateway_factory",
    "governs_workspaces",
    "several_workspaces",
    "use_tracking_uris",
]

# A member's tracking URI from elsewhere than Azure (None: resolved as usual): a test's servers.
TrackingUris = Callable[[Workspace], str | None]
# The kinds `MLClient.workspaces.list` reports (`WorkspaceKind`, azure/ai/ml/constants/_common.py:
# default, hub, project, featurestore; lower-cased from the REST `kind` by
# `Workspace._from_rest_object`, azure/ai/ml/entities/_workspace/workspace.py). A hub is "a parent
# and resource container for lightweight child workspaces called projects"
# (azure/ai/ml/entities/_workspace/_ai_workspaces/hub.py): jobs, and so MLflow runs, live in its
# projects, which are listed and governed as workspaces; the hub itself holds none.
NO_RUNS = frozenset({"hub"})
_log = logging.getLogger(__name__)


class _Uris:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.resolve: TrackingUris | None = None


_URIS = _Uris()


@contextmanager
def use_tracking_uris(resolve: TrackingUris) -> Iterator[None]:
    """Every estate built meanwhile (a verb's, the host's) takes its members' tracking URIs
    from `resolve` where the settings give none, instead of asking Azure: what workspace
    resolution answers, for tests against their own servers."""
    with _URIS.lock:
        previous, _URIS.resolve = _URIS.resolve, resolve
    try:
        yield
    finally:
        with _URIS.lock:
            _URIS.resolve = previous


def gateway_factory(settings: Settings, *, azure: AzureServices | None = None) -> GatewayFactory:
    """Each member's MLflow gateway, as `build_gateway` makes the single workspace's: its
    tracking URI when the settings give it, else resolved from the workspace (once per
    process, through the app's one credential). No member's URI becomes the process-wide
    one: each gateway lends it to its own artifact calls only (`shared.tracking.process_uri`)."""
    with _URIS.lock:
        resolve = _URIS.resolve

    def build(member: Member) -> TrackingGateway:
        uri = member.tracking_uri
        if uri is None and resolve is not None and member.workspace is not None:
            uri = resolve(member.workspace)
        member_settings = settings.for_workspace(member.workspace, uri)
        return build_gateway(member_settings, azure=azure, process_default=False)

    return build


def discovery(settings: Settings, azure: AzureServices | None) -> Discover | None:
    """The scope's workspaces through azure-ai-ml (`MLClient.workspaces.list`), hubs left out
    (`NO_RUNS`, one log line each); None without a scope."""
    if settings.scope is None:
        return None
    services = azure or process_azure(settings)

    def discover(scope: str) -> Iterable[Coordinates]:
        from shared.azure.workspace import list_workspaces

        services.require_identity()
        transport = services.seam.transport  # a test's transport answering Azure's payloads
        kwargs = {} if transport is None else {"transport": transport}
        found = []
        for info in list_workspaces(services.credential, scope, **kwargs):
            if (info.kind or "").lower() in NO_RUNS:
                _log.info(
                    "workspace %s in %s is a %s: it holds no MLflow runs (its projects do), "
                    "so it is not governed",
                    info.ref.name,
                    scope,
                    info.kind,
                )
                continue
            found.append(info.ref)
        return found

    return discover


def governs_workspaces(settings: Settings) -> bool:
    """Whether the settings name workspaces (listed, discovered, or one by its id), not just
    a tracking server that answers every event."""
    return Estate.from_settings(settings).default is None


def several_workspaces(settings: Settings) -> bool:
    """Whether a verb goes through the EstateApp: more than one workspace, or a scope (whose
    members are known only once discovered). One workspace alone keeps the verbs' own App."""
    estate = Estate.from_settings(settings)
    return estate.default is None and (len(estate) > 1 or estate.scope is not None)


def build_estate(
    settings: Settings | None = None,
    *,
    gateway_factory_: GatewayFactory | None = None,
    channel: Channel | None = None,
    budget: Budget | None = None,
    discover: Discover | None = None,
) -> EstateApp:
    """The estate's application; what is not given is built as `build_app` builds it (the
    members' cards redacted on their way out, the process's Azure side)."""
    from shared.redact_logs import install, redacted_channel

    settings = settings if settings is not None else get_settings()
    budget = budget if budget is not None else Budget.from_environ(os.environ)
    install(settings)
    services = azure_services(settings)
    if services is None and governs_workspaces(settings):
        # Members without a URI are resolved through Azure even when the single one is not.
        services = process_azure(settings)
    return EstateApp(
        settings,
        gateway_factory_ or gateway_factory(settings, azure=services),
        redacted_channel(channel if channel is not None else default_channel(settings, budget)),
        utcnow,
        discover=discover if discover is not None else discovery(settings, services),
        budget=budget,
        azure=services,
    )
