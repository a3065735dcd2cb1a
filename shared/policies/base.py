"""What a run-level policy is: typed facts read first (read-only), then a pure decision."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from shared.engine.actions import Action
from shared.model import Experiment, Run
from shared.settings import Policy
from shared.tracking.gateway import TrackingReader

F = TypeVar("F")


@dataclass(frozen=True, slots=True)
class RunContext:
    """Everything a policy may consult besides the run; the clock comes in here."""

    now: datetime
    experiment: Experiment
    policy: Policy


class RunPolicy(Protocol[F]):
    """A policy applied to one finished run, from an event or from the sweep's catch-up.

    `facts` may only read (it gets a `TrackingReader`): only the executor mutates.
    """

    name: str

    def enabled(self, policy: Policy) -> bool: ...

    def facts(self, run: Run, context: RunContext, reader: TrackingReader) -> F:
        """Read-only lookups the decision needs (none for most policies)."""
        ...

    def evaluate(self, run: Run, context: RunContext, facts: F) -> list[Action]: ...


Decide = Callable[[Run, RunContext, TrackingReader], list[Action]]


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """A run policy with its facts type sealed inside `decide` (facts, then evaluate)."""

    name: str
    enabled: Callable[[Policy], bool]
    decide: Decide


def entry(policy: RunPolicy[F]) -> PolicyEntry:
    def decide(run: Run, context: RunContext, reader: TrackingReader) -> list[Action]:
        return policy.evaluate(run, context, policy.facts(run, context, reader))

    return PolicyEntry(policy.name, policy.enabled, decide)
