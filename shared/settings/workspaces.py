"""Azure ML workspaces as settings name them: `Workspace` (coordinates, equal whatever the case of
its ARM id), `Scope` (a subscription or resource group whose workspaces are discovered), and the
parsers of the workspace settings (coordinates, ARM ids, the list of ARM ids, the scope).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from shared.settings.endpoints import guid
from shared.settings.parse import csv, is_blank

PROVIDER = "Microsoft.MachineLearningServices"
# ARM's rules: resource group names are letters, digits, `-_.()`, at most 90, not ending in `.`;
# workspace names match `^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$` (the workspaces resource schema).
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$")
_WORKSPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,32}$")
# ARM ids are case-insensitive; Azure itself returns `resourcegroups` in some answers.
_WORKSPACE_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)
_SCOPE = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)(?:/resourceGroups/(?P<group>[^/]+))?/?$",
    re.IGNORECASE,
)
# An `azureml://` tracking URI carries its workspace's ARM id as its path, after the API
# version: azureml://<region>.api.azureml.ms/mlflow/v1.0/subscriptions/…/workspaces/<name>
# (learn.microsoft.com/azure/machine-learning/how-to-use-mlflow-configure-tracking, "Manual").
_IN_TRACKING_URI = re.compile(
    r"^azureml://[^/]+/mlflow/v[\d.]+(?P<id>/subscriptions/[^?#]+?)/?(?:[?#].*)?$", re.IGNORECASE
)
_ID_FORM = (
    "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
    "Microsoft.MachineLearningServices/workspaces/{name}"
)


class Coordinates(Protocol):
    """Anything that names a workspace by its coordinates (a `Workspace`, an SDK reference)."""

    @property
    def subscription_id(self) -> str: ...
    @property
    def resource_group(self) -> str: ...
    @property
    def name(self) -> str: ...


@dataclass(frozen=True, slots=True, eq=False)
class Workspace:
    """An Azure ML workspace's coordinates, from the settings, an event's topic or discovery.

    ARM ids compare case-insensitively, so two spellings of one workspace are equal and hash
    alike; the spelling given is kept for display.
    """

    subscription_id: str
    resource_group: str
    name: str

    @classmethod
    def from_arm_id(cls, arm_id: str) -> Workspace:
        """The workspace an ARM id names, each part checked like its own setting (ValueError)."""
        found = workspace_id(arm_id)
        if found is None:
            raise ValueError("not a workspace ARM id: empty")
        return found

    @classmethod
    def of(cls, coordinates: Coordinates) -> Workspace:
        """A `Workspace` from any object with the three coordinates (as Azure reports them)."""
        if isinstance(coordinates, Workspace):
            return coordinates
        return cls(coordinates.subscription_id, coordinates.resource_group, coordinates.name)

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{PROVIDER}/workspaces/{self.name}"
        )

    @property
    def resource_id(self) -> str:
        """The ARM id (the name azure-mgmt and Bicep give it)."""
        return self.arm_id

    @property
    def key(self) -> str:
        """The ARM id in lower case: what equality, hashing and lookups compare."""
        return self.arm_id.lower()

    def matches(self, glob: str) -> bool:
        """A policy-file glob: on the ARM id when it holds a `/`, else on the name; any case."""
        target = self.key if "/" in glob else self.name.lower()
        return fnmatch.fnmatchcase(target, glob.lower())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Workspace):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


@dataclass(frozen=True, slots=True, eq=False)
class Scope:
    """A subscription, or a resource group in one, whose workspaces are all governed."""

    subscription_id: str
    resource_group: str | None = None

    @property
    def arm_id(self) -> str:
        base = f"/subscriptions/{self.subscription_id}"
        return (
            base if self.resource_group is None else f"{base}/resourceGroups/{self.resource_group}"
        )

    def contains(self, workspace: Workspace) -> bool:
        if workspace.subscription_id.lower() != self.subscription_id.lower():
            return False
        return self.resource_group is None or (
            workspace.resource_group.lower() == self.resource_group.lower()
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scope):
            return NotImplemented
        return self.arm_id.lower() == other.arm_id.lower()

    def __hash__(self) -> int:
        return hash(self.arm_id.lower())


def resource_group(value: object) -> str | None:
    if is_blank(value):
        return None
    text = str(value).strip()
    if not _RESOURCE_GROUP.match(text):
        raise ValueError(
            f"not a resource group name: {text!r} (letters, digits, -_.(), at most 90, "
            "not ending in '.')"
        )
    return text


def workspace_name(value: object) -> str | None:
    if is_blank(value):
        return None
    text = str(value).strip()
    if not _WORKSPACE.match(text):
        raise ValueError(
            f"not a workspace name: {text!r} (3-33 letters, digits, '-' or '_', "
            "starting with a letter or digit)"
        )
    return text


def _required(parse: Callable[[object], str | None], text: str) -> str:
    """A part the pattern found non-blank, through its own parser (which then returns text)."""
    parsed = parse(text)
    assert parsed is not None
    return parsed


def workspace_id(value: object) -> Workspace | None:
    """`/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/
    workspaces/{name}`, parsed into coordinates (each part checked like its own setting)."""
    if is_blank(value):
        return None
    text = str(value).strip()
    match = _WORKSPACE_ID.match(text)
    if not match:
        raise ValueError(f"not a workspace ARM id: expected {_ID_FORM}, got {text!r}")
    return Workspace(
        _required(guid, match["subscription"]),
        _required(resource_group, match["group"]),
        _required(workspace_name, match["name"]),
    )


def named_by(text: str | None) -> Workspace | None:
    """The workspace an ARM id names, its parts unchecked (an event's topic is only compared
    with the estate, never trusted); None when it is no workspace id."""
    match = _WORKSPACE_ID.match((text or "").strip())
    return (
        None if match is None else Workspace(match["subscription"], match["group"], match["name"])
    )


def workspace_id_text(value: object) -> str | None:
    """The ARM id as given, once `workspace_id` accepts it."""
    return None if workspace_id(value) is None else str(value).strip()


def workspace_ids(value: object) -> tuple[str, ...]:
    """A comma-separated list of workspace ARM ids, each checked, none given twice (in any case)."""
    items = csv(value)
    seen: dict[str, int] = {}
    for index, item in enumerate(items, start=1):
        try:
            workspace = workspace_id(item)
        except ValueError as exc:
            raise ValueError(f"item {index} of {len(items)}: {exc}") from None
        assert workspace is not None  # csv keeps no blank item
        if workspace.key in seen:
            raise ValueError(
                f"item {index} of {len(items)} repeats item {seen[workspace.key]} "
                f"({workspace.name}): list each workspace once"
            )
        seen[workspace.key] = index
    return items


def scope(value: object) -> Scope | None:
    """`/subscriptions/{guid}` or `/subscriptions/{guid}/resourceGroups/{group}`."""
    if is_blank(value):
        return None
    text = str(value).strip()
    match = _SCOPE.match(text)
    if not match:
        raise ValueError(
            "not a discovery scope: expected /subscriptions/{subscription} or "
            f"/subscriptions/{{subscription}}/resourceGroups/{{group}}, got {text!r}"
        )
    group = match["group"]
    return Scope(
        _required(guid, match["subscription"]),
        None if group is None else _required(resource_group, group),
    )


def scope_text(value: object) -> str | None:
    """The scope as given, once `scope` accepts it."""
    return None if scope(value) is None else str(value).strip()


def in_tracking_uri(uri: str | None) -> Workspace | None:
    """The workspace an `azureml://` tracking URI points at; None for any other URI, or one
    whose path does not name a valid workspace (it is still used as given)."""
    match = _IN_TRACKING_URI.match(uri or "")
    if match is None:
        return None
    try:
        return workspace_id(match["id"])
    except ValueError:
        return None
