"""The Functions host's applications, one of each per worker process, built on first use (never
at import): the App, and the EstateApp when the settings govern workspaces."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import Protocol, TypeVar

from shared.app import App
from shared.app.azure import reset_azure
from shared.app.estate import EstateApp
from shared.bootstrap.app import build_app
from shared.bootstrap.estate import build_estate, governs_workspaces
from shared.budget import reset_default_budget
from shared.settings import get_settings

__all__ = ["host_app", "host_estate", "reset_host_app", "use_app", "use_estate"]

_V = TypeVar("_V")


class _Host:
    """The one App of a Functions worker process: one MLflow client, reused across invocations.

    The worker may run invocations on several threads; the lock keeps it to one App.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._app: App | None = None

    def get(self) -> App:
        with self._lock:
            if self._app is None:
                self._app = build_app()
            return self._app

    def swap(self, app: App | None) -> App | None:
        with self._lock:
            previous, self._app = self._app, app
            return previous


def _around_host(estate: EstateApp) -> EstateApp:
    """One workspace alone is governed by the host's App, as before the estate (its gateway,
    its channel), narrowed to the workspace's policy."""
    members = estate.estate
    if len(members) == 1 and members.scope is None:
        (member,) = members
        app = host_app()
        narrowed = app.settings.for_workspace(member.workspace, app.settings.tracking_uri)
        estate.apps[member.key] = replace(app, settings=narrowed)
    return estate


class _EstateHost:
    """The worker's EstateApp, rebuilt when the host's settings are (`reset_host_app`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: EstateApp | None = None
        self._given: EstateApp | None = None

    def get(self) -> EstateApp | None:
        with self._lock:
            if self._given is not None:
                return self._given
        settings = get_settings()
        if not governs_workspaces(settings):
            return None
        with self._lock:
            if self._built is None or self._built.settings is not settings:
                self._built = _around_host(build_estate(settings))
            return self._built

    def swap(self, estate: EstateApp | None) -> EstateApp | None:
        with self._lock:
            previous, self._given = self._given, estate
            return previous

    def forget(self) -> None:
        with self._lock:
            self._built = None


_HOST = _Host()
_ESTATE = _EstateHost()


def host_app() -> App:
    """The App every Functions trigger calls (built from the environment on first use)."""
    return _HOST.get()


def host_estate() -> EstateApp | None:
    """The EstateApp the triggers use when the settings govern workspaces; None when they
    name one tracking server only (then `host_app()` serves, as always)."""
    return _ESTATE.get()


class _Swappable(Protocol[_V]):
    def swap(self, value: _V | None) -> _V | None: ...


@contextmanager
def _using(slot: _Swappable[_V], value: _V) -> Iterator[_V]:
    previous = slot.swap(value)
    try:
        yield value
    finally:
        slot.swap(previous)


def use_app(app: App) -> AbstractContextManager[App]:
    """Run the Functions triggers with `app` (tests inject a gateway, a channel, a clock)."""
    return _using(_HOST, app)


def use_estate(estate: EstateApp) -> AbstractContextManager[EstateApp]:
    """Run the Functions triggers over `estate` (tests inject a gateway per member)."""
    return _using(_ESTATE, estate)


def reset_host_app() -> None:
    """Forget the host's App and EstateApp and the settings and figures they were built from:
    the next trigger rebuilds them from the environment as it is then."""
    _HOST.swap(None)
    _ESTATE.forget()
    get_settings.cache_clear()
    reset_azure()
    reset_default_budget()
