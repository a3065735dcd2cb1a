"""The application's operations and what they return; `shared.bootstrap` builds the App."""

from __future__ import annotations

from shared.app.application import App, Clock, EventPayload, utcnow
from shared.app.outcomes import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    EventsOutcome,
    Outcome,
    RestoreOutcome,
    SummaryOutcome,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_OK",
    "App",
    "Clock",
    "EventPayload",
    "EventsOutcome",
    "Outcome",
    "RestoreOutcome",
    "SummaryOutcome",
    "utcnow",
]
