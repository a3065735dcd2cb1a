"""`mlgov check`: validate settings, print the effective policy (secrets masked) and the estate
with each workspace's own policy where the policy file distinguishes them.

Every settings line comes from the settings table (`shared.settings.SETTINGS`): a new setting
shows up here without an edit. The scope is read only when a discovery is handed in.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import SecretStr

from shared.cli.common import EXIT_OK, Command, settings_for
from shared.estate import Discover, Estate, Member
from shared.policies import RUN_POLICIES
from shared.settings import SETTINGS, Policy, PolicyOverride, Setting, Settings, display_uri
from shared.settings.declare import AZURE

MASKED = "(set, masked)"
_WIDTH = 36


def _json_value(entry: Setting, value: object) -> object:
    """One value as `check --json` shows it."""
    if entry.secret:
        return MASKED if value else "(not set)"
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and "://" in value:
        return display_uri(value)
    return value


def _text_value(entry: Setting, value: object) -> str:
    """One value as the `check` table shows it."""
    if isinstance(value, SecretStr) or (entry.secret and value):
        return MASKED
    if value is None or (isinstance(value, tuple | frozenset | dict) and not value):
        return "{}" if isinstance(value, dict) else entry.unset
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, frozenset):
        return ",".join(sorted(value))
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, str) and "://" in value:
        return display_uri(value)
    return str(value)


def _value_of(settings: Settings, entry: Setting) -> object:
    source: Settings | Policy = settings.default_policy if entry.per_experiment else settings
    return getattr(source, entry.key)


def _override(override: PolicyOverride) -> dict[str, object]:
    where: dict[str, object] = {"experiments": list(override.experiments)}
    if override.workspaces is not None:
        where["workspaces"] = list(override.workspaces)
    return {**where, **dict(override.values)}


def _policy_json(policy: Policy) -> dict[str, object]:
    return {
        entry.key: _json_value(entry, getattr(policy, entry.key))
        for entry in SETTINGS
        if entry.per_experiment
    }


def _naming(settings: Settings, member: Member) -> list[int]:
    """Indexes of the policy-file entries that name workspaces and cover this member."""
    return [
        index
        for index, override in enumerate(settings.overrides)
        if override.workspaces is not None and override.covers(member.workspace)
    ]


def _unmatched(settings: Settings, estate: Estate) -> list[int]:
    """Entries naming workspaces that no member has: a typo, most likely. Unknowable while a
    scope is unread, so none are reported then."""
    if estate.scope is not None and not estate.discovered:
        return []
    return [
        index
        for index, override in enumerate(settings.overrides)
        if override.workspaces is not None
        and not any(override.covers(member.workspace) for member in estate)
    ]


def describe_estate(settings: Settings, estate: Estate) -> dict[str, object]:
    """The estate as `check --json` shows it: each member, where it came from and, where the
    policy file distinguishes workspaces, its policy and the entries naming it."""
    described = estate.describe()
    if settings.distinguishes_workspaces:
        members = described["members"]
        assert isinstance(members, list)
        for shown, member in zip(members, estate, strict=True):
            shown["policy"] = _policy_json(settings.workspace_policy(member.workspace))
            shown["overrides"] = _naming(settings, member)
        described["unmatched_overrides"] = _unmatched(settings, estate)
    return described


def describe(settings: Settings, estate: Estate | None = None) -> dict[str, object]:
    """The effective settings as data; the webhook URL is masked."""
    described: dict[str, object] = {}
    for entry in SETTINGS:
        if not entry.per_experiment:
            described[entry.key] = _json_value(entry, _value_of(settings, entry))
        if entry.key == "tracking_uri":
            described[entry.key] = display_uri(settings.effective_tracking_uri())
            described["embedded_store"] = settings.is_embedded
    described["default_policy"] = _policy_json(settings.default_policy)
    described["overrides"] = [_override(o) for o in settings.overrides]
    described["warnings"] = [
        {"setting": w.setting, "problem": w.problem} for w in settings.warnings
    ]
    described["estate"] = describe_estate(settings, estate or Estate.from_settings(settings))
    return described


def _line(name: str, value: str) -> str:
    return f"  {name:<{_WIDTH}} {value}"


def _policy_lines(settings: Settings, member: Member) -> list[str]:
    """A member's own policy: what differs from the default for all its experiments, then the
    entries naming it for some experiments only."""
    by_key = {entry.key: entry for entry in SETTINGS}
    policy = settings.workspace_policy(member.workspace)
    lines = [f"Policy for workspace {member.name}:"]
    for entry in SETTINGS:
        value = getattr(policy, entry.key) if entry.per_experiment else None
        if entry.per_experiment and value != getattr(settings.default_policy, entry.key):
            lines.append(_line(entry.name, _text_value(entry, value)))
    for index in _naming(settings, member):
        override = settings.overrides[index]
        if override.every_experiment:
            continue
        for key, value in override.values.items():
            only = ", ".join(override.experiments)
            shown = f"{_text_value(by_key[key], value)}  (experiments {only})"
            lines.append(_line(by_key[key].name, shown))
    if len(lines) == 1:
        lines.append("  (the default policy)")
    return lines


def render_estate(settings: Settings, estate: Estate) -> list[str]:
    """The estate's lines: each member and where it came from, the scope, each own policy."""
    count = len(estate)
    lines = [f"Estate ({count} workspace{'' if count == 1 else 's'}):"]
    if estate.default is not None:
        lines = ["Estate (one tracking server, no Azure ML workspace named):"]
    for member in estate:
        lines.append(_line(member.name, f"{member.id}  ({member.origin})"))
    if estate.scope is not None:
        read = "read now" if estate.discovered else "not read by check"
        lines.append(_line("scope", f"{estate.scope.arm_id}  (discovered at each sweep; {read})"))
    if settings.distinguishes_workspaces:
        for member in estate:
            if _naming(settings, member):
                lines += _policy_lines(settings, member)
        for index in _unmatched(settings, estate):
            globs = ", ".join(settings.overrides[index].workspaces or ())
            lines.append(f"Note: overrides[{index}] names workspaces {globs}: none in the estate")
    return lines


