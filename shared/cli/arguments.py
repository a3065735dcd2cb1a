"""Argument types shared by the verbs (argparse turns their errors into exit code 2)."""

from __future__ import annotations

import argparse

from shared.settings import parse_hours


def hours(text: str) -> float:
    try:
        return parse_hours(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
