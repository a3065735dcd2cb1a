"""The declaration of a setting: its name, default, parser, help line and whether the policy file
may override it per experiment. A model field is declared with `setting(...)`; the table of all
settings (`SETTINGS`, in `shared.settings.model`) is collected from the models' fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from pydantic import BaseModel, Field

from shared.errors import SettingsError
from shared.settings.parse import Unusable, is_blank

T = TypeVar("T")
ENV_PREFIX = "GOVERNANCE_"
# Sections of the README table and of `mlgov check`.
GOVERNANCE = "Governance"
AZURE = "Azure"


def env_name(key: str) -> str:
    """`promotion_metric` -> `GOVERNANCE_PROMOTION_METRIC`."""
    return ENV_PREFIX + key.upper()


def key_of(name: str) -> str:
    """The attribute a setting fills: `GOVERNANCE_PROMOTION_METRIC` -> `promotion_metric`,
    `MLFLOW_TRACKING_URI` -> `tracking_uri`, `AZURE_CLIENT_ID` -> `azure_client_id`."""
    return name.removeprefix(ENV_PREFIX).removeprefix("MLFLOW_").lower()


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting. `default` is spelled as in the environment ("" = not set)."""

    name: str
    default: str
    parse: Callable[[object], Any]
    help: str
    group: str = GOVERNANCE
    per_experiment: bool = False
    # Where a blank value does not mean the default (an empty status list turns cleanup off).
    blank_is_default: bool = True
    # README wording of the default where the raw text says too little ("" -> "empty (off)").
    shown_default: str | None = None
    # `mlgov check`'s wording of an unset (None) or empty value.
    unset: str = "(not set)"
    secret: bool = False

    @property
    def key(self) -> str:
        return key_of(self.name)

    def resolve(self, raw: object) -> Any:
        """The typed value of `raw` (None: not given); ValueError says what is wrong."""
        if raw is None or (self.blank_is_default and is_blank(raw)):
            raw = self.default
        return self.parse(raw)

    def value(self, raw: object, where: str = "") -> Any:
        """`resolve`, with errors as SettingsError naming the setting."""
        try:
            return self.resolve(raw)
        except Unusable:
            raise
        except ValueError as exc:
            raise SettingsError(where + self.name, str(exc)) from None


_DECLARED: dict[str, Setting] = {}


def setting(
    name: str,
    default: str,
    parse: Callable[[object], T],
    help: str,
    **details: Any,
) -> T:
    """Declare a setting as a model field: `x: int = setting("GOVERNANCE_X", "4", whole(1), ...)`.

    Typed as the parser's result so mypy checks the field's annotation against it; at run time
    it is the pydantic field, its default parsed from `default` (so defaults are valid, once).
    """
    declared = Setting(name, default, parse, help, **details)
    if declared.key in _DECLARED:
        raise RuntimeError(f"setting {name} declared twice")
    _DECLARED[declared.key] = declared
    typed = declared.resolve(None)
    if isinstance(typed, dict):  # mutable: a fresh copy for each model
        return cast(T, Field(default_factory=lambda: declared.resolve(None), description=help))
    return cast(T, Field(default=typed, description=help))


def declarations(model: type[BaseModel], *, per_experiment: bool) -> tuple[Setting, ...]:
    """The settings declared on `model`'s fields, in field order."""
    found = []
    for key in model.model_fields:
        declared = _DECLARED.get(key)
        if declared is not None:
            found.append(replace(declared, per_experiment=per_experiment))
    return tuple(found)


def parse_all(
    table: tuple[Setting, ...], raw: Mapping[str, object], where: str = ""
) -> dict[str, Any]:
    """Every setting of `table` from `raw` (keyed by setting name), by attribute key."""
    return {entry.key: entry.value(raw.get(entry.name), where) for entry in table}
