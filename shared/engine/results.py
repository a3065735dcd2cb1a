"""What a handler reports back, typed: normally `applied`; a handler may find nothing to do.

`json_details` is the one place a result becomes strings (added to the action's details).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["applied", "planned", "skipped", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("applied", "planned", "skipped", "failed")


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome = "applied"
    reason: str | None = None

    def json_details(self) -> dict[str, str]:
        return {}


APPLIED = Result()


@dataclass(frozen=True, slots=True)
class Registered(Result):
    """The run's model version now carries the alias (`alias_set_as` says how).

    `run_tagged`: the run carries `governance.promoted_to` (written by this invocation), so no
    later invocation promotes it again; its card then needs no mark on the version.
    """

    version: str = ""
    alias_set_as: str = "alias"
    source: str = ""
    run_tagged: bool = False

    def json_details(self) -> dict[str, str]:
        return {"version": self.version, "alias_set_as": self.alias_set_as, "source": self.source}


@dataclass(frozen=True, slots=True)
class Overtaken(Result):
    """The alias moved meanwhile to a version as good or better: left there."""

    current_version: str = ""

    def json_details(self) -> dict[str, str]:
        return {"current_version": self.current_version}


@dataclass(frozen=True, slots=True)
class RestoreUnsupported(Result):
    """The server cannot restore deleted runs at all (trying the others would say it again)."""

    def json_details(self) -> dict[str, str]:
        return {"unsupported": "true"}
