"""Every wait figure mlgov uses (timeouts, deadlines, the `Retry-After` cap) and the deadline
scopes that carry them to each request. No other module holds a wait figure of its own.

docs/reliability.md states each figure and why; `MLGOV_*_SECONDS` variables override them.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from functools import cache

from shared.errors import SettingsError, TrackingUnavailable

# -- per HTTP request ------------------------------------------------------------------------
# MLflow's REST client reads these variables on every request (mlflow/utils/rest_utils.py,
# `http_request`); `shared.tracking.client_defaults` sets them where the user has not. It parses
# the timeout and the backoff factor as ints (mlflow/environment_variables.py).
READ_TIMEOUT_S = 10  # MLFLOW_HTTP_REQUEST_TIMEOUT: one socket read (or connect) at most
HTTP_MAX_RETRIES = 2  # MLFLOW_HTTP_REQUEST_MAX_RETRIES (MLflow's own default is 7)
# MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: with urllib3 2 the first retry does not wait and the
# second waits factor * 2 s, so 1 keeps the pauses at ~2 s (MLflow's default 2 waits 4 s).
HTTP_BACKOFF_FACTOR = 1
# Connecting is quick or hopeless: a SYN nobody answers is given up on sooner than a read.
CONNECT_TIMEOUT_S = 5.0
# The whole of one HTTP request: connect, send, every retry and pause, the answer to its last
# byte. A socket timeout alone never fires for a server trickling a byte at a time.
REQUEST_DEADLINE_S = 15.0
# A `Retry-After` up to this is waited for (within the deadlines); beyond it the request fails
# at once as `TrackingUnavailable` (urllib3 alone would wait up to 6 h: `retry_after_max`).
RETRY_AFTER_CAP_S = 5.0

# -- per invocation ----------------------------------------------------------------------------
# Event Grid waits 30 s for an answer; then it counts a failure and redelivers. The event's
# tracking work gets 20 s, its card up to 8 s: an answer (success or failure) inside 30 s.
EVENT_DEADLINE_S = 20.0
NOTIFY_BUDGET_S = 8.0
# host.json's functionTimeout is 10 min: a sweep (or summary) stops calling the server after
# 8 min and reports what is left as failed, so the timer ends cleanly and the next one resumes.
SWEEP_DEADLINE_S = 480.0
SUMMARY_DEADLINE_S = 240.0
RESTORE_DEADLINE_S = 480.0
# The sweep's shared throttle (`shared.engine.throttle`): a 429 pauses every worker for the
# server's Retry-After, else a doubling backoff from 1 s, each pause at most 60 s and never past
# the invocation's deadline; an action is tried 4 times in all.
THROTTLE_ATTEMPTS = 4
THROTTLE_BACKOFF_S = 1.0
THROTTLE_MAX_PAUSE_S = 60.0


@dataclass(frozen=True, slots=True)
class Budget:
    """The figures one App works with (defaults above; `from_environ` reads overrides)."""

    request_s: float = REQUEST_DEADLINE_S
    retry_after_cap_s: float = RETRY_AFTER_CAP_S
    event_s: float = EVENT_DEADLINE_S
    notify_s: float = NOTIFY_BUDGET_S
    sweep_s: float = SWEEP_DEADLINE_S
    summary_s: float = SUMMARY_DEADLINE_S
    restore_s: float = RESTORE_DEADLINE_S

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Budget:
        """Defaults, each overridden by `MLGOV_<FIELD>_SECONDS` where set (e.g.
        `MLGOV_EVENT_SECONDS`); a value that is not a positive number is a `SettingsError`."""
        values: dict[str, float] = {}
        for item in fields(cls):
            name = env_name(item.name)
            raw = environ.get(name, "").strip()
            if not raw:
                continue
            try:
                value = float(raw)
            except ValueError:
                raise SettingsError(name, f"not a number of seconds: {raw[:40]!r}") from None
            if not math.isfinite(value) or value <= 0:
                raise SettingsError(name, f"must be a positive number of seconds, not {raw!r}")
            values[item.name] = value
        return cls(**values)


def env_name(field_name: str) -> str:
    """`request_s` -> `MLGOV_REQUEST_SECONDS`."""
    return f"MLGOV_{field_name.removesuffix('_s').upper()}_SECONDS"


@cache
def default_budget() -> Budget:
    """The process environment's figures, read once (`reset_default_budget` forgets them)."""
    return Budget.from_environ(os.environ)


def reset_default_budget() -> None:
    default_budget.cache_clear()


# -- deadline scopes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """A deadline (monotonic seconds) and what set it; nested scopes only ever shorten it.

    `binding` is the scope whose own limit is the effective one, so a message can say which
    figure ran out (the request's 15 s, or the invocation's 20 s).
    """

    label: str
    limit_s: float
    deadline: float
    budget: Budget
    parent: Scope | None = None

    @property
    def binding(self) -> Scope:
        if self.parent is not None and self.parent.deadline <= self.deadline:
            return self.parent.binding
        return self

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def describe(self) -> str:
        """The figure that binds, e.g. "the request's 15 s deadline"."""
        scope = self.binding
        return f"the {scope.label}'s {scope.limit_s:g} s deadline"

    def why_expired(self) -> str:
        return f"{self.describe()} passed"


_CURRENT: ContextVar[Scope | None] = ContextVar("mlgov_deadline", default=None)


def current() -> Scope | None:
    return _CURRENT.get()


def active_budget() -> Budget:
    """The budget of the innermost scope, else the process environment's."""
    scope = _CURRENT.get()
    return scope.budget if scope is not None else default_budget()


@contextmanager
def deadline(label: str, seconds: float, budget: Budget | None = None) -> Iterator[Scope]:
    """Run the block under a deadline `seconds` from now (never later than an enclosing one).

    Scopes live in a context variable: an invocation on one thread never shortens another's.
    """
    parent = _CURRENT.get()
    budget = budget or (parent.budget if parent is not None else default_budget())
    end = time.monotonic() + seconds
    if parent is not None:
        end = min(end, parent.deadline)
    scope = Scope(label=label, limit_s=seconds, deadline=end, budget=budget, parent=parent)
    token = _CURRENT.set(scope)
    try:
        yield scope
    finally:
        _CURRENT.reset(token)


def check(what: str) -> None:
    """Raise `TrackingUnavailable` when the current deadline has already passed: the call
    `what` is not started (the invocation fails and is retried, nothing is half done)."""
    scope = _CURRENT.get()
    if scope is not None and scope.expired():
        raise TrackingUnavailable(f"{what} not attempted: {scope.why_expired()}")
