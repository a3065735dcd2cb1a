"""Settings: every Function App setting (environment variable), declared once, validated up front.

Each setting is declared as a field of `Settings` or, when a policy file may override it per
experiment, of `Policy` (`shared.settings.declare.setting`). The loader, `POLICY_KEYS`,
`mlgov check` and the README's settings table are all built from those declarations.
`get_settings()` reads the environment once, on first use; nothing is read at import time.
"""

from __future__ import annotations

from shared.settings.declare import ENV_PREFIX, Setting, env_name
from shared.settings.endpoints import DEFAULT_EMBEDDED_DB, TRACKING_SCHEMES, display_uri
from shared.settings.load import get_settings, load_settings
from shared.settings.model import SETTINGS, Settings, SettingWarning
from shared.settings.parse import MAX_HOURS, TEMPLATE_FIELDS, expand_template, parse_hours
from shared.settings.policy import POLICY_KEYS, Policy, PolicyOverride, build_policy
from shared.settings.workspaces import Scope, Workspace

__all__ = [
    "DEFAULT_EMBEDDED_DB",
    "ENV_PREFIX",
    "MAX_HOURS",
    "POLICY_KEYS",
    "SETTINGS",
    "TEMPLATE_FIELDS",
    "TRACKING_SCHEMES",
    "Policy",
    "PolicyOverride",
    "Scope",
    "Setting",
    "SettingWarning",
    "Settings",
    "Workspace",
    "build_policy",
    "display_uri",
    "env_name",
    "expand_template",
    "get_settings",
    "load_settings",
    "parse_hours",
]
