"""MLflow's search filter grammar for a `RunQuery`, and the same query checked on the client.

Pure (no MLflow import). The server filter may be looser than the query (a clause the server
refused, a value the grammar cannot hold); `matches` is always the full check.

The grammar is MLflow 3.15's (`mlflow/utils/search_utils.py`, `SearchUtils`): clauses joined
by AND only; `IN (...)` on the `run_id` attribute alone (`validate_list_supported` refuses a
list for any other attribute, `status` included, and tag values must be single literals);
`IS NULL` / `IS NOT NULL` on tags; run ids in a list are kept only when lower case
(`_parse_run_ids`, because MySQL's IN ignores case), so other ids are looked up one by one.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from datetime import datetime

from shared import tags as T
from shared.model import Run
from shared.tracking.capabilities import Capabilities
from shared.tracking.gateway import RunQuery

# What `give_up` may answer besides the filters, for the adapter to change its strategy.
SEVERAL_EXPERIMENTS = "several experiments in one search"
RUN_ID_LISTS = "run id lists"

# Ids MLflow's `_parse_run_ids` keeps (`str.islower()`) and a Python literal holds as is.
_LISTABLE_ID = re.compile(r"^[0-9a-z_\-]*[a-z][0-9a-z_\-]*$")


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


def listable(run_id: str) -> bool:
    """Whether MLflow keeps `run_id` in an `IN (...)` list (else it must be asked alone)."""
    return bool(_LISTABLE_ID.match(run_id))


def in_list(field: str, run_ids: Iterable[str]) -> str:
    """`field IN ('a', 'b')` for ids that are all `listable`."""
    return f"{field} IN ({', '.join(repr(i) for i in sorted(run_ids))})"


def child_runs(experiment_id: str, parent_run_id: str) -> RunQuery:
    """The runs whose parent is `parent_run_id`: MLflow links a child by its parent tag."""
    return RunQuery(experiment_id=experiment_id, parent_run_ids=frozenset({parent_run_id}))


def children_of(
    experiment_ids: Collection[str], parent_run_ids: Collection[str]
) -> RunQuery | None:
    """The active children of any of these parents, in one query; None when none is asked."""
    if not experiment_ids or not parent_run_ids:
        return None
    first = RunQuery(experiment_id="", parent_run_ids=frozenset(parent_run_ids))
    return first.across(sorted(experiment_ids))


def by_parent(children: Iterable[Run]) -> dict[str, list[Run]]:
    """Children grouped under their parent's id, in the order they came."""
    grouped: dict[str, list[Run]] = {}
    for child in children:
        if child.parent_run_id is not None:
            grouped.setdefault(child.parent_run_id, []).append(child)
    return grouped


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


def run_id_clause(query: RunQuery, caps: Capabilities) -> str | None:
    """`attributes.run_id IN (...)` when every id of the query can be listed."""
    ids = query.run_ids
    if not ids or not caps.run_id_filter or not all(listable(i) for i in ids):
        return None
    return in_list("attributes.run_id", ids)


def tag_clauses(query: RunQuery, caps: Capabilities) -> list[str]:
    """The tag clauses the server accepts: values, presence, and the parent link."""
    if not caps.tag_filters:
        return []
    clauses: list[str] = []
    wanted = dict(query.tag_equals or {})
    present = set(query.tags_present or ())
    parents = query.parent_run_ids
    if parents is not None and len(parents) == 1:
        wanted.setdefault(T.PARENT_RUN_ID, next(iter(parents)))
    elif parents:
        # No list for tag values: any child, matched to its parent on the client.
        present.add(T.PARENT_RUN_ID)
    for key, value in wanted.items():
        # A value the grammar cannot hold is left to the client check (`matches`).
        clause = equals(f"tags.`{key}`", value)
        if clause is not None:
            clauses.append(clause)
    for key in sorted(present - wanted.keys()):
        # LIKE '%' matches any value too, for a server without IS NOT NULL.
        test = "IS NOT NULL" if caps.tag_null_filter else "LIKE '%'"
        clauses.append(f"tags.`{key}` {test}")
    return clauses


def server_filter(query: RunQuery, status: str | None, caps: Capabilities) -> str:
    """The filter string of one status's search (MLflow has no IN on status: see above)."""
    clauses = attribute_clauses(query, status, caps)
    by_id = run_id_clause(query, caps)
    if by_id is not None:
        clauses.append(by_id)
    return " and ".join(clauses + tag_clauses(query, caps))


def give_up(
    query: RunQuery, status: str | None, caps: Capabilities, refusal: str, *, experiments: int
) -> str | None:
    """Turn off the next feature a refused search (over `experiments` ids) used, the most
    doubtful first; what, or None when the search used nothing that could be given up (the
    refusal is then an error)."""
    several = experiments > 1 and caps.multi_experiment_search
    if several and "experiment" in refusal.lower():
        caps.multi_experiment_search = False
        return SEVERAL_EXPERIMENTS
    if attribute_clauses(query, status, caps):
        caps.refuse_attribute_filters()
        return "status and time filters"
    if run_id_clause(query, caps) is not None:
        caps.run_id_filter = False
        return RUN_ID_LISTS
    tags = tag_clauses(query, caps)
    if caps.tag_null_filter and any(c.endswith("IS NOT NULL") for c in tags):
        caps.tag_null_filter = False
        return "IS NOT NULL"
    if tags:
        caps.tag_filters = False
        return "tag filters"
    if several:
        caps.multi_experiment_search = False
        return SEVERAL_EXPERIMENTS
    return None


def matches(run: Run, query: RunQuery) -> bool:
    """Whether `run` meets the query's statuses, times, ids and tags (not its experiment or
    view, which every search names): `RunQuery.matches`."""
    return query.matches(run)


def unfiltered(query: RunQuery, caps: Capabilities) -> bool:
    """Whether the searches of `query` go to the server with no filter at all, so that they
    read every run in view of their experiments (what `RunQuery.overhear` hears)."""
    if query.run_ids is not None or query.statuses == frozenset():
        return False  # ids are looked up by id; no status at all is not searched
    status = min(query.statuses) if query.statuses else None
    return not server_filter(query, status, caps)
