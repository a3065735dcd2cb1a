"""The invocation applying actions: its id, written on the model versions it registers, and the
moment by which it has certainly ended, so that another invocation can tell an owner that may
still announce its promotion from one that is gone (`shared.engine.handlers.promotion`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from shared import budget


@dataclass(frozen=True, slots=True)
class Invocation:
    """`started` and `ends_by` are on the App's clock (the use case's `now`)."""

    id: str
    started: datetime
    ends_by: datetime

    @classmethod
    def begin(cls, now: datetime | None = None) -> Invocation:
        """A new invocation starting `now`, under the current deadline scope.

        It ends by its deadline plus the budget of its card: the announcement and its mark
        come after the tracking work. Outside any scope (a use case called directly), the
        longest operation's figures bound it.
        """
        start = now if now is not None else datetime.now(UTC)
        figures = budget.active_budget()
        scope = budget.current()
        work = max(0.0, scope.remaining()) if scope is not None else figures.sweep_s
        return cls(uuid4().hex, start, start + timedelta(seconds=work + figures.notify_s))


_CURRENT: ContextVar[Invocation | None] = ContextVar("mlgov_invocation", default=None)


def current() -> Invocation:
    """The invocation whose executor is applying the action; a fresh one for a handler
    called on its own (it then owns what it registers)."""
    found = _CURRENT.get()
    return found if found is not None else Invocation.begin()


@contextmanager
def running(invocation: Invocation) -> Iterator[None]:
    token = _CURRENT.set(invocation)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def parse_moment(text: str | None) -> datetime | None:
    """An ISO 8601 moment as this module writes it; None when missing or unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
