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
from shared.settings.workspaces import Workspace, in_tracking_uri, workspace_id

_COORDINATES = (
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_ML_WORKSPACE_RESOURCE_GROUP",
    "AZURE_ML_WORKSPACE_NAME",
)
_WORKSPACE_ID = "AZURE_ML_WORKSPACE_ID"
_TRACKING_URI = "MLFLOW_TRACKING_URI"
_ESTATE = ("GOVERNANCE_WORKSPACES", "GOVERNANCE_WORKSPACE_SCOPE")


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


def _single_workspace(values: dict[str, Any]) -> Workspace | None:
    """The one workspace the ARM id or the coordinates name (checked by `_check_workspace`)."""
    if values[key_of(_WORKSPACE_ID)] is not None:
        return workspace_id(values[key_of(_WORKSPACE_ID)])
    parts = [values[key_of(name)] for name in _COORDINATES]
    return Workspace(*parts) if all(parts) else None


def _check_estate(values: dict[str, Any]) -> None:
    """`MLFLOW_TRACKING_URI` is one workspace's server: the workspace it points at must be the
    one the coordinates name, and next to an estate of many it must say which one it is."""
    uri = values[key_of(_TRACKING_URI)]
    single = _single_workspace(values)
    pointed = in_tracking_uri(uri)
    if single is not None and pointed is not None and single != pointed:
        raise SettingsError(
            _TRACKING_URI,
            f"points at workspace {pointed.arm_id}, but the workspace settings name "
            f"{single.arm_id}: give the tracking URI of that workspace, or leave it unset",
        )
    estate = [name for name in _ESTATE if values[key_of(name)]]
    if uri is not None and single is None and pointed is None and estate:
        raise SettingsError(
            _TRACKING_URI,
            f"names one tracking server, and {' and '.join(estate)} name many workspaces: "
            f"say which workspace it serves with {_WORKSPACE_ID} (or "
            f"{', '.join(_COORDINATES)}), or unset it to resolve each workspace's own URI",
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
    _check_estate(values)

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
