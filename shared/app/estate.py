"""The estate's application: one App per governed workspace, built on first use and kept; events
routed by the workspace they name, sweeps of every member with bounded parallelism (or of one,
as a queue message asks), and one summary for the whole estate.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from shared.app.application import App, Clock, utcnow
from shared.app.azure import AzureServices
from shared.app.outcomes import EXIT_FAILED, EXIT_OK, EventsOutcome, Outcome
from shared.budget import Budget, default_budget
from shared.engine.report import Report, partial_of
from shared.estate import Discover, Estate, Member
from shared.notify.cards import EstateSummary, WorkspaceActivity, estate_summary_card
from shared.notify.sinks import Channel
from shared.notify.teams import Delivery
from shared.redact import redact, redact_uri
from shared.settings import Settings
from shared.tracking.gateway import TrackingGateway
from shared.usecases import notifications
from shared.usecases.summary import TOTAL_LABELS, summarize

__all__ = [
    "DEFAULT_PARALLELISM",
    "EstateApp",
    "EstateSummaryOutcome",
    "EstateSweep",
    "GatewayFactory",
    "MemberSweep",
    "event_workspace",
    "sweep_message",
    "workspace_url",
]

# The tracking gateway of one member (its tracking URI known, or resolved from the workspace).
GatewayFactory = Callable[[Member], TrackingGateway]
# Members swept at once in-process: each sweep is mostly waiting on its server, and each also
# runs its own GOVERNANCE_CONCURRENCY mutations, so a few at a time go far.
DEFAULT_PARALLELISM = 4
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MemberSweep:
    """One workspace's sweep: its outcome, or what stopped it (`error`, credentials removed)
    and, when its server went away halfway, what it had applied by then (`partial`: the
    App's partial report, `shared.engine.report.partial_of`, already logged and announced)."""

    member: Member
    outcome: Outcome | None = None
    error: str | None = None
    partial: Report | None = None

    @property
    def report(self) -> Report | None:
        """What the sweep decided and did: the whole of it, or the part before it stopped."""
        return self.outcome.report if self.outcome is not None else self.partial

    @property
    def interrupted(self) -> bool:
        """Stopped halfway after changing something."""
        return self.partial is not None and bool(self.partial.records)

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.outcome is None else self.outcome.exit_code


@dataclass(frozen=True, slots=True)
class EstateSweep:
    """Every member's sweep, in the estate's order, and one report of all of them."""

    sweeps: tuple[MemberSweep, ...]
    report: Report

    @property
    def failed(self) -> tuple[MemberSweep, ...]:
        return tuple(s for s in self.sweeps if s.error is not None)

    @property
    def exit_code(self) -> int:
        return max((s.exit_code for s in self.sweeps), default=EXIT_OK)


@dataclass(frozen=True, slots=True, kw_only=True)
class EstateSummaryOutcome(Outcome):
    """The estate's digest (`summary`: totals, a row per workspace) and its one card."""

    summary: EstateSummary

    @property
    def exit_code(self) -> int:
        failed = any(w.error is not None for w in self.summary.workspaces)
        return EXIT_FAILED if failed else self.report.exit_code


def event_workspace(payload: Mapping[str, object]) -> str | None:
    """The workspace an Azure ML event names: `topic` (Event Grid schema) or `source`
    (CloudEvents), the workspace's ARM id in both."""
    value = payload.get("source" if "specversion" in payload else "topic")
    return value if isinstance(value, str) else None


def sweep_message(member: Member) -> str:
    """The queue message that asks for one member's sweep."""
    return json.dumps({"workspace": member.id})


def workspace_url(member: Member, gateway: TrackingGateway | None = None) -> str | None:
    """The workspace in Azure ML studio; the default member's server UI (no credentials)."""
    workspace = member.workspace
    if workspace is not None:
        wsid = (
            f"/subscriptions/{workspace.subscription_id}/resourcegroups/"
            f"{workspace.resource_group}/workspaces/{workspace.name}"
        )
        return f"https://ml.azure.com/home?wsid={wsid}"
    uri = gateway.tracking_uri if gateway is not None else member.tracking_uri or ""
    return redact_uri(uri) if uri.startswith(("http://", "https://")) else None


def _why(exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}")[:500]


@dataclass(slots=True)
class _LabelledSink:
    """A member's cards, each saying which workspace it is about under its title."""

    channel: Channel
    workspace: str

    def post(self, card: Mapping[str, object]) -> Delivery:
        labelled = dict(card)
        body = list(labelled.get("body", []))  # type: ignore[call-overload]
        note = {"type": "TextBlock", "text": f"Workspace {self.workspace}", "isSubtle": True}
        labelled["body"] = [*body[:1], note, *body[1:]]
        return self.channel.sink.post(labelled)


@dataclass
class EstateApp:
    """The estate of `settings` and an App per member, built on first use with the member's
    gateway (`gateway_factory`) and its per-workspace policy (`Settings.for_workspace`).

    `discover` lists a scope's workspaces (re-read at each sweep); `apps` seeds the cache.
    """

    settings: Settings
    gateway_factory: GatewayFactory
    channel: Channel
    clock: Clock = utcnow
    discover: Discover | None = None
    parallelism: int = DEFAULT_PARALLELISM
    budget: Budget = field(default_factory=default_budget)
    azure: AzureServices | None = None
    apps: dict[str, App] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _estate: Estate | None = field(default=None, init=False, repr=False)

    @classmethod
    def around(
        cls, app: App, gateway_factory: GatewayFactory, *, discover: Discover | None = None
    ) -> EstateApp:
        """The estate of `app`'s settings, its members sharing `app`'s channel, clock, wait
        figures and Azure side (the host's App, a verb's)."""
        return cls(
            app.settings,
            gateway_factory,
            app.channel,
            app.clock,
            discover=discover,
            budget=app.budget,
            azure=app.azure,
        )

    @property
    def estate(self) -> Estate:
        """The members the settings name (a scope kept unread: `find` admits its workspaces)."""
        with self._lock:
            if self._estate is None:
                self._estate = Estate.from_settings(self.settings)
            return self._estate

    def members(self) -> Estate:
        """The estate as of now: the scope discovered again (a new workspace is included)."""
        if self.settings.scope is None or self.discover is None:
            return self.estate
        return Estate.from_settings(self.settings, self.discover)

    def app_for(self, member: Member) -> App:
        """The member's App, built once (the factory resolves its tracking URI once)."""
        with self._lock:
            app = self.apps.get(member.key)
        if app is not None:
            return app
        channel = self.channel
        if member.workspace is not None:
            label = f"{channel.label} (workspace {member.name})"
            channel = Channel(_LabelledSink(channel, member.name), label, channel.posts)
        built = App(
            settings=self.settings.for_workspace(member.workspace, member.tracking_uri),
            gateway=self.gateway_factory(member),
            channel=channel,
            clock=self.clock,
            budget=self.budget,
            azure=self.azure,
        )
        with self._lock:
            return self.apps.setdefault(member.key, built)

    # -- events ---------------------------------------------------------------------------

    def route(
        self, payload: Mapping[str, object], *, log: logging.Logger | None = None
    ) -> EventsOutcome | None:
        """One decoded event to its workspace's App; None for an event from outside the
        estate: logged, dropped, never acted on nor retried."""
        named = event_workspace(payload)
        member = self.estate.find(named)
        if member is None:
            (log or _log).warning(
                "event %s names workspace %s, which is not in the estate: dropped (not retried)",
                str(payload.get("id"))[:80],
                "(none)" if named is None else repr(named[:300]),
            )
            return None
        return self.app_for(member).handle_events(payload, log=log)

    # -- sweeps ---------------------------------------------------------------------------

    def sweep_member(self, member: Member, *, log: logging.Logger | None = None) -> Outcome:
        """One member's sweep, its own cleanup guard and card; errors propagate."""
        return self.app_for(member).sweep(log=log)

    def sweep_named(self, workspace: str, *, log: logging.Logger | None = None) -> Outcome | None:
        """The sweep a queue message asks for (the workspace's ARM id); None, with a log line,
        when it names no workspace of the estate. Errors propagate (the queue retries)."""
        member = self.estate.find(workspace)
        if member is None or member.workspace is None:
            (log or _log).warning(
                "sweep message names workspace %r, which is not in the estate: dropped",
                workspace[:300],
            )
            return None
        return self.sweep_member(member, log=log)

    def sweep(self, *, log: logging.Logger | None = None) -> EstateSweep:
        """Every member, `parallelism` at a time; a member that fails is reported and the
        others go on (each is its own sweep: its guard, its card)."""

        def one(member: Member) -> MemberSweep:
            try:
                return MemberSweep(member, outcome=self.sweep_member(member, log=log))
            except Exception as exc:  # noqa: BLE001 (one broken workspace must not stop the rest)
                swept = MemberSweep(member, error=_why(exc), partial=partial_of(exc))
                done = len(swept.partial.records) if swept.partial is not None else 0
                how = f"interrupted after {done} decisions (reported)" if done else "failed"
                (log or _log).error("sweep of %s %s: %s", member.name, how, swept.error)
                return swept

        members = tuple(self.members())
        with ThreadPoolExecutor(max(1, min(self.parallelism, len(members)))) as pool:
            sweeps = tuple(pool.map(one, members))
        return EstateSweep(sweeps, _merged("sweep", self.settings.dry_run, sweeps))

    # -- summary --------------------------------------------------------------------------

    def summary(self, *, window_hours: float | None = None) -> EstateSummaryOutcome:
        """The window's digest of every member, added up, delivered as one card."""
        now = self.clock()
        hours = window_hours if window_hours is not None else self.settings.summary_window_hours
        report = Report(command="summary", dry_run=self.settings.dry_run)
        rows: list[WorkspaceActivity] = []
        for member in self.members():
            gateway: TrackingGateway | None = None
            try:
                app = self.app_for(member)
                gateway = app.gateway
                result = summarize(app.gateway, app.settings, now, window_hours=hours)
            except Exception as exc:  # noqa: BLE001 (the other workspaces are still summarised)
                _log.error("summary of %s failed: %s", member.name, _why(exc))
                rows.append(WorkspaceActivity(member.name, {}, workspace_url(member), _why(exc)))
                continue
            report.extend(result.report.records)
            totals = dict(result.summary.totals)
            rows.append(WorkspaceActivity(member.name, totals, workspace_url(member, gateway)))
        totals = {
            label: sum(row.totals.get(label, 0) for row in rows) for label in TOTAL_LABELS.values()
        }
        summary = EstateSummary(
            now - timedelta(hours=hours), now, totals, rows, dry_run=self.settings.dry_run
        )
        report.extra["estate"] = {
            "totals": totals,
            "workspaces": [
                {"name": r.name, "totals": dict(r.totals), "url": r.url, "error": r.error}
                for r in rows
            ],
        }
        delivery = notifications.deliver(report, [estate_summary_card(summary)], self.channel)
        return EstateSummaryOutcome(report=report, delivery=delivery, summary=summary)


def _merged(command: str, dry_run: bool, sweeps: tuple[MemberSweep, ...]) -> Report:
    """One report of many members' sweeps: every decision, each member's figures under
    `workspaces`, the per-experiment rows with their workspace."""
    report = Report(command=command, dry_run=dry_run)
    rows: list[dict[str, object]] = []
    workspaces: list[dict[str, object]] = []
    for sweep in sweeps:
        entry: dict[str, object] = {
            "name": sweep.member.name,
            "id": sweep.member.id,
            "swept": sweep.outcome is not None,
            "error": sweep.error,
            "interrupted": sweep.interrupted,
        }
        # An interrupted sweep's part is merged like a whole one: it did change runs.
        member_report = sweep.report
        if member_report is not None:
            report.extend(member_report.records)
            report.notifications.extend(member_report.notifications)
            entry["counts"] = member_report.counts()
            experiments = member_report.extra.get("experiments")
            if isinstance(experiments, list):
                rows += [{"workspace": sweep.member.name, **row} for row in experiments]
        workspaces.append(entry)
    report.extra["workspaces"] = workspaces
    if rows:
        report.extra["experiments"] = rows
    return report
