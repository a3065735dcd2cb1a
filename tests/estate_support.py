"""Helpers for estate tests: an output binding value as the Functions host passes one."""

from __future__ import annotations

import azure.functions as func


class Collected(func.Out[list[str]]):
    """The `func.Out` the host hands an output binding: keeps what the function set."""

    def __init__(self) -> None:
        self.value: list[str] | None = None

    def set(self, val: list[str]) -> None:
        self.value = val

    def get(self) -> list[str]:
        return self.value or []
