"""Composition root: builds the real adapters from settings, on first use (never at import)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from shared.settings import Settings, get_settings
from shared.tracking.gateway import TrackingGateway


def utcnow() -> datetime:
    return datetime.now(UTC)


def build_gateway(settings: Settings) -> TrackingGateway:
    from shared.tracking.mlflow_gateway import MlflowGateway

    return MlflowGateway(settings.effective_tracking_uri())


@functools.lru_cache(maxsize=1)
def get_gateway() -> TrackingGateway:
    """The process-wide gateway for the Functions host (one client per worker)."""
    return build_gateway(get_settings())
