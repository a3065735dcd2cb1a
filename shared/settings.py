"""Settings: every Function App setting (environment variable) of the brief, validated up front.

`get_settings()` reads the environment once, on first use; nothing is read at import time.
Policy settings may be overridden per experiment by the YAML file in `GOVERNANCE_POLICY_FILE`
(see `shared.policy_file`).
"""

from __future__ import annotations

import fnmatch
import functools
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import SettingsError
from shared.model import TERMINAL_STATUSES, normalise_status

ENV_PREFIX = "GOVERNANCE_"
# Ten years: a larger window is a typo, and datetime arithmetic overflows long before infinity.
MAX_HOURS = 87_600.0
# URI schemes MLflow's client can track to (no scheme: a local path).
TRACKING_SCHEMES = frozenset(
    {
        "http",
        "https",
        "azureml",
        "sqlite",
        "file",
        "databricks",
        "databricks-uc",
        "postgresql",
        "mysql",
        "mssql",
    }
)
_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_VERSION_LIKE = re.compile(r"^v\d+$", re.IGNORECASE)
DEFAULT_EMBEDDED_DB = "mlgov.db"

# Keys of the policy settings, as the policy file spells them (setting name minus the prefix).
POLICY_KEYS = (
    "cleanup_statuses",
    "cleanup_after_hours",
    "protect_tag",
    "required_tags",
    "tag_defaults",
    "promotion_metric",
    "promotion_threshold",
    "promotion_goal",
    "promotion_model_name",
    "promotion_artifact_path",
    "promotion_alias",
    "promotion_min_improvement",
)
TEMPLATE_FIELDS = ("user", "experiment_name", "run_name")


