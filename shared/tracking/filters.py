"""MLflow's search filter grammar for a `RunQuery`, and the same query checked on the client.

Pure (no MLflow import). The server filter may be looser than the query (a clause the server
refused, a value the grammar cannot hold); `matches` is always the full check.
"""

from __future__ import annotations

from datetime import datetime

from shared import tags as T
from shared.model import Run
from shared.tracking.capabilities import Capabilities
from shared.tracking.gateway import RunQuery


def to_ms(value: datetime) -> int:
    """Milliseconds since the epoch, MLflow's unit for run times."""
    return int(value.timestamp() * 1000)


def quote(value: str) -> str | None:
    """A string literal for an MLflow filter; None when the value holds both quote kinds.

    MLflow's filter grammar has no escape for a quote inside a literal, so such a value
    cannot be sent: callers then send a looser filter and compare on the client.
    """
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return None


def equals(field: str, value: str) -> str | None:
    """`field = <literal>`, or None when the value cannot be written as a literal."""
    literal = quote(value)
    return None if literal is None else f"{field} = {literal}"


def child_runs(experiment_id: str, parent_run_id: str) -> RunQuery:
    """The runs whose parent is `parent_run_id`: MLflow links a child by its parent tag."""
    return RunQuery(experiment_id=experiment_id, tag_equals={T.PARENT_RUN_ID: parent_run_id})


def attribute_clauses(query: RunQuery, status: str | None, caps: Capabilities) -> list[str]:
    """The status and time clauses of one status's search, those the server accepts."""
    clauses: list[str] = []
    if status is not None and caps.status_filters:
        clauses.append(f"attributes.status = '{status}'")
    if not caps.time_filters:
        return clauses
    if query.finished_after is not None:
        clauses.append(f"attributes.end_time >= {to_ms(query.finished_after)}")
    if query.finished_before is not None:
        # Not end_time: a run without one counts by its start, and end >= start, so
        # "started before" is the condition the server can check for both kinds.
        clauses.append(f"attributes.start_time < {to_ms(query.finished_before)}")
    return clauses


def server_filter(query: RunQuery, status: str | None, caps: Capabilities) -> str:
    """The filter string of one status's search (MLflow has no IN on status)."""
    clauses = attribute_clauses(query, status, caps)
    if not caps.tag_filters:
        return " and ".join(clauses)
    for key, value in (query.tag_equals or {}).items():
        # A value the grammar cannot hold is left to the client check (`matches`).
        clause = equals(f"tags.`{key}`", value)
        if clause is not None:
            clauses.append(clause)
    for key in sorted(query.tags_present or ()):
        # LIKE '%' matches any value; a run without the tag has no row to match.
        clauses.append(f"tags.`{key}` LIKE '%'")
    return " and ".join(clauses)


def matches(run: Run, query: RunQuery) -> bool:
    """Whether `run` meets the query's statuses, times and tags (not its experiment or view)."""
    if query.statuses is not None and run.status not in query.statuses:
        return False
    finished = run.finished_at
    if query.finished_before is not None and (
        finished is None or finished >= query.finished_before
    ):
        return False
    # The end only, as the server's `end_time >=` clause: a run without one (still running,
    # or an end the server never recorded) has not finished after anything.
    ended = run.end_time
    if query.finished_after is not None and (ended is None or ended < query.finished_after):
        return False
    if query.tags_present and not all(k in run.tags for k in query.tags_present):
        return False
    if query.tag_equals:
        return all(run.tags.get(k) == v for k, v in query.tag_equals.items())
    return True
