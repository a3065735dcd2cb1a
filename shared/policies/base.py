"""What a run-level policy is: pure `evaluate(run, context) -> actions`, facts fetched before."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.engine.actions import Action
from shared.model import Experiment, Run
from shared.settings import Policy
from shared.tracking.gateway import TrackingGateway


@dataclass(frozen=True, slots=True)
class RunContext:
    """Everything a policy may consult besides the run; the clock comes in here."""

    now: datetime
    experiment: Experiment
    policy: Policy


class RunPolicy(Protocol):
    """A policy applied to one finished run, from an event or from the sweep's catch-up."""

    name: str

    def enabled(self, policy: Policy) -> bool: ...

    def facts(self, run: Run, context: RunContext, gateway: TrackingGateway) -> object:
        """Read-only lookups the decision needs (none for most policies)."""
        ...

    def evaluate(self, run: Run, context: RunContext, facts: object) -> list[Action]: ...
