"""The App a verb works through: settings from the environment, the embedded-store check,
and the channel the verb's flags choose (`--card-out`, the webhook, or the output)."""

from __future__ import annotations

import argparse

from shared.app.azure import workspace_mode
from shared.bootstrap import App, build_app, build_gateway
from shared.cli.cards import channel_for
from shared.cli.common import gateway_for, settings_for
from shared.settings import Settings


def app_for(
    args: argparse.Namespace, settings: Settings | None = None, *, hold: str | None = None
) -> App:
    """`settings` default to the environment's with `--dry-run` applied; `hold` says why the
    card must not be posted even with a webhook set."""
    settings = settings if settings is not None else settings_for(args)
    # A workspace named by its coordinates is no embedded store: its URI is asked of Azure.
    gateway = build_gateway(settings) if workspace_mode(settings) else gateway_for(settings)
    return build_app(settings, gateway=gateway, channel=channel_for(args, settings, hold=hold))
