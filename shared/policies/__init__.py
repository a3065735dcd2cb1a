"""The policy registry: the run-level policies in the order they apply.

`cleanup-failed-runs` is not here: it works on the sweep's candidates, not on one run; nor is
the failed-run alert, which answers a run's failure rather than governing the run.
"""

from __future__ import annotations

from shared.policies.base import PolicyEntry, entry
from shared.policies.promote_to_registry import PromoteToRegistry
from shared.policies.require_tags import RequireTags

# Order matters: promotion needs the compliance that require-tags decides first.
RUN_POLICIES: tuple[PolicyEntry, ...] = (entry(RequireTags()), entry(PromoteToRegistry()))
