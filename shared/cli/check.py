"""`mlgov check`: validate settings and print the effective policy (secrets masked)."""

from __future__ import annotations

import argparse
import json

from shared.cli.common import EXIT_OK, Command, settings_for
from shared.policies import RUN_POLICIES
from shared.settings import POLICY_KEYS, Policy, Settings, display_uri, env_name


def _policy_lines(policy: Policy) -> list[str]:
    lines = []
    for key in POLICY_KEYS:
        value = getattr(policy, key)
        if isinstance(value, frozenset):
            value = ",".join(sorted(value)) or "(off)"
        elif isinstance(value, tuple):
            value = ",".join(value) or "(none)"
        elif isinstance(value, dict):
            value = json.dumps(value)
        elif value is None:
            value = "(off)" if key == "promotion_metric" else "(unset)"
        lines.append(f"  {env_name(key):<36} {value}")
    enabled = [p.name for p in RUN_POLICIES if p.enabled(policy)]
    lines.append(f"  {'run policies enabled':<36} {', '.join(enabled) or '(none)'}")
    return lines


def describe(settings: Settings) -> dict[str, object]:
    """The effective settings as data; the webhook URL is masked."""
    return {
        "tracking_uri": display_uri(settings.effective_tracking_uri()),
        "embedded_store": settings.is_embedded,
        "dry_run": settings.dry_run,
        "experiments": list(settings.experiments),
        "cleanup_max_runs": settings.cleanup_max_runs,
        "teams_webhook_url": "(set, masked)" if settings.teams_webhook_url else "(not set)",
        "summary_window_hours": settings.summary_window_hours,
        "catchup_hours": settings.catchup_hours,
        "sweep_schedule": settings.sweep_schedule,
        "summary_schedule": settings.summary_schedule,
        "policy_file": str(settings.policy_file) if settings.policy_file else None,
        "default_policy": settings.default_policy.model_dump(mode="json"),
        "overrides": [
            {"experiments": list(o.experiments), **dict(o.values)} for o in settings.overrides
        ],
    }


def render(settings: Settings) -> str:
    uri = display_uri(settings.effective_tracking_uri())
    store = (
        f"{uri}  (embedded local store: MLFLOW_TRACKING_URI is not set)"
        if (settings.is_embedded)
        else uri
    )
    webhook = "(set, masked)" if settings.teams_webhook_url else "(not set: cards are printed)"
    lines = [
        "Settings are valid.",
        f"  {'MLFLOW_TRACKING_URI':<36} {store}",
        f"  {'GOVERNANCE_DRY_RUN':<36} {str(settings.dry_run).lower()}",
        f"  {'GOVERNANCE_EXPERIMENTS':<36} {','.join(settings.experiments)}",
        f"  {'GOVERNANCE_CLEANUP_MAX_RUNS':<36} {settings.cleanup_max_runs}",
        f"  {'GOVERNANCE_TEAMS_WEBHOOK_URL':<36} {webhook}",
        f"  {'GOVERNANCE_SUMMARY_WINDOW_HOURS':<36} {settings.summary_window_hours:g}",
        f"  {'GOVERNANCE_CATCHUP_HOURS':<36} {settings.catchup_hours:g}",
        f"  {'GOVERNANCE_SWEEP_SCHEDULE':<36} {settings.sweep_schedule}",
        f"  {'GOVERNANCE_SUMMARY_SCHEDULE':<36} {settings.summary_schedule}",
        f"  {'GOVERNANCE_POLICY_FILE':<36} {settings.policy_file or '(none)'}",
        "Default policy:",
        *_policy_lines(settings.default_policy),
    ]
    for override in settings.overrides:
        lines.append(f"Override for experiments {', '.join(override.experiments)}:")
        for key, value in override.values.items():
            lines.append(f"  {env_name(key):<36} {value}")
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
