"""The estate: the workspaces one deployment governs, built from the settings (the single
workspace, `GOVERNANCE_WORKSPACES`, the workspaces discovered in `GOVERNANCE_WORKSPACE_SCOPE`),
and the one place that decides whether an event's workspace or a queue message's is governed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from shared.redact import redact_uri
from shared.settings.workspaces import Coordinates, Scope, Workspace, in_tracking_uri, named_by

if TYPE_CHECKING:
    from shared.settings import Settings

__all__ = [
    "DEFAULT_NAME",
    "Discover",
    "Estate",
    "Member",
    "NotInEstate",
    "Scope",
    "Source",
    "Workspace",
]

# Where a member came from: the one workspace of a single-workspace deployment (its tracking
# URI, coordinates or ARM id), `GOVERNANCE_WORKSPACES`, or discovery in the scope.
Source = Literal["single", "list", "scope"]
# A discovery: the scope's ARM id in, the workspaces found there out (azure-ai-ml's
# `MLClient.workspaces.list` behind it in production; its references fit `Coordinates`).
Discover = Callable[[str], Iterable[Coordinates]]
DEFAULT_NAME = "default"
_SOURCES: dict[Source, str] = {
    "single": "the single workspace: MLFLOW_TRACKING_URI, its coordinates or AZURE_ML_WORKSPACE_ID",
    "list": "listed in GOVERNANCE_WORKSPACES",
    "scope": "discovered in GOVERNANCE_WORKSPACE_SCOPE",
}


class NotInEstate(LookupError):
    """A workspace named by a user (`--workspace`) that the estate does not hold."""


@dataclass(frozen=True, slots=True)
class Member:
    """One governed workspace, or the "default" member: a tracking URI that names no Azure ML
    workspace (any MLflow server, the embedded store).

    `tracking_uri` is known from the settings (`MLFLOW_TRACKING_URI`, which serves the single
    workspace), else None: the composition root resolves it from the workspace.
    """

    workspace: Workspace | None
    source: Source
    tracking_uri: str | None = None

    @property
    def key(self) -> str:
        """Stable and case-free: the lower-case ARM id, or `default`."""
        return DEFAULT_NAME if self.workspace is None else self.workspace.key

    @property
    def id(self) -> str:
        """The ARM id, or (default member) the tracking URI without credentials."""
        if self.workspace is not None:
            return self.workspace.arm_id
        return redact_uri(self.tracking_uri or "")

    @property
    def name(self) -> str:
        return DEFAULT_NAME if self.workspace is None else self.workspace.name

    @property
    def arm_id(self) -> str | None:
        return None if self.workspace is None else self.workspace.arm_id

    @property
    def origin(self) -> str:
        """Where it came from, in words."""
        return _SOURCES[self.source]


@dataclass(frozen=True, slots=True)
class Estate:
    """The governed members, in order: the single workspace unless listed, the listed ones,
    then those discovered in the scope (`discovered` says whether the scope was read).

    Invariant (kept by the settings' rules): either every member is a workspace, or the estate
    is one default member.
    """

    members: tuple[Member, ...]
    scope: Scope | None = None
    discovered: bool = False
    _index: dict[str, Member] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {member.key: member for member in self.members})
        if len(self._index) != len(self.members):
            raise ValueError("an estate lists each workspace once")

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    @property
    def workspaces(self) -> tuple[Workspace, ...]:
        return tuple(m.workspace for m in self.members if m.workspace is not None)

    @property
    def default(self) -> Member | None:
        """The lone default member of a deployment that names no workspace, else None."""
        if len(self.members) == 1 and self.members[0].workspace is None:
            return self.members[0]
        return None

    def find(self, arm_id_or_topic: str | None) -> Member | None:
        """The member an event's `topic` / `source` (the workspace's ARM id, in both
        schemas), or a queue message, names; None outside.

        An exact match of the ARM id, in any case. A workspace the scope holds is governed
        even when discovery has not listed it yet (created since the last sweep). A default
        estate has nothing to compare with: it answers every event, as a single deployment
        always did.
        """
        if self.default is not None:
            return self.default
        workspace = named_by(arm_id_or_topic)
        if workspace is None:
            return None
        member = self._index.get(workspace.key)
        if member is not None:
            return member
        if self.scope is not None and self.scope.contains(workspace):
            return Member(workspace, "scope")
        return None

    def select(self, name_or_arm_id: str) -> Member:
        """The member a user names (`--workspace`): its ARM id, or its name where only one
        member has it (any case). NotInEstate says what the estate holds."""
        wanted = name_or_arm_id.strip()
        default = self.default
        if default is not None and wanted in (default.id, DEFAULT_NAME):
            return default
        if default is None and named_by(wanted) is not None:
            member = self.find(wanted)
            if member is not None:
                return member
        named = [m for m in self.members if m.name.lower() == wanted.lower()]
        if len(named) == 1:
            return named[0]
        known = ", ".join(m.name for m in self.members) or "none"
        if named:
            raise NotInEstate(
                f"{wanted!r} names {len(named)} workspaces: give the ARM id "
                f"({', '.join(m.id for m in named)})"
            )
        raise NotInEstate(f"workspace {wanted!r} is not in the estate (members: {known})")

    @classmethod
    def from_settings(cls, settings: Settings, discover: Discover | None = None) -> Estate:
        """The estate the settings describe. With a scope, `discover(scope_arm_id)` lists its
        workspaces now (call this again at each sweep); without `discover` the scope is kept
        unread (`discovered` False) and `find` still admits its workspaces.

        Discovery errors propagate: the caller decides whether a sweep fails or retries.
        Workspaces discovery reports outside the scope are not admitted.
        """
        single = settings.workspace or in_tracking_uri(settings.tracking_uri)
        listed = settings.listed_workspaces
        scope = settings.scope

        def uri_of(workspace: Workspace) -> str | None:
            # MLFLOW_TRACKING_URI serves the single workspace, wherever it sits in the estate.
            return settings.tracking_uri if workspace == single else None

        members: list[Member] = []
        if single is not None and single not in listed:
            members.append(Member(single, "single", settings.tracking_uri))
        members += [Member(w, "list", uri_of(w)) for w in listed]
        if scope is not None and discover is not None:
            seen = {member.key for member in members}
            for found in discover(scope.arm_id):
                workspace = Workspace.of(found)
                if workspace.key not in seen and scope.contains(workspace):
                    seen.add(workspace.key)
                    members.append(Member(workspace, "scope", uri_of(workspace)))
        if not members and scope is None:
            members.append(Member(None, "single", settings.effective_tracking_uri()))
        return cls(tuple(members), scope, discovered=scope is not None and discover is not None)

    def describe(self) -> dict[str, object]:
        """The estate as data (`mlgov check --json`); no URI carries credentials."""
        return {
            "scope": None if self.scope is None else self.scope.arm_id,
            "discovered": self.discovered,
            "members": [
                {
                    "name": member.name,
                    "id": member.id,
                    "arm_id": member.arm_id,
                    "source": member.source,
                    "tracking_uri": (
                        None if member.tracking_uri is None else redact_uri(member.tracking_uri)
                    ),
                }
                for member in self.members
            ],
        }
