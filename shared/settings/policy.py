"""The policy settings: those a policy file may override per experiment (and per workspace),
declared as the fields of `Policy`; `PolicyOverride`, one entry of that file. `POLICY_KEYS` and
`build_policy` come from these declarations.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from shared.errors import SettingsError
from shared.settings import parse as p
from shared.settings.declare import declarations, env_name, setting

if TYPE_CHECKING:
    from shared.settings.workspaces import Workspace


class Policy(BaseModel):
    """The policy settings in force for one experiment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cleanup_statuses: frozenset[str] = setting(
        "GOVERNANCE_CLEANUP_STATUSES",
        "FAILED",
        p.statuses,
        "run statuses to clean up (any case); empty turns cleanup off",
        blank_is_default=False,
        unset="(off)",
    )
    cleanup_after_hours: float = setting(
        "GOVERNANCE_CLEANUP_AFTER_HOURS",
        "72",
        p.bounded(0, p.MAX_HOURS),
        "grace period after the run ended",
    )
    protect_tag: str = setting(
        "GOVERNANCE_PROTECT_TAG",
        "governance.keep",
        p.text,
        "a run with this tag set to `true` is never deleted",
    )
    required_tags: tuple[str, ...] = setting(
        "GOVERNANCE_REQUIRED_TAGS",
        "",
        p.csv,
        "comma-separated tag keys every finished run must carry",
        shown_default="empty (off)",
        unset="(none)",
    )
    tag_defaults: dict[str, str] = setting(
        "GOVERNANCE_TAG_DEFAULTS",
        "{}",
        p.tag_defaults,
        "JSON: tag → value filled in when missing; `{user}`, `{experiment_name}`, `{run_name}` "
        "expand",
    )
    promotion_metric: str | None = setting(
        "GOVERNANCE_PROMOTION_METRIC",
        "",
        p.optional_text,
        "metric key, e.g. `auc_roc`",
        shown_default="empty (off)",
        unset="(off)",
    )
    promotion_threshold: float | None = setting(
        "GOVERNANCE_PROMOTION_THRESHOLD",
        "",
        p.optional_number,
        "required when the metric is set",
        shown_default="—",
        unset="(unset)",
    )
    promotion_goal: p.Goal = setting(
        "GOVERNANCE_PROMOTION_GOAL", "maximize", p.goal, "or `minimize` (losses)"
    )
    promotion_model_name: str = setting(
        "GOVERNANCE_PROMOTION_MODEL_NAME",
        "{experiment_name}",
        p.template,
        "registered model name template",
    )
    promotion_artifact_path: str = setting(
        "GOVERNANCE_PROMOTION_ARTIFACT_PATH",
        "model",
        p.text,
        "`runs:/<run_id>/<path>` is registered",
    )
    promotion_alias: str = setting(
        "GOVERNANCE_PROMOTION_ALIAS", "champion", p.alias, "alias moved to the promoted version"
    )
    promotion_min_improvement: float = setting(
        "GOVERNANCE_PROMOTION_MIN_IMPROVEMENT",
        "0",
        p.bounded(0),
        "absolute margin a run must beat the champion by (damps near-identical versions)",
    )

    @property
    def promotion_enabled(self) -> bool:
        return self.promotion_metric is not None

    def check(self, where: str = "") -> None:
        """Cross-field rules; raises SettingsError naming the setting."""
        if self.promotion_metric is not None and self.promotion_threshold is None:
            raise SettingsError(
                where + env_name("promotion_threshold"),
                f"required when {env_name('promotion_metric')} is set ({self.promotion_metric!r})",
            )


POLICY_SETTINGS = declarations(Policy, per_experiment=True)
# Keys of the policy settings, as the policy file spells them (setting name minus the prefix).
POLICY_KEYS = tuple(entry.key for entry in POLICY_SETTINGS)
if set(POLICY_KEYS) != set(Policy.model_fields):  # a field declared without `setting(...)`
    raise RuntimeError(f"undeclared Policy fields: {set(Policy.model_fields) - set(POLICY_KEYS)}")


class PolicyOverride(BaseModel):
    """One entry of the policy file: the experiments (name globs) and workspaces (name or ARM-id
    globs; None: any workspace) it covers, and the policy keys it overrides there."""

    model_config = ConfigDict(frozen=True)

    experiments: tuple[str, ...] = ("*",)
    workspaces: tuple[str, ...] | None = None
    values: Mapping[str, Any]

    @property
    def every_experiment(self) -> bool:
        return "*" in self.experiments

    def applies_to(self, experiment_name: str, workspace: Workspace | None = None) -> bool:
        """Whether this entry covers the experiment in the workspace. An entry naming workspaces
        never covers a workspace that is not known (None: a tracking URI alone)."""
        if not any(fnmatch.fnmatchcase(experiment_name, g) for g in self.experiments):
            return False
        return self.covers(workspace)

    def covers(self, workspace: Workspace | None) -> bool:
        """Whether the workspace globs (if any) match `workspace`."""
        if self.workspaces is None:
            return True
        return workspace is not None and any(workspace.matches(g) for g in self.workspaces)


def build_policy(values: Mapping[str, object], where: str = "") -> Policy:
    """A `Policy` from raw values keyed by policy key (missing or None: the default)."""
    unknown = [key for key in values if key not in POLICY_KEYS]
    if unknown:
        raise SettingsError(
            where + str(unknown[0]), f"unknown policy key (allowed: {', '.join(POLICY_KEYS)})"
        )
    parsed = {entry.key: entry.value(values.get(entry.key), where) for entry in POLICY_SETTINGS}
    policy = Policy.model_validate(parsed)
    policy.check(where)
    return policy
