"""`mlgov check`: validate settings and print the effective policy (secrets masked).

Every line comes from the settings table (`shared.settings.SETTINGS`): a new setting shows up
here without an edit.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import SecretStr

from shared.cli.common import EXIT_OK, Command, settings_for
from shared.policies import RUN_POLICIES
from shared.settings import SETTINGS, Policy, Setting, Settings, display_uri
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


def describe(settings: Settings) -> dict[str, object]:
    """The effective settings as data; the webhook URL is masked."""
    described: dict[str, object] = {}
    for entry in SETTINGS:
        if not entry.per_experiment:
            described[entry.key] = _json_value(entry, _value_of(settings, entry))
        if entry.key == "tracking_uri":
            described[entry.key] = display_uri(settings.effective_tracking_uri())
            described["embedded_store"] = settings.is_embedded
    described["default_policy"] = {
        entry.key: _json_value(entry, _value_of(settings, entry))
        for entry in SETTINGS
        if entry.per_experiment
    }
    described["overrides"] = [
        {"experiments": list(o.experiments), **dict(o.values)} for o in settings.overrides
    ]
    described["warnings"] = [
        {"setting": w.setting, "problem": w.problem} for w in settings.warnings
    ]
    return described


def _line(name: str, value: str) -> str:
    return f"  {name:<{_WIDTH}} {value}"


def render(settings: Settings) -> str:
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
        lines.append(f"Override for experiments {', '.join(override.experiments)}:")
        for key, value in override.values.items():
            lines.append(_line(by_key[key].name, _text_value(by_key[key], value)))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    if args.json:
        print(json.dumps(describe(settings), indent=2, default=str))
    else:
        print(render(settings))
    return EXIT_OK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the settings as JSON")


COMMAND = Command(
    name="check",
    help="validate settings and print the effective policy",
    configure=configure,
    run=run,
)
