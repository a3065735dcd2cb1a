"""The policy registry: run-level policies in the order they apply, looked up by name."""

from __future__ import annotations

from shared.policies.base import RunPolicy
from shared.policies.cleanup_failed_runs import NAME as CLEANUP_FAILED_RUNS
from shared.policies.promote_to_registry import PromoteToRegistry
from shared.policies.require_tags import RequireTags

# Order matters: promotion needs the compliance that require-tags decides first.
RUN_POLICIES: tuple[RunPolicy, ...] = (RequireTags(), PromoteToRegistry())

# Every policy name, including the sweep-level ones; the CLI and errors list these.
POLICY_NAMES: tuple[str, ...] = (CLEANUP_FAILED_RUNS, *(p.name for p in RUN_POLICIES))


def get_run_policy(name: str) -> RunPolicy:
    for policy in RUN_POLICIES:
        if policy.name == name:
            return policy
    valid = ", ".join(p.name for p in RUN_POLICIES)
    raise KeyError(f"unknown policy {name!r} (valid: {valid})")
