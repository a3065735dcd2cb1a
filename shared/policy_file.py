"""The optional YAML policy file: per-experiment and per-workspace overrides of any policy setting.

    overrides:
      - experiments: "churn-*"          # a glob or a list of globs
        promotion_metric: auc_roc
        promotion_threshold: 0.85
      - experiments: ["scratch-*", "sandbox"]
        required_tags: []
        cleanup_after_hours: 12
      - workspaces: "mlw-prod-*"        # workspace names (or ARM ids, with a `/`), any case
        cleanup_after_hours: 168        # no `experiments`: every experiment of those workspaces

Every override whose globs match an experiment (and its workspace, where the entry names
workspaces) applies, in file order (later wins). Keys are the setting names without
`GOVERNANCE_`, in lower case; unknown keys are an error. The file is read with bounds (size,
nesting, YAML aliases), so a hostile one is refused quickly.
"""

from __future__ import annotations

from pathlib import Path

from shared.bounded import MAX_YAML_BYTES, BoundedInputError, loads_yaml, read_text
from shared.errors import SettingsError
from shared.settings.policy import POLICY_KEYS, Policy, PolicyOverride, build_policy

SETTING = "GOVERNANCE_POLICY_FILE"
# The keys of an entry that say where it applies; every other key is a policy key.
_WHERE = ("experiments", "workspaces")


def _document(path: Path) -> object:
    try:
        return loads_yaml(read_text(path, max_bytes=MAX_YAML_BYTES))
    except BoundedInputError as exc:
        message = str(exc)
        # `read_text` names the path itself; the YAML decoder does not.
        raise SettingsError(
            SETTING, message if str(path) in message else f"{path}: {message}"
        ) from None


def _globs(value: object, where: str, key: str) -> tuple[str, ...]:
    globs = [value] if isinstance(value, str) else value
    if (
        not isinstance(globs, list)
        or not globs
        or not all(isinstance(g, str) and g.strip() for g in globs)
    ):
        raise SettingsError(where + key, "a glob or a non-empty list of globs")
    return tuple(g.strip() for g in globs)


def _coverage(entry: dict[object, object], where: str) -> dict[str, tuple[str, ...]]:
    """The entry's `experiments` and `workspaces` globs; at least one of the two is given (an
    entry with neither would silently apply everywhere)."""
    if "experiments" not in entry and "workspaces" not in entry:
        raise SettingsError(
            where + "experiments",
            "a glob or a non-empty list of globs (or `workspaces:`, for every experiment of "
            "those workspaces)",
        )
    return {key: _globs(entry[key], where, key) for key in _WHERE if key in entry}


def load_policy_file(path: Path, default: Policy) -> tuple[PolicyOverride, ...]:
    document = _document(path)
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
        coverage = _coverage(entry, where)
        values = {str(key): value for key, value in entry.items() if key not in _WHERE}
        unknown = sorted(set(values) - set(POLICY_KEYS))
        if unknown:
            raise SettingsError(
                where + unknown[0], f"unknown policy key (allowed: {', '.join(POLICY_KEYS)})"
            )
        # Validate the combination with the default now, so a bad file fails before anything
        # runs; the parsed values are kept, so resolving a policy later needs no validation.
        checked = build_policy({**default.model_dump(), **values}, where)
        overrides.append(
            PolicyOverride(
                experiments=coverage.get("experiments", ("*",)),
                workspaces=coverage.get("workspaces"),
                values={key: getattr(checked, key) for key in values},
            )
        )
    return tuple(overrides)
