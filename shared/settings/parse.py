"""Value parsers of the settings: text from the environment (or a policy-file value) to a type.

Each parser takes the raw value and returns the typed one or raises `ValueError` with a message
that does not repeat the setting's name (the caller adds it) and never echoes a secret.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from shared.model import TERMINAL_STATUSES, normalise_status

# Ten years: a larger window is a typo, and datetime arithmetic overflows long before infinity.
MAX_HOURS = 87_600.0
TEMPLATE_FIELDS = ("user", "experiment_name", "run_name")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_VERSION_LIKE = re.compile(r"^v\d+$", re.IGNORECASE)
Goal = Literal["maximize", "minimize"]


class Unusable(ValueError):
    """A value that cannot be used where the setting is best effort: reported, not fatal."""


def is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def text(value: object) -> str:
    """Non-empty text, stripped."""
    if is_blank(value):
        raise ValueError("must not be empty")
    return str(value).strip()


def optional_text(value: object) -> str | None:
    return None if is_blank(value) else str(value).strip()


def optional_path(value: object) -> Path | None:
    return None if is_blank(value) else Path(str(value).strip())


def csv(value: object) -> tuple[str, ...]:
    """A comma-separated list (or a YAML list); a list of nothing but commas is refused."""
    if is_blank(value):
        return ()
    if isinstance(value, str):
        items = tuple(part.strip() for part in value.split(","))
    elif isinstance(value, list | tuple | set | frozenset):
        items = tuple(str(part).strip() for part in value)
        if not items:  # an explicit empty list (`required_tags: []`) means none
            return ()
    else:
        raise ValueError(f"expected a comma-separated list, got {value!r}")
    kept = tuple(item for item in items if item)
    if not kept:
        # `,,,` is a typo, not a deliberate "none": say so rather than guess.
        raise ValueError(f"the list has no items: {value!r}")
    return kept


def globs(value: object) -> tuple[str, ...]:
    """Experiment-name globs in scope; at least one (an empty scope is never meant)."""
    found = csv(value)
    if not found:
        raise ValueError("no experiment-name glob given (use * for every experiment)")
    return found


def statuses(value: object) -> frozenset[str]:
    found = frozenset(normalise_status(s) for s in csv(value))
    unknown = sorted(found - TERMINAL_STATUSES)
    if unknown:
        allowed = ", ".join(sorted(TERMINAL_STATUSES))
        raise ValueError(f"unknown run status {', '.join(unknown)} (allowed: {allowed})")
    return found


def boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def number(value: object) -> float:
    """A finite number (a YAML number or its text)."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int | float):
        result = float(value)
    else:
        try:
            result = float(str(value).strip())
        except (ValueError, OverflowError):
            raise ValueError(f"not a number: {value!r}") from None
    if not math.isfinite(result):
        raise ValueError(f"not a finite number: {value!r}")
    return result


def optional_number(value: object) -> float | None:
    return None if is_blank(value) else number(value)


def bounded(minimum: float, maximum: float | None = None) -> Callable[[object], float]:
    """A parser of finite numbers in [minimum, maximum]; `maximum` counts hours when given."""

    def parse(value: object) -> float:
        result = number(value)
        if result < minimum:
            raise ValueError(f"must be at least {minimum:g}, got {value!r}")
        if maximum is not None and result > maximum:
            raise ValueError(f"at most {maximum:g} hours, got {value!r}")
        return result

    return parse


def whole(minimum: int) -> Callable[[object], int]:
    """A parser of whole numbers of at least `minimum`."""

    def parse(value: object) -> int:
        if isinstance(value, bool):
            raise ValueError(f"not a whole number: {value!r}")
        try:
            result = int(str(value).strip())
        except ValueError:
            raise ValueError(f"not a whole number: {value!r}") from None
        if result < minimum:
            raise ValueError(f"must be at least {minimum}, got {value!r}")
        return result

    return parse


def parse_hours(text: str) -> float:
    """A number of hours from a command-line argument: finite, above 0, at most ten years."""
    try:
        hours = number(text)
    except ValueError as exc:
        raise ValueError(f"{exc} (a number of hours)") from None
    if not 0 < hours <= MAX_HOURS:
        raise ValueError(f"must be more than 0 and at most {MAX_HOURS:g} hours, got {text!r}")
    return hours


def template(value: object) -> str:
    """A name template: literal text and plain `{user}`, `{experiment_name}`, `{run_name}`.

    No format specs, conversions, attributes or indexes: `{experiment_name:>300000000}` would
    expand to hundreds of megabytes for every run.
    """
    source = str(value).strip()
    allowed = ", ".join("{" + name + "}" for name in TEMPLATE_FIELDS)
    try:
        parts = list(string.Formatter().parse(source))
    except ValueError as exc:
        raise ValueError(f"bad template {source!r} ({exc!s}); allowed: {allowed}") from None
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS or spec or conversion:
            spelled = _spelled(field, spec, conversion)
            raise ValueError(
                f"bad template {source!r} (only plain fields, not {spelled}); allowed: {allowed}"
            )
    return source


def _spelled(field: str, spec: str | None, conversion: str | None) -> str:
    shown = field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
    # A pathological spec (`:>300000000`) is shown cut short: it is the problem, not the point.
    return "{" + (shown if len(shown) <= 40 else shown[:40] + "…") + "}"


def expand_template(template: str, *, user: str, experiment_name: str, run_name: str) -> str:
    return template.format(user=user, experiment_name=experiment_name, run_name=run_name)


def tag_defaults(value: object) -> dict[str, str]:
    """JSON object (or YAML mapping) of tag -> template."""
    if is_blank(value):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at position {exc.pos})") from None
        except RecursionError:
            raise ValueError("not valid JSON (nested too deep)") from None
    if not isinstance(value, dict):
        raise ValueError('expected a JSON object of tag -> value, e.g. {"team": "{user}"}')
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise ValueError(f"value of {key!r} must be a string")
        result[str(key)] = template(str(item))
    return result


def goal(value: object) -> Goal:
    lowered = str(value).strip().lower()
    if lowered == "maximize":
        return "maximize"
    if lowered == "minimize":
        return "minimize"
    raise ValueError(f"must be 'maximize' or 'minimize', got {value!r}")


def alias(value: object) -> str:
    """A registered-model alias, by MLflow's own rules (`_validate_model_alias_name`)."""
    name = text(value)
    if not _ALIAS.match(name) or name.lower() == "latest" or _VERSION_LIKE.match(name):
        raise ValueError(
            f"not a valid MLflow alias: {name!r} (letters, digits, '-' and '_'; "
            "not 'latest' nor 'v' followed by digits)"
        )
    return name
