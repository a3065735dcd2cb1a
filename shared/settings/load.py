"""Reading the settings: one path for the CLI and the Functions host (both read the process
environment through `load_settings`), and the rules that span several settings.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

from shared.errors import SettingsError
from shared.settings.declare import key_of
from shared.settings.model import GLOBAL_SETTINGS, Settings, SettingWarning
from shared.settings.parse import Unusable
from shared.settings.policy import POLICY_SETTINGS, PolicyOverride, build_policy

_COORDINATES = (
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_ML_WORKSPACE_RESOURCE_GROUP",
    "AZURE_ML_WORKSPACE_NAME",
)
_WORKSPACE_ID = "AZURE_ML_WORKSPACE_ID"


def _check_workspace(values: dict[str, Any]) -> None:
    """The workspace is named by its three coordinates, all of them, or by its ARM id.

    `AZURE_SUBSCRIPTION_ID` alone names no workspace: azd and CI logins set it for their own
    use, so it counts only once a workspace's resource group or name is given too.
    """
    given = [name for name in _COORDINATES if values[key_of(name)] is not None]
    if given == [_COORDINATES[0]]:
        values[key_of(_COORDINATES[0])] = None
        return
    if given and values[key_of(_WORKSPACE_ID)] is not None:
        raise SettingsError(
            _WORKSPACE_ID,
            f"give either the workspace's ARM id or {', '.join(_COORDINATES)}, not both "
            f"({', '.join(given)} set too)",
        )
    missing = [name for name in _COORDINATES if name not in given]
    if given and missing:
        raise SettingsError(
            missing[0],
            f"required with {', '.join(given)}: the workspace needs all of "
            f"{', '.join(_COORDINATES)} (or {_WORKSPACE_ID} alone)",
        )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Validate settings from `environ` (default: the process environment).

    A given mapping is read alone: the process environment never leaks into it.
    """
    raw: Mapping[str, str] = os.environ if environ is None else environ

    values: dict[str, Any] = {}
    warnings: list[SettingWarning] = []
    for entry in GLOBAL_SETTINGS:
        try:
            values[entry.key] = entry.value(raw.get(entry.name))
        except Unusable as exc:
            # A best-effort setting (the webhook): reported, and governance goes on without it.
            values[entry.key] = None
            warnings.append(SettingWarning(entry.name, str(exc)))
    _check_workspace(values)

    default_policy = build_policy({entry.key: raw.get(entry.name) for entry in POLICY_SETTINGS})
    overrides: tuple[PolicyOverride, ...] = ()
    if values["policy_file"] is not None:
        from shared.policy_file import load_policy_file

        overrides = load_policy_file(values["policy_file"], default_policy)

    return Settings.model_validate(
        {
            **values,
            "default_policy": default_policy,
            "overrides": overrides,
            "warnings": tuple(warnings),
        }
    )


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read and validated on first use."""
    return load_settings()
