"""The one action -> handler table the executor reads; an action type missing here fails its
test (`tests/unit/test_engine.py`), not a sweep.

An action type may also have a staged handler (`STAGED`): `Executor.apply_all`, given only
actions of that type, applies them a stage at a time over all of them, so that reading the
runs costs a request or two for the whole batch, not one per action. Its entry in `HANDLERS`
applies one action alone (both stages), for `apply_one` and for a stage tried again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar, cast

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
from shared.engine.handlers.cleanup import DELETION, delete_run, restore_run
from shared.engine.handlers.promotion import register_model_version
from shared.engine.handlers.tags import notice, set_run_tags, set_version_tags
from shared.engine.results import Result
from shared.model import Run
from shared.tracking.gateway import TrackingGateway

A = TypeVar("A", bound=Action)
A_contra = TypeVar("A_contra", bound=Action, contravariant=True)
Handler = Callable[[TrackingGateway, Action], Result]


class StagedHandler(Protocol[A_contra]):
    """A batch of one action type in stages: `read` every target run at once, `begin` each
    action, `read` again the runs of those begun, `end` each of them.

    `begin` and `end` get the run as the read found it, or None when it did not (a stage then
    reads its run alone). The executor runs each stage of each action as it runs a handler
    (errors recorded, throttled, journaled); a stage that must be tried again is tried as the
    whole action, by its entry in `HANDLERS` (a failed stage takes back what it wrote).
    """

    def read(self, gateway: TrackingGateway, actions: Sequence[A_contra]) -> Mapping[str, Run]:
        """The target runs as they are now, by run id, in as few requests as the server allows."""
        ...

    def begin(self, gateway: TrackingGateway, action: A_contra, run: Run | None) -> Result | None:
        """The action's result when it ends here; None when begun (its `end` follows)."""
        ...

    def end(self, gateway: TrackingGateway, action: A_contra, run: Run | None) -> Result: ...

    def abandon(self, gateway: TrackingGateway, action: A_contra) -> None:
        """Take back what `begin` wrote for an action whose `end` will not come (raises
        when the server refuses)."""
        ...


def _entry(
    action_type: type[A], fn: Callable[[TrackingGateway, A], Result]
) -> tuple[type[Action], Handler]:
    # mypy checks here that `fn` takes `action_type`; the table then holds it by its base type.
    return action_type, cast(Handler, fn)


def _staged(
    action_type: type[A], handler: StagedHandler[A]
) -> tuple[type[Action], StagedHandler[Action]]:
    return action_type, cast(StagedHandler[Action], handler)


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
STAGED: Mapping[type[Action], StagedHandler[Action]] = dict((_staged(DeleteRun, DELETION),))
