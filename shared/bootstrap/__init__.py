"""Composition root: every trigger and verb is wired here, and only here.

`app` builds the App from settings (real adapters unless given others); `estate` builds the
EstateApp of several workspaces (a gateway per member, the scope's discovery); `host` keeps the
Functions host's one App and one EstateApp per worker process, built on first use.
"""

from __future__ import annotations

from shared.app import App, utcnow
from shared.app.azure import AzureSeam, use_azure
from shared.bootstrap.app import (
    azure_services,
    build_app,
    build_gateway,
    default_channel,
    teams_channel,
)
from shared.bootstrap.estate import (
    NO_RUNS,
    TrackingUris,
    build_estate,
    discovery,
    gateway_factory,
    governs_workspaces,
    several_workspaces,
    use_tracking_uris,
)
from shared.bootstrap.host import host_app, host_estate, reset_host_app, use_app, use_estate

__all__ = [
    "NO_RUNS",
    "App",
    "AzureSeam",
    "TrackingUris",
    "azure_services",
    "build_app",
    "build_estate",
    "build_gateway",
    "default_channel",
    "discovery",
    "gateway_factory",
    "governs_workspaces",
    "host_app",
    "host_estate",
    "reset_host_app",
    "several_workspaces",
    "teams_channel",
    "use_app",
    "use_azure",
    "use_estate",
    "use_tracking_uris",
    "utcnow",
]
