"""The tag vocabulary this tool writes (a contract: docs, the summary and `restore` read it)."""

from __future__ import annotations

PREFIX = "governance."

# On runs
COMPLIANCE = "governance.compliance"
COMPLIANT = "compliant"
NONCOMPLIANT = "noncompliant"
MISSING_TAGS = "governance.missing_tags"
PROMOTED_TO = "governance.promoted_to"
DELETED_REASON = "governance.deleted_reason"
DELETED_AT = "governance.deleted_at"
# A sweep's claim on a run it is about to delete: this prefix, then the sweep's id; the value
# is when that sweep has ended (a claim left by a sweep that died expires then). Of two
# overlapping sweeps only one deletes (and reports) the run.
DELETION_CLAIM = "governance.deletion_claim."
# When the failure notice went out: a replayed event does not alert twice.
FAILURE_NOTIFIED_AT = "governance.failure_notified_at"
# Set by `mlgov restore`: the sweep leaves a restored run alone until someone removes it.
RESTORED_AT = "governance.restored_at"

# On registered model versions
SOURCE_RUN_ID = "governance.source_run_id"
METRIC = "governance.metric"
METRIC_VALUE = "governance.metric_value"
# Written instead of an alias where the registry refuses aliases (Azure ML, unverified there).
ALIAS_FALLBACK = "governance.alias"
# The invocation that registered the version, and the moment it has certainly ended by: the
# owner of the surviving version announces its promotion, another only once the owner is gone.
REGISTERED_BY = "governance.registered_by"
REGISTERED_UNTIL = "governance.registered_until"
# When the promotion card went out (written after delivery): nobody announces it again.
ANNOUNCED_AT = "governance.announced_at"

# MLflow's own
RUN_NAME = "mlflow.runName"
USER = "mlflow.user"
PARENT_RUN_ID = "mlflow.parentRunId"
