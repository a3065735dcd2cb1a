"""The estate beside the composition root: the default gateway of each member, discovery through
azure-ai-ml, `build_estate` (as `build_app`, one App per member) and the Functions host's one
EstateApp per worker, used when the settings govern workspaces rather than one server.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from shared.app.azure import AzureServices, process_azure
from shared.app.estate import EstateApp, GatewayFactory
from shared.bootstrap import azure_services, build_gateway, default_channel, utcnow
from shared.budget import Budget
from shared.estate import Discover, Estate, Member
from shared.notify.sinks import Channel
from shared.settings import Settings, get_settings
from shared.settings.workspaces import Coordinates
from shared.tracking.gateway import TrackingGateway

__all__ = [
    "build_estate",
    "discovery",
    "gateway_factory",
    "governs_workspaces",
    "host_estate",
    "use_estate",
]


def gateway_factory(settings: Settings, *, azure: AzureServices | None = None) -> GatewayFactory:
    """Each member's MLflow gateway, as `build_gateway` makes the single workspace's: its
    tracking URI when the settings give it, else resolved from the workspace (once per
    process, through the app's one credential)."""

    def build(member: Member) -> TrackingGateway:
        member_settings = settings.for_workspace(member.workspace, member.tracking_uri)
        return build_gateway(member_settings, azure=azure)

    return build


def discovery(settings: Settings, azure: AzureServices | None) -> Discover | None:
    """The scope's workspaces through azure-ai-ml (`MLClient.workspaces.list`), or None
    without a scope."""
    if settings.scope is None:
        return None
    services = azure or process_azure(settings)

    def discover(scope: str) -> Iterable[Coordinates]:
        from shared.azure.workspace import list_workspaces

        services.require_identity()
        transport = services.seam.transport  # a test's transport answering Azure's payloads
        kwargs = {} if transport is None else {"transport": transport}
        return [info.ref for info in list_workspaces(services.credential, scope, **kwargs)]

    return discover


def governs_workspaces(settings: Settings) -> bool:
    """Whether the settings name workspaces (listed, discovered, or one by its id), not just
    a tracking server that answers every event."""
    return Estate.from_settings(settings).default is None


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


def _around_host(estate: EstateApp) -> EstateApp:
    """One workspace alone is governed by the host's App, as before the estate (its gateway,
    its channel), narrowed to the workspace's policy."""
    from dataclasses import replace

    from shared.bootstrap import host_app

    members = estate.estate
    if len(members) == 1 and members.scope is None:
        (member,) = members
        app = host_app()
        narrowed = app.settings.for_workspace(member.workspace, app.settings.tracking_uri)
        estate.apps[member.key] = replace(app, settings=narrowed)
    return estate


class _EstateHost:
    """The worker's EstateApp, rebuilt when the host's settings are (`reset_host_app`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: EstateApp | None = None
        self._given: EstateApp | None = None

    def get(self) -> EstateApp | None:
        with self._lock:
            if self._given is not None:
                return self._given
        settings = get_settings()
        if not governs_workspaces(settings):
            return None
        with self._lock:
            if self._built is None or self._built.settings is not settings:
                self._built = _around_host(build_estate(settings))
            return self._built

    def swap(self, estate: EstateApp | None) -> EstateApp | None:
        with self._lock:
            previous, self._given = self._given, estate
            return previous


_HOST = _EstateHost()


def host_estate() -> EstateApp | None:
    """The EstateApp the triggers use when the settings govern workspaces; None when they
    name one tracking server only (then `host_app()` serves, as always)."""
    return _HOST.get()


@contextmanager
def use_estate(estate: EstateApp) -> Iterator[EstateApp]:
    """Run the Functions triggers over `estate` (tests inject a gateway per member)."""
    previous = _HOST.swap(estate)
    try:
        yield estate
    finally:
        _HOST.swap(previous)
