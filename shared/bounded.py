"""Bounded decoding of untrusted input: JSON and YAML with limits on size, depth and aliases.

An event body or a policy file is decoded only after these checks, so hostile input ends in
a `BoundedInputError` naming what is wrong, never in a RecursionError, a hang or gigabytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

# Far above any real event batch (Event Grid delivers at most 1 MB) or policy file.
MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_YAML_BYTES = 1024 * 1024
MAX_DEPTH = 64
# A policy file has no need for anchors at all; a few are tolerated, expansion is not.
MAX_YAML_ALIASES = 16


class BoundedInputError(ValueError):
    """Input refused before or while decoding; the message says which limit and where."""


class NotJson(BoundedInputError):
    """Within every limit, but not JSON."""


def _check_depth(text: str, max_depth: int) -> None:
    """One linear pass over the text: bracket depth outside strings (JSON's grammar)."""
    depth = 0
    in_string = False
    escaped = False
    for position, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                raise BoundedInputError(
                    f"nested deeper than {max_depth} levels (at character {position})"
                )
        elif char in "]}":
            depth -= 1


def check_depth(value: object, max_depth: int = MAX_DEPTH) -> None:
    """The nesting depth of an already decoded value (the Functions host decodes event data
    itself), walked without recursion."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise BoundedInputError(f"nested deeper than {max_depth} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def loads_json(
    data: str | bytes, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """`json.loads` after checking size, encoding and nesting depth."""
    if len(data) > max_bytes:
        raise BoundedInputError(f"larger than {max_bytes} bytes")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BoundedInputError(f"not UTF-8 (byte {exc.start})") from None
    _check_depth(data, max_depth)
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise NotJson(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:  # pragma: no cover - the depth check runs first
        raise BoundedInputError(f"nested deeper than {max_depth} levels") from None


def read_text(path: Path, *, max_bytes: int) -> str:
    """A file's UTF-8 text, reading at most `max_bytes + 1` bytes (`/dev/zero` ends here)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise BoundedInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise BoundedInputError(f"{path} is larger than {max_bytes} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BoundedInputError(f"{path} is not UTF-8 (byte {exc.start})") from None


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses deep nesting and more than a few aliases.

    An alias bomb ("billion laughs") is a handful of anchors each repeating the previous one;
    counting alias nodes while composing stops it before any expansion is built.
    """

    max_depth = MAX_DEPTH
    max_aliases = MAX_YAML_ALIASES

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > self.max_aliases:
                raise BoundedInputError(f"more than {self.max_aliases} YAML aliases")
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise BoundedInputError(f"nested deeper than {self.max_depth} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def loads_yaml(text: str, *, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """`yaml.safe_load` with the size, depth and alias limits above."""
    if len(text.encode("utf-8", errors="surrogatepass")) > max_bytes:
        raise BoundedInputError(f"larger than {max_bytes} bytes")
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise BoundedInputError(f"not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise BoundedInputError(f"nested deeper than {MAX_DEPTH} levels") from None
    except BoundedInputError:
        raise
    except (ValueError, OverflowError) as exc:
        # A scalar the safe constructors match but cannot convert: PyYAML's int resolver
        # takes `0x_` for hexadecimal, then `int("", 16)` fails (yaml/constructor.py).
        raise BoundedInputError(f"not valid YAML: a value that cannot be read ({exc})") from None
    finally:
        loader.dispose()
