"""The project's own exceptions: what callers catch instead of MLflow's or pydantic's."""

from __future__ import annotations


class GovernanceError(Exception):
    """Base class of every error this package raises on purpose."""


class SettingsError(GovernanceError):
    """A setting (environment variable or policy-file key) is invalid.

    The message always starts with the setting's name.
    """

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class UsageError(GovernanceError):
    """A command-line argument cannot be acted on (e.g. a folder that is not ours to replace)."""


class InvalidEvent(GovernanceError):
    """An inbound event is malformed (poison): it is reported and dropped, never retried."""

    def __init__(self, event_id: str | None, problem: str) -> None:
        super().__init__(f"event {event_id or '<no id>'}: {problem}")
        self.event_id = event_id
        self.problem = problem


class TrackingError(GovernanceError):
    """The tracking server refused one request (permanent for that request).

    `code` is MLflow's error code when the server gave one (`PERMISSION_DENIED`, ...).
    """

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class RunNotFound(TrackingError):
    """The run does not exist (or is not visible to this identity)."""

    def __init__(self, run_id: str, why: str = "run no longer exists") -> None:
        super().__init__(f"run {run_id} not found: {why}")
        self.run_id = run_id
        self.why = why


class TrackingUnavailable(GovernanceError):
    """The tracking server is unreachable or answered 5xx: transient, retry the invocation.

    It carries what was done before it, so that nothing done goes unreported: `applied` is
    set by a handler that completed its change before the failure (its `Result`), `partial`
    by the use case it interrupted (the `Report` so far, with every change applied). Typed
    `object` here, below every other module; `shared.engine.report.partial_of` reads it.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.applied: object | None = None
        self.partial: object | None = None


class CapabilityUnsupported(TrackingError):
    """The tracking server does not support an operation (e.g. restoring runs on Azure ML)."""
