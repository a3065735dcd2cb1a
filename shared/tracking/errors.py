"""MLflow's and requests' errors turned into the project's, and the client calls that do it.

`TrackingUnavailable` for a server down or overloaded, `RunNotFound` for a missing run,
`TrackingError` (with MLflow's code) for any other refusal; callers add `CapabilityUnsupported`.
A request cut off by its deadline or throttled past the cap (`shared.http_deadline`) is
`TrackingUnavailable` saying so; no message carries a credential (`shared.redact`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from shared import budget
from shared.errors import CapabilityUnsupported, RunNotFound, TrackingError, TrackingUnavailable
from shared.redact import redact

_R = TypeVar("_R")

TRANSIENT_CODES = frozenset({"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"})
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
ALREADY_EXISTS_CODES = frozenset({"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"})
# A 5xx the REST client does not retry arrives as "failed with error code 5xx != 200" (an
# HTML answer) or, from the artifact listing, as requests' "5xx Server Error: ... for url".
_TRANSIENT_TEXT = re.compile(
    r"Max retries exceeded|Connection(Error| refused| aborted)|timed out|"
    r"failed with (error )?code 5\d\d|status code 5\d\d|\b5\d\d Server Error|Read timed out",
    re.IGNORECASE,
)


def error_code(exc: Exception) -> str:
    """MLflow's error code of `exc` (`RESOURCE_DOES_NOT_EXIST`, ...); empty when it has none."""
    return str(getattr(exc, "error_code", "") or "")


def is_transient(exc: Exception) -> bool:
    """Whether an MLflow or HTTP error means the server is down or overloaded."""
    import requests

    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    if error_code(exc) in TRANSIENT_CODES:
        return True
    return bool(_TRANSIENT_TEXT.search(str(exc)))


def _bound_exceeded(exc: BaseException) -> BaseException | None:
    """The deadline or throttle error behind `exc` (MLflow wraps it in its own), if any."""
    from shared.http_deadline import DeadlineExceeded, Throttled

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, DeadlineExceeded | Throttled):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def translate(what: str, exc: Exception, run_id: str | None) -> Exception:
    """The project's error for `exc` raised by call `what`; `run_id`: the run it was about."""
    if isinstance(exc, TrackingError | TrackingUnavailable):
        return exc
    bound = _bound_exceeded(exc)
    if bound is not None:
        # MLflow's own text would advise raising MLFLOW_HTTP_REQUEST_TIMEOUT, which no longer
        # helps: the bound that ended the request is named instead.
        return TrackingUnavailable(f"tracking server unavailable during {what}: {bound}")
    if is_transient(exc):
        return TrackingUnavailable(f"tracking server unavailable during {what}: {redact(str(exc))}")
    if run_id is not None and error_code(exc) in NOT_FOUND_CODES:
        return RunNotFound(run_id)
    return TrackingError(f"{what} failed: {redact(str(exc))}", code=error_code(exc))


def call(
    what: str, fn: Callable[..., _R], *args: Any, for_run: str | None = None, **kwargs: Any
) -> _R:
    """Call the client; `for_run` names the run a not-found error is about. Past the
    invocation's deadline the call is not made (`TrackingUnavailable`)."""
    budget.check(what)
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise translate(what, exc, for_run) from exc


def pages(fn: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
    """Every item of a paged MLflow search, page token by page token (errors as raised; past
    the invocation's deadline no further page is asked for)."""
    token: str | None = None
    while True:
        budget.check("the next page of a search")
        page = fn(page_token=token, **kwargs)
        yield from page
        token = page.token
        if not token:
            return


def paged(what: str, fn: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
    """`pages`, with MLflow's errors turned into the project's."""
    try:
        yield from pages(fn, **kwargs)
    except Exception as exc:
        raise translate(what, exc, None) from exc


def cannot_restore(run_id: str, why: object) -> CapabilityUnsupported:
    """The error of a server without `restore_run`, saying how to restore on Azure ML."""
    return CapabilityUnsupported(
        f"the tracking server cannot restore runs ({why}); on Azure ML restore the "
        f"job with `az ml job restore --name {run_id}`"
    )
