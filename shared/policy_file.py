"""The optional YAML policy file: per-experiment overrides of any policy setting.

    overrides:
      - experiments: "churn-*"          # a glob or a list of globs
        promotion_metric: auc_roc
        promotion_threshold: 0.85
      - experiments: ["scratch-*", "sandbox"]
        required_tags: []
        cleanup_after_hours: 12

Every override whose globs match an experiment applies, in file order (later wins).
Keys are the setting names without `GOVERNANCE_`, in lower case; unknown keys are an error.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from shared.errors import SettingsError
from shared.settings import POLICY_KEYS, Policy, PolicyOverride, build_policy

SETTING = "GOVERNANCE_POLICY_FILE"


def load_policy_file(path: Path, default: Policy) -> tuple[PolicyOverride, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(SETTING, f"cannot read {path}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError(SETTING, f"{path} is not valid YAML: {exc}") from None
    if document is None:
        return ()
    if not isinstance(document, dict) or set(document) - {"overrides"}:
        raise SettingsError(SETTING, f"{path}: the top level must be a mapping with 'overrides'")
    entries = document.get("overrides") or []
    if not isinstance(entries, list):
        raise SettingsError(SETTING, f"{path}: 'overrides' must be a list")

    overrides: list[PolicyOverride] = []
    for index, entry in enumerate(entries):
        where = f"{SETTING} {path} overrides[{index}]: "
        if not isinstance(entry, dict):
            raise SettingsError(where.rstrip(": "), "each override must be a mapping")
        globs = entry.get("experiments")
        if isinstance(globs, str):
            globs = [globs]
        if not isinstance(globs, list) or not globs or not all(isinstance(g, str) for g in globs):
            raise SettingsError(where + "experiments", "a glob or a non-empty list of globs")
        values = {key: value for key, value in entry.items() if key != "experiments"}
        unknown = sorted(set(values) - set(POLICY_KEYS))
        if unknown:
            raise SettingsError(
                where + unknown[0], f"unknown policy key (allowed: {', '.join(POLICY_KEYS)})"
            )
        merged = default.model_dump()
        merged.update(values)
        # Validate the combination now, so a bad file fails before anything runs.
        checked = build_policy(merged, where)
        overrides.append(
            PolicyOverride(
                experiments=tuple(globs),
                values={key: getattr(checked, key) for key in values},
            )
        )
    return tuple(overrides)
