"""`Settings`: the validated settings of one process, declared field by field, and `SETTINGS`,
the table of every setting (these, then the policy settings) that the loader, `mlgov check`
and the README's settings table are built from.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

from shared.settings import endpoints as e
from shared.settings import parse as p
from shared.settings import workspaces as w
from shared.settings.declare import AZURE, Setting, declarations, setting
from shared.settings.policy import POLICY_SETTINGS, Policy, PolicyOverride
from shared.settings.schedule import ncrontab


@dataclass(frozen=True, slots=True)
class SettingWarning:
    """A setting that cannot be used but does not stop governance (a best-effort one)."""

    setting: str
    problem: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.problem}"


_Source = tuple[Policy, tuple[PolicyOverride, ...]]


class Settings(BaseModel):
    """Validated settings: global ones, the default policy and per-experiment overrides."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    tracking_uri: str | None = setting(
        "MLFLOW_TRACKING_URI",
        "",
        e.tracking_uri,
        "any MLflow URI, incl. Azure ML's `azureml://…`",
        shown_default="embedded `./mlgov.db`",
    )
    dry_run: bool = setting(
        "GOVERNANCE_DRY_RUN", "false", p.boolean, "decide and report, change nothing"
    )
    experiments: tuple[str, ...] = setting(
        "GOVERNANCE_EXPERIMENTS", "*", p.globs, "comma-separated experiment-name globs in scope"
    )
    cleanup_max_runs: int = setting(
        "GOVERNANCE_CLEANUP_MAX_RUNS",
        "100",
        p.whole(0),
        "more candidates than this in one sweep: delete none, alert",
    )
    teams_webhook_url: SecretStr | None = setting(
        "GOVERNANCE_TEAMS_WEBHOOK_URL",
        "",
        e.webhook,
        "Teams Workflows webhook; a secret: never logged, masked by `check`; an unresolved "
        "Key Vault reference is reported and governance goes on",
        secret=True,
        unset="(not set: cards are printed)",
    )
    summary_window_hours: float = setting(
        "GOVERNANCE_SUMMARY_WINDOW_HOURS",
        "24",
        p.bounded(0.001, p.MAX_HOURS),
        "what the summary covers",
    )
    catchup_hours: float = setting(
        "GOVERNANCE_CATCHUP_HOURS",
        "24",
        p.bounded(0.001, p.MAX_HOURS),
        "the sweep re-checks runs that finished this recently (missed events)",
    )
    sweep_schedule: str = setting(
        "GOVERNANCE_SWEEP_SCHEDULE", "0 */30 * * * *", ncrontab, "NCRONTAB (six fields), UTC"
    )
    summary_schedule: str = setting(
        "GOVERNANCE_SUMMARY_SCHEDULE", "0 0 8 * * 1-5", ncrontab, "NCRONTAB (six fields), UTC"
    )
    policy_file: Path | None = setting(
        "GOVERNANCE_POLICY_FILE",
        "",
        p.optional_path,
        "optional YAML: per-experiment overrides of the settings marked *per experiment*",
        unset="(none)",
    )
    azure_client_id: str | None = setting(
        "AZURE_CLIENT_ID",
        "",
        e.guid,
        "client id of a user-assigned managed identity (empty: the system-assigned one, or "
        "developer credentials off Azure)",
        group=AZURE,
    )
    azure_subscription_id: str | None = setting(
        "AZURE_SUBSCRIPTION_ID",
        "",
        e.guid,
        "the workspace's subscription, used when `MLFLOW_TRACKING_URI` is not set",
        group=AZURE,
    )
    azure_ml_workspace_resource_group: str | None = setting(
        "AZURE_ML_WORKSPACE_RESOURCE_GROUP",
        "",
        w.resource_group,
        "the workspace's resource group (with the subscription and name)",
        group=AZURE,
    )
    azure_ml_workspace_name: str | None = setting(
        "AZURE_ML_WORKSPACE_NAME",
        "",
        w.workspace_name,
        "the workspace's name (with the subscription and resource group)",
        group=AZURE,
    )
    azure_ml_workspace_id: str | None = setting(
        "AZURE_ML_WORKSPACE_ID",
        "",
        w.workspace_id_text,
        "or the workspace's ARM id `/subscriptions/…/workspaces/<name>`, instead of the three",
        group=AZURE,
    )
    workspaces: tuple[str, ...] = setting(
        "GOVERNANCE_WORKSPACES",
        "",
        w.workspace_ids,
        "the estate: comma-separated workspace ARM ids, each governed (with the one above, if "
        "given); empty: that one workspace alone",
        group=AZURE,
        unset="(none: the single workspace)",
    )
    workspace_scope: str | None = setting(
        "GOVERNANCE_WORKSPACE_SCOPE",
        "",
        w.scope_text,
        "or a scope, `/subscriptions/<id>` or `/subscriptions/<id>/resourceGroups/<group>`, "
        "whose workspaces are all governed (discovered again at each sweep)",
        group=AZURE,
        unset="(none)",
    )
    events_topic_endpoint: str | None = setting(
        "GOVERNANCE_EVENTS_TOPIC_ENDPOINT",
        "",
        e.topic_endpoint,
        "Event Grid topic endpoint (https); applied decisions are published there as CloudEvents",
        group=AZURE,
    )
    concurrency: int = setting(
        "GOVERNANCE_CONCURRENCY",
        "8",
        p.whole(1),
        "at most this many tracking requests in flight at once (mutations and per-run checks)",
        group=AZURE,
    )

    # Built from the settings above, not settings themselves.
    default_policy: Policy = Field(default_factory=Policy)
    overrides: tuple[PolicyOverride, ...] = ()
    warnings: tuple[SettingWarning, ...] = ()

    # Policies resolved so far, by (workspace key, experiment name), with the (default,
    # overrides) they came from: a `model_copy` shares this dict, so a copy with other
    # overrides must not use it.
    _resolved: tuple[_Source, dict[tuple[str | None, str], Policy]] | None = PrivateAttr(
        default=None
    )
    # The workspace these settings govern in an estate (`for_workspace`): the one
    # `policy_for` resolves for when not told another, so the use cases need not know it.
    _governed: w.Workspace | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Settings):
            return NotImplemented
        # The values, not the cache of resolved policies.
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # holds dicts: never hashable

    def effective_tracking_uri(self, cwd: Path | None = None) -> str:
        """The configured URI, or the embedded SQLite store in the working directory."""
        if self.tracking_uri:
            return self.tracking_uri
        base = (cwd or Path.cwd()) / e.DEFAULT_EMBEDDED_DB
        return f"sqlite:///{base}"

    @property
    def is_embedded(self) -> bool:
        """No tracking URI and no workspace to resolve one from: the embedded local store."""
        return not self.tracking_uri and self.workspace is None

    @property
    def workspace(self) -> w.Workspace | None:
        """The Azure ML workspace, from its ARM id or its three coordinates; None if neither."""
        if self.azure_ml_workspace_id:
            return w.workspace_id(self.azure_ml_workspace_id)
        if (
            self.azure_subscription_id
            and self.azure_ml_workspace_resource_group
            and self.azure_ml_workspace_name
        ):
            return w.Workspace(
                self.azure_subscription_id,
                self.azure_ml_workspace_resource_group,
                self.azure_ml_workspace_name,
            )
        return None

    @property
    def listed_workspaces(self) -> tuple[w.Workspace, ...]:
        """`GOVERNANCE_WORKSPACES`, parsed, in the order given."""
        found = (w.workspace_id(arm_id) for arm_id in self.workspaces)
        return tuple(workspace for workspace in found if workspace is not None)

    @property
    def scope(self) -> w.Scope | None:
        """`GOVERNANCE_WORKSPACE_SCOPE`, parsed."""
        return w.scope(self.workspace_scope)

    def in_scope(self, experiment_name: str) -> bool:
        return any(fnmatch.fnmatchcase(experiment_name, glob) for glob in self.experiments)

    def policy_for(self, experiment_name: str, workspace: w.Workspace | None = None) -> Policy:
        """The default policy with every override covering the experiment (in the workspace,
        when given) applied in file order; entries naming workspaces need the workspace.

        Resolved once per (workspace, experiment) and kept: the overrides were validated when
        the file was read, so the merge is a copy, not a second validation.
        """
        workspace = workspace if workspace is not None else self._governed
        source = (self.default_policy, self.overrides)
        if (
            self._resolved is None
            or self._resolved[0][0] is not source[0]
            or self._resolved[0][1] is not source[1]
        ):
            self._resolved = (source, {})
        cache = self._resolved[1]
        key = (None if workspace is None else workspace.key, experiment_name)
        policy = cache.get(key)
        if policy is None:
            policy = cache[key] = self._merge(
                [o for o in self.overrides if o.applies_to(experiment_name, workspace)]
            )
        return policy

    def workspace_policy(self, workspace: w.Workspace | None) -> Policy:
        """The policy of the workspace's experiments that no experiment glob singles out: the
        default with the entries covering every experiment of it applied."""
        return self._merge(
            [o for o in self.overrides if o.every_experiment and o.covers(workspace)]
        )

    @property
    def distinguishes_workspaces(self) -> bool:
        """Whether the policy file has an entry naming workspaces."""
        return any(override.workspaces is not None for override in self.overrides)

    def _merge(self, overrides: list[PolicyOverride]) -> Policy:
        update: dict[str, object] = {}
        for override in overrides:
            update.update(override.values)
        return self.default_policy.model_copy(update=update) if update else self.default_policy

    @property
    def governed_workspace(self) -> w.Workspace | None:
        """The estate member these settings were narrowed to (`for_workspace`), if any."""
        return self._governed

    def for_workspace(
        self, workspace: w.Workspace | None, tracking_uri: str | None = None
    ) -> Settings:
        """The settings of one estate member, as if the deployment governed it alone: the
        workspace named by its ARM id (no list, no scope), its tracking URI (None: resolved
        from the workspace), and `policy_for` applying that workspace's policy-file entries
        unless told another. None (the default member) changes nothing but that."""
        if workspace is None:
            narrowed = self.model_copy()
        else:
            narrowed = self.model_copy(
                update={
                    "tracking_uri": tracking_uri or None,
                    "azure_ml_workspace_id": workspace.arm_id,
                    "azure_subscription_id": None,
                    "azure_ml_workspace_resource_group": None,
                    "azure_ml_workspace_name": None,
                    "workspaces": (),
                    "workspace_scope": None,
                }
            )
        narrowed._governed = workspace
        return narrowed

    def with_dry_run(self, dry_run: bool) -> Settings:
        return self.model_copy(update={"dry_run": self.dry_run or dry_run})


GLOBAL_SETTINGS = declarations(Settings, per_experiment=False)
# Every setting, in README and `check` order: global, per-experiment, then Azure.
SETTINGS: tuple[Setting, ...] = (
    tuple(s for s in GLOBAL_SETTINGS if s.group != AZURE)
    + POLICY_SETTINGS
    + tuple(s for s in GLOBAL_SETTINGS if s.group == AZURE)
)
BY_NAME = {entry.name: entry for entry in SETTINGS}
