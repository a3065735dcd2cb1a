"""Handlers for the actions other modules define; importing this package registers them.

The executor imports it once, so every action type has its handler before anything runs.
"""

from __future__ import annotations

# One import per handler module (each registers itself with `@handler`).
from shared.engine.handlers import (  # noqa: F401
    cleanup,
    promotion,
)