def env_name(key: str) -> str:
    """`promotion_metric` -> `GOVERNANCE_PROMOTION_METRIC`."""
    return ENV_PREFIX + key.upper()


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _csv(value: object) -> tuple[str, ...]:
    if _blank(value):
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(str(part).strip() for part in value if str(part).strip())
    raise ValueError(f"expected a comma-separated list, got {value!r}")


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(f"not a number: {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def _check_template(template: str) -> str:
    try:
        template.format(**dict.fromkeys(TEMPLATE_FIELDS, "x"))
    except (KeyError, IndexError, ValueError) as exc:
        allowed = ", ".join("{" + name + "}" for name in TEMPLATE_FIELDS)
        raise ValueError(f"bad template {template!r} ({exc!s}); allowed: {allowed}") from None
    return template


def expand_template(template: str, *, user: str, experiment_name: str, run_name: str) -> str:
    return template.format(user=user, experiment_name=experiment_name, run_name=run_name)


class Policy(BaseModel):
    """The policy settings in force for one experiment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cleanup_statuses: frozenset[str] = frozenset({"FAILED"})
    cleanup_after_hours: float = Field(default=72.0, ge=0)
    protect_tag: str = "governance.keep"
    required_tags: tuple[str, ...] = ()
    tag_defaults: dict[str, str] = Field(default_factory=dict)
    promotion_metric: str | None = None
    promotion_threshold: float | None = None
    promotion_goal: Literal["maximize", "minimize"] = "maximize"
    promotion_model_name: str = "{experiment_name}"
    promotion_artifact_path: str = "model"
    promotion_alias: str = "champion"
    # Absolute margin a challenger must beat the champion by (damps near-identical versions).
    promotion_min_improvement: float = Field(default=0.0, ge=0)

    @field_validator("cleanup_statuses", mode="before")
    @classmethod
    def _statuses(cls, value: object) -> frozenset[str]:
        statuses = frozenset(normalise_status(s) for s in _csv(value))
        unknown = sorted(statuses - TERMINAL_STATUSES)
        if unknown:
            allowed = ", ".join(sorted(TERMINAL_STATUSES))
            raise ValueError(f"unknown run status {', '.join(unknown)} (allowed: {allowed})")
        return statuses

    @field_validator("cleanup_after_hours", mode="before")
    @classmethod
    def _hours(cls, value: object) -> float:
        hours = 72.0 if _blank(value) else _number(value)
        if hours > MAX_HOURS:
            raise ValueError(f"at most {MAX_HOURS:g} hours, got {value!r}")
        return hours

    @field_validator("required_tags", mode="before")
    @classmethod
    def _tags(cls, value: object) -> tuple[str, ...]:
        return _csv(value)

    @field_validator("tag_defaults", mode="before")
    @classmethod
    def _defaults(cls, value: object) -> dict[str, str]:
        if _blank(value):
            return {}
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg} at position {exc.pos})") from None
        if not isinstance(value, dict):
            raise ValueError('expected a JSON object of tag -> value, e.g. {"team": "{user}"}')
        result: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(item, str | int | float) or isinstance(item, bool):
                raise ValueError(f"value of {key!r} must be a string")
            result[str(key)] = _check_template(str(item))
        return result

    @field_validator("promotion_metric", mode="before")
    @classmethod
    def _metric(cls, value: object) -> str | None:
        return None if _blank(value) else str(value).strip()

    @field_validator("promotion_threshold", mode="before")
    @classmethod
    def _threshold(cls, value: object) -> float | None:
        return None if _blank(value) else _number(value)

    @field_validator("promotion_min_improvement", mode="before")
    @classmethod
    def _min_improvement(cls, value: object) -> float:
        return 0.0 if _blank(value) else _number(value)

    @field_validator("promotion_goal", mode="before")
    @classmethod
    def _goal(cls, value: object) -> str:
        if _blank(value):
            return "maximize"
        goal = str(value).strip().lower()
        if goal not in ("maximize", "minimize"):
            raise ValueError(f"must be 'maximize' or 'minimize', got {value!r}")
        return goal

    @field_validator("promotion_model_name", mode="before")
    @classmethod
    def _model_name(cls, value: object) -> str:
        return "{experiment_name}" if _blank(value) else _check_template(str(value).strip())

    @field_validator("promotion_alias", mode="after")
    @classmethod
    def _alias(cls, value: str) -> str:
        # MLflow's own rules: reserved `latest` and `v<N>`, letters, digits, - and _ only.
        if not _ALIAS.match(value) or value.lower() == "latest" or _VERSION_LIKE.match(value):
            raise ValueError(
                f"not a valid MLflow alias: {value!r} (letters, digits, '-' and '_'; "
                "not 'latest' nor 'v' followed by digits)"
            )
        return value

    @field_validator("protect_tag", "promotion_artifact_path", "promotion_alias", mode="before")
    @classmethod
    def _non_empty(cls, value: object) -> str:
        if _blank(value):
            raise ValueError("must not be empty")
        return str(value).strip()

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


class _RawValues(BaseModel):
    """The raw values by setting name; policy fields stay strings here."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tracking_uri: str | None = Field(default=None, validation_alias="MLFLOW_TRACKING_URI")
    dry_run: str | None = Field(default=None, validation_alias="GOVERNANCE_DRY_RUN")
    experiments: str | None = Field(default=None, validation_alias="GOVERNANCE_EXPERIMENTS")
    cleanup_max_runs: str | None = Field(
        default=None, validation_alias="GOVERNANCE_CLEANUP_MAX_RUNS"
    )
    teams_webhook_url: str | None = Field(
        default=None, validation_alias="GOVERNANCE_TEAMS_WEBHOOK_URL"
    )
    summary_window_hours: str | None = Field(
        default=None, validation_alias="GOVERNANCE_SUMMARY_WINDOW_HOURS"
    )
    catchup_hours: str | None = Field(default=None, validation_alias="GOVERNANCE_CATCHUP_HOURS")
    sweep_schedule: str | None = Field(default=None, validation_alias="GOVERNANCE_SWEEP_SCHEDULE")
    summary_schedule: str | None = Field(
        default=None, validation_alias="GOVERNANCE_SUMMARY_SCHEDULE"
    )
    policy_file: str | None = Field(default=None, validation_alias="GOVERNANCE_POLICY_FILE")
    cleanup_statuses: str | None = Field(
        default=None, validation_alias="GOVERNANCE_CLEANUP_STATUSES"
    )
    cleanup_after_hours: str | None = Field(
        default=None, validation_alias="GOVERNANCE_CLEANUP_AFTER_HOURS"
    )
    protect_tag: str | None = Field(default=None, validation_alias="GOVERNANCE_PROTECT_TAG")
    required_tags: str | None = Field(default=None, validation_alias="GOVERNANCE_REQUIRED_TAGS")
    tag_defaults: str | None = Field(default=None, validation_alias="GOVERNANCE_TAG_DEFAULTS")
    promotion_metric: str | None = Field(
        default=None, validation_alias="GOVERNANCE_PROMOTION_METRIC"
    )
    promotion_threshold: str | None = Field(
        default=None, validation_alias="GOVERNANCE_PROMOTION_THRESHOLD"
    )
    promotion_goal: str | None = Field(default=None, validation_alias="GOVERNANCE_PROMOTION_GOAL")
    promotion_model_name: str | None = Field(
        default=None, validation_alias="GOVERNANCE_PROMOTION_MODEL_NAME"
    )
    promotion_artifact_path: str | None = Field(
        default=None, validation_alias="GOVERNANCE_PROMOTION_ARTIFACT_PATH"
    )
    promotion_alias: str | None = Field(default=None, validation_alias="GOVERNANCE_PROMOTION_ALIAS")
    promotion_min_improvement: str | None = Field(
        default=None, validation_alias="GOVERNANCE_PROMOTION_MIN_IMPROVEMENT"
    )


class _Environment(BaseSettings, _RawValues):
    """The same values read from the process environment by pydantic-settings."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True, frozen=True)


class PolicyOverride(BaseModel):
    """One entry of the policy file: experiment-name globs and the policy keys they override."""

    model_config = ConfigDict(frozen=True)

    experiments: tuple[str, ...]
    values: Mapping[str, Any]


_NCRONTAB_FIELDS = 6


def _check_schedule(setting: str, value: str) -> str:
    # NCRONTAB has six fields (seconds first); a five-field Unix cron is a common mistake.
    fields = value.split()
    if len(fields) != _NCRONTAB_FIELDS:
        raise SettingsError(
            setting,
            f"NCRONTAB needs 6 fields (second minute hour day month weekday), "
            f"got {len(fields)}: {value!r}",
        )
    return value


def _parse_bool(setting: str, value: str | None, default: bool) -> bool:
    if _blank(value):
        return default
    assert value is not None
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(setting, f"expected true or false, got {value!r}")


def _parse_number(setting: str, value: str | None, default: float, *, minimum: float) -> float:
    if _blank(value):
        return default
    try:
        number = _number(value)
    except ValueError as exc:
        raise SettingsError(setting, str(exc)) from None
    if number < minimum:
        raise SettingsError(setting, f"must be at least {minimum:g}, got {value!r}")
    if number > MAX_HOURS:
        raise SettingsError(setting, f"at most {MAX_HOURS:g} hours, got {value!r}")
    return number


def parse_hours(text: str) -> float:
    """A number of hours from a command-line argument: finite, above 0, at most ten years."""
    try:
        hours = _number(text)
    except ValueError as exc:
        raise ValueError(f"{exc} (a number of hours)") from None
    if not 0 < hours <= MAX_HOURS:
        raise ValueError(f"must be more than 0 and at most {MAX_HOURS:g} hours, got {text!r}")
    return hours


def _check_tracking_uri(value: str | None) -> str | None:
    if _blank(value):
        return None
    assert value is not None
    uri = value.strip()
    scheme = urlsplit(uri).scheme.lower()
    # A one-letter scheme is a Windows drive letter, i.e. a local path.
    if scheme and len(scheme) > 1 and scheme not in TRACKING_SCHEMES:
        raise SettingsError(
            "MLFLOW_TRACKING_URI",
            f"unsupported scheme {scheme!r} (expected azureml://, http(s)://, sqlite:///…)",
        )
    return uri


def display_uri(uri: str) -> str:
    """The URI without user-info (`https://user:secret@host` -> `https://host`), for output."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return uri
    if not (parts.username or parts.password) or not host:
        return uri
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return parts._replace(netloc=netloc).geturl()


def _check_webhook(value: str | None) -> SecretStr | None:
    if _blank(value):
        return None
    assert value is not None
    setting = "GOVERNANCE_TEAMS_WEBHOOK_URL"
    # Messages never echo the value: it carries a credential (`sig=`).
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
    except ValueError:
        raise SettingsError(setting, "not a valid URL") from None
    if parts.scheme.lower() != "https":
        raise SettingsError(setting, "must be an https:// URL")
    if not host:
        raise SettingsError(setting, "the URL has no host name")
    return SecretStr(value.strip())


def _parse_int(setting: str, value: str | None, default: int, *, minimum: int) -> int:
    if _blank(value):
        return default
    assert value is not None
    try:
        number = int(value.strip())
    except ValueError:
        raise SettingsError(setting, f"not a whole number: {value!r}") from None
    if number < minimum:
        raise SettingsError(setting, f"must be at least {minimum}, got {value!r}")
    return number


def build_policy(values: Mapping[str, object], where: str = "") -> Policy:
    """A `Policy` from raw values keyed by policy key; errors name the setting."""
    given = {key: value for key, value in values.items() if value is not None}
    # An empty GOVERNANCE_CLEANUP_STATUSES turns cleanup off (so it is kept, not defaulted).
    for key in ("protect_tag", "promotion_artifact_path", "promotion_alias"):
        if key in given and _blank(given[key]):
            given.pop(key)
    try:
        policy = Policy.model_validate(given)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else "?"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            raise SettingsError(
                where + key, f"unknown policy key (allowed: {', '.join(POLICY_KEYS)})"
            ) from None
        raise SettingsError(where + env_name(key), message) from None
    policy.check(where)
    return policy


class Settings(BaseModel):
    """Validated settings: global ones, the default policy and per-experiment overrides."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    tracking_uri: str | None
    dry_run: bool
    experiments: tuple[str, ...]
    cleanup_max_runs: int
    teams_webhook_url: SecretStr | None
    summary_window_hours: float
    catchup_hours: float
    sweep_schedule: str
    summary_schedule: str
    policy_file: Path | None
    default_policy: Policy
    overrides: tuple[PolicyOverride, ...] = ()

    def effective_tracking_uri(self, cwd: Path | None = None) -> str:
        """The configured URI, or the embedded SQLite store in the working directory."""
        if self.tracking_uri:
            return self.tracking_uri
        base = (cwd or Path.cwd()) / DEFAULT_EMBEDDED_DB
        return f"sqlite:///{base}"

    @property
    def is_embedded(self) -> bool:
        return not self.tracking_uri

    def in_scope(self, experiment_name: str) -> bool:
        return any(fnmatch.fnmatchcase(experiment_name, glob) for glob in self.experiments)

    def policy_for(self, experiment_name: str) -> Policy:
        """The default policy with every matching override applied in file order."""
        merged: dict[str, object] | None = None
        for override in self.overrides:
            if any(fnmatch.fnmatchcase(experiment_name, g) for g in override.experiments):
                if merged is None:
                    merged = self.default_policy.model_dump()
                merged.update(override.values)
        if merged is None:
            return self.default_policy
        return Policy.model_validate(merged)

    def with_dry_run(self, dry_run: bool) -> Settings:
        return self.model_copy(update={"dry_run": self.dry_run or dry_run})


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Validate settings from `environ` (default: the process environment)."""
    # A given mapping is read alone: the process environment must not leak into it.
    raw: _RawValues = (
        _Environment() if environ is None else _RawValues.model_validate(dict(environ))
    )

    policy_values = {key: getattr(raw, key) for key in POLICY_KEYS}
    if raw.cleanup_statuses is None:
        policy_values.pop("cleanup_statuses")
    default_policy = build_policy(policy_values)

    experiments = _csv(raw.experiments) or ("*",)
    webhook = _check_webhook(raw.teams_webhook_url)

    policy_file = None if _blank(raw.policy_file) else Path(str(raw.policy_file).strip())
    overrides: tuple[PolicyOverride, ...] = ()
    if policy_file is not None:
        from shared.policy_file import load_policy_file

        overrides = load_policy_file(policy_file, default_policy)

    return Settings(
        tracking_uri=_check_tracking_uri(raw.tracking_uri),
        dry_run=_parse_bool("GOVERNANCE_DRY_RUN", raw.dry_run, False),
        experiments=experiments,
        cleanup_max_runs=_parse_int(
            "GOVERNANCE_CLEANUP_MAX_RUNS", raw.cleanup_max_runs, 100, minimum=0
        ),
        teams_webhook_url=webhook,
        summary_window_hours=_parse_number(
            "GOVERNANCE_SUMMARY_WINDOW_HOURS", raw.summary_window_hours, 24.0, minimum=0.001
        ),
        catchup_hours=_parse_number(
            "GOVERNANCE_CATCHUP_HOURS", raw.catchup_hours, 24.0, minimum=0.001
        ),
        sweep_schedule=_check_schedule(
            "GOVERNANCE_SWEEP_SCHEDULE", raw.sweep_schedule or "0 */30 * * * *"
        ),
        summary_schedule=_check_schedule(
            "GOVERNANCE_SUMMARY_SCHEDULE", raw.summary_schedule or "0 0 8 * * 1-5"
        ),
        policy_file=policy_file,
        default_policy=default_policy,
        overrides=overrides,
    )


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read and validated on first use."""
    return load_settings(os.environ)
