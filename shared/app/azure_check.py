"""What `mlgov check` says about Azure: the credential the app uses, whether it gets a token
for the workspace, and the tracking URI resolved from the workspace's coordinates (redacted).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.app.azure import (
    AzureServices,
    process_azure,
    tracking_needs_azure,
    workspace_mode,
    workspace_of,
)
from shared.app.outcomes import EXIT_INVALID, EXIT_OK
from shared.azure.credential import ARM_SCOPE, EVENTGRID_SCOPE
from shared.errors import GovernanceError, TrackingUnavailable
from shared.settings import Settings, display_uri

_WIDTH = 36


@dataclass(frozen=True, slots=True)
class AzureCheck:
    """The Azure part of `check`; `needed` is False where the settings name nothing Azure."""

    needed: bool = False
    credential: str = ""
    scope: str = ""
    token_ok: bool = False
    token_message: str = ""
    tracking_uri: str | None = None
    resolved: bool = False
    problems: tuple[str, ...] = field(default=())
    # Whether tracking itself needs Azure: then a missing token is a configuration error.
    blocking: bool = False

    @property
    def exit_code(self) -> int:
        """2 when tracking needs Azure and the identity or the workspace is not usable."""
        return EXIT_INVALID if self.blocking and self.problems else EXIT_OK

    def as_json(self) -> dict[str, object]:
        """Keys merged into `check --json`: `azure`, and where the URI was resolved from the
        workspace, the effective `tracking_uri` (the embedded store is then not used)."""
        if not self.needed:
            return {}
        merged: dict[str, object] = {
            "azure": {
                "credential": self.credential,
                "token": {"ok": self.token_ok, "scope": self.scope, "message": self.token_message},
                "tracking_uri": self.tracking_uri,
                "tracking_uri_resolved": self.resolved,
                "problems": list(self.problems),
            }
        }
        if self.resolved:
            merged["tracking_uri"] = self.tracking_uri
            merged["embedded_store"] = False
        return merged

    def lines(self) -> list[str]:
        if not self.needed:
            return []
        token = "ok" if self.token_ok else "NOT available"
        lines = [
            "Azure identity and workspace:",
            _line("credential", self.credential),
            _line("token", f"{token} (scope {self.scope})"),
        ]
        if self.tracking_uri is not None:
            how = "resolved from the workspace" if self.resolved else "MLFLOW_TRACKING_URI"
            lines.append(_line("tracking URI", f"{self.tracking_uri}  ({how})"))
        lines += [f"Problem: {problem}" for problem in self.problems]
        return lines

    def text(self) -> str:
        lines = self.lines()
        return "\n" + "\n".join(lines) if lines else ""


def _line(name: str, value: str) -> str:
    return f"  {name:<{_WIDTH}} {value}"


def azure_check(settings: Settings, azure: AzureServices | None = None) -> AzureCheck:
    """Probe the credential and resolve the workspace's tracking URI, as the verbs would.

    Bounded by the probe's timeout; never raises for an Azure failure (it is a problem line).
    """
    blocking = tracking_needs_azure(settings)
    if not blocking and not settings.events_topic_endpoint:
        return AzureCheck()
    services = azure or process_azure(settings)
    # The workspace's scope when tracking goes through Azure; else the events topic's.
    scope = ARM_SCOPE if blocking else EVENTGRID_SCOPE
    probe = services.probe(scope)
    problems: list[str] = [] if probe.ok else [probe.message]
    uri: str | None = None
    if settings.tracking_uri:
        uri = display_uri(settings.tracking_uri)
    if blocking and probe.ok:
        try:
            found = services.tracking_uri(settings)
        except (GovernanceError, TrackingUnavailable, ValueError) as exc:
            where = workspace_of(settings)
            problems.append(f"workspace {where.arm_id if where else '?'}: {exc}")
        else:
            uri = display_uri(found)
    return AzureCheck(
        needed=True,
        credential=services.describe(),
        scope=scope,
        token_ok=probe.ok,
        token_message=probe.message,
        tracking_uri=uri,
        resolved=workspace_mode(settings) and uri is not None,
        problems=tuple(problems),
        blocking=blocking,
    )
