"""Composition root: builds the real adapters from settings, on first use (never at import)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.settings import Settings, get_settings
from shared.tracking.gateway import TrackingGateway

if TYPE_CHECKING:
    from shared.notify.sinks import Channel


def utcnow() -> datetime:
    return datetime.now(UTC)


def build_gateway(settings: Settings) -> TrackingGateway:
    from shared.tracking.mlflow_gateway import MlflowGateway

    return MlflowGateway(settings.effective_tracking_uri())


@functools.lru_cache(maxsize=1)
def get_gateway() -> TrackingGateway:
    """The process-wide gateway for the Functions host (one client per worker)."""
    return build_gateway(get_settings())


def teams_channel(settings: Settings) -> Channel | None:
    """The Teams webhook, when one is set.

    A dry run posts too: its cards say DRY RUN and list what would have been done, which is
    how a team watches a policy before letting it act.
    """
    if settings.teams_webhook_url is None:
        return None
    from shared.notify.sinks import Channel
    from shared.notify.teams import TeamsNotifier, mask_url

    url = settings.teams_webhook_url
    return Channel(TeamsNotifier(url), f"teams {mask_url(url.get_secret_value())}", posts=True)


@functools.lru_cache(maxsize=1)
def get_channel() -> Channel:
    """Where the Functions host sends cards: Teams, or one log line per card without it."""
    from shared.notify.sinks import Channel, LogCardSink

    settings = get_settings()
    channel = teams_channel(settings)
    if channel is not None:
        return channel
    why = "GOVERNANCE_TEAMS_WEBHOOK_URL is not set"
    return Channel(LogCardSink(why), f"log ({why})")
