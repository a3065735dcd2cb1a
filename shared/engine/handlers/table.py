"""The one action -> handler table the executor reads; an action type missing here fails its
test (`tests/unit/test_engine.py`), not a sweep."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar, cast

from shared.engine.actions import (
    Action,
    DeleteRun,
    GuardNotice,
    RegisterModelVersion,
    RestoreRun,
    RunFailedNotice,
    SetRunTags,
    SetVersionTags,
)
from shared.engine.handlers.cleanup import delete_run, restore_run
from shared.engine.handlers.promotion import register_model_version
from shared.engine.handlers.tags import notice, set_run_tags, set_version_tags
from shared.engine.results import Result
from shared.tracking.gateway import TrackingGateway

A = TypeVar("A", bound=Action)
Handler = Callable[[TrackingGateway, Action], Result]


def _entry(
    action_type: type[A], fn: Callable[[TrackingGateway, A], Result]
) -> tuple[type[Action], Handler]:
    # mypy checks here that `fn` takes `action_type`; the table then holds it by its base type.
    return action_type, cast(Handler, fn)


_ENTRIES = (
    _entry(SetRunTags, set_run_tags),
    _entry(SetVersionTags, set_version_tags),
    _entry(RunFailedNotice, notice),
    _entry(GuardNotice, notice),
    _entry(DeleteRun, delete_run),
    _entry(RestoreRun, restore_run),
    _entry(RegisterModelVersion, register_model_version),
)
HANDLERS: Mapping[type[Action], Handler] = dict(_ENTRIES)
