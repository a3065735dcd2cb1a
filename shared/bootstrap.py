"""Composition root: builds the App from settings (real adapters unless given others), and
holds the Functions host's one App per worker process, built on first use (never at import).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from shared.app import App, Clock, utcnow
from shared.notify.sinks import Channel, LogCardSink
from shared.settings import Settings, get_settings
from shared.tracking.gateway import TrackingGateway

__all__ = [
    "App",
    "build_app",
    "build_gateway",
    "default_channel",
    "host_app",
    "reset_host_app",
    "teams_channel",
    "use_app",
    "utcnow",
]


def build_gateway(settings: Settings) -> TrackingGateway:
    import os

    from shared.tracking.client_defaults import apply_client_defaults
    from shared.tracking.mlflow_gateway import MlflowGateway

    # MLflow's REST client reads these from the process environment on every request.
    apply_client_defaults(os.environ)
    return MlflowGateway(settings.effective_tracking_uri())


def teams_channel(settings: Settings) -> Channel | None:
    """The Teams webhook, when one is set.

    A dry run posts too: its cards say DRY RUN and list what would have been done, which is
    how a team watches a policy before letting it act.
    """
    if settings.teams_webhook_url is None:
        return None
    from shared.notify.teams import TeamsNotifier, mask_url

    url = settings.teams_webhook_url
    return Channel(TeamsNotifier(url), f"teams {mask_url(url.get_secret_value())}", posts=True)


def default_channel(settings: Settings) -> Channel:
    """Teams, or one log line per card without a webhook (the Functions host's fallback)."""
    channel = teams_channel(settings)
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
) -> App:
    """The application; what is not given is built from `settings` (default: the process
    environment's, `get_settings()`)."""
    settings = settings if settings is not None else get_settings()
    return App(
        settings=settings,
        gateway=gateway if gateway is not None else build_gateway(settings),
        channel=channel if channel is not None else default_channel(settings),
        clock=clock or utcnow,
    )


class _Host:
    """The one App of a Functions worker process: one MLflow client, reused across invocations.

    The worker may run invocations on several threads; the lock keeps it to one App.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._app: App | None = None

    def get(self) -> App:
        with self._lock:
            if self._app is None:
                self._app = build_app()
            return self._app

    def swap(self, app: App | None) -> App | None:
        with self._lock:
            previous, self._app = self._app, app
            return previous


_HOST = _Host()


def host_app() -> App:
    """The App every Functions trigger calls (built from the environment on first use)."""
    return _HOST.get()


@contextmanager
def use_app(app: App) -> Iterator[App]:
    """Run the Functions triggers with `app` (tests inject a gateway, a channel, a clock)."""
    previous = _HOST.swap(app)
    try:
        yield app
    finally:
        _HOST.swap(previous)


def reset_host_app() -> None:
    """Forget the host's App and the settings it was built from: the next trigger rebuilds
    both from the environment as it is then."""
    _HOST.swap(None)
    get_settings.cache_clear()