def render(settings: Settings, estate: Estate | None = None) -> str:
    lines = ["Settings are valid." if not settings.warnings else "Settings are usable."]
    lines += [f"Warning: {warning}" for warning in settings.warnings]
    sections: dict[str, list[str]] = {"global": [], "policy": [], AZURE: []}
    for entry in SETTINGS:
        shown = _text_value(entry, _value_of(settings, entry))
        if entry.key == "tracking_uri":
            shown = display_uri(settings.effective_tracking_uri())
            if settings.is_embedded:
                shown += "  (embedded local store: MLFLOW_TRACKING_URI is not set)"
        section = "policy" if entry.per_experiment else entry.group
        sections.get(section, sections["global"]).append(_line(entry.name, shown))
    enabled = [p.name for p in RUN_POLICIES if p.enabled(settings.default_policy)]
    lines += sections["global"]
    lines += ["Default policy:", *sections["policy"]]
    lines.append(_line("run policies enabled", ", ".join(enabled) or "(none)"))
    lines += ["Azure:", *sections[AZURE]]
    workspace = settings.workspace
    if workspace is not None:
        lines.append(_line("workspace", workspace.resource_id))
    by_key = {entry.key: entry for entry in SETTINGS}
    for override in settings.overrides:
        heading = f"Override for experiments {', '.join(override.experiments)}"
        if override.workspaces is not None:
            heading += f" in workspaces {', '.join(override.workspaces)}"
        lines.append(heading + ":")
        for key, value in override.values.items():
            lines.append(_line(by_key[key].name, _text_value(by_key[key], value)))
    lines += render_estate(settings, estate or Estate.from_settings(settings))
    return "\n".join(lines)


def run(args: argparse.Namespace, discover: Discover | None = None) -> int:
    """Print the settings and the estate; `discover` (azure-ai-ml's lister, from the
    composition root) reads the scope now, else the scope is shown unread (works offline)."""
    from shared.app.azure_check import azure_check

    settings = settings_for(args)
    estate = Estate.from_settings(settings, discover=discover)
    # The credential, its token for the workspace and the resolved URI (nothing if no Azure).
    azure = azure_check(settings)
    if args.json:
        print(json.dumps(describe(settings, estate) | azure.as_json(), indent=2, default=str))
    else:
        print(render(settings, estate) + azure.text())
    return azure.exit_code or EXIT_OK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the settings as JSON")


COMMAND = Command(
    name="check",
    help="validate settings and print the effective policy",
    configure=configure,
    run=run,
)
