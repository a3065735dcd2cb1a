"""The throttle the executor's workers share: a server that answers 429 slows them all.

MLflow's client already waits out `Retry-After` on each request it retries (urllib3's
`Retry(respect_retry_after_header=True)`); when its retries run out it raises "too many 429
error responses", which arrives here as `TrackingUnavailable`. Then every worker pauses (the
error's `retry_after` when it carries one, else a doubling backoff) and the action is tried
again, at most `attempts` times: every action is idempotent, so a retry does nothing twice.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from shared import budget

# How MLflow words a throttled request: urllib3's exhausted retries, a 429 body it could not
# parse, or the REST error code servers use for rate limits.
_THROTTLED = re.compile(
    r"too many 429 error responses|error code 429\b|\b429 Client Error|HTTP 429\b|"
    r"REQUEST_LIMIT_EXCEEDED"
)
# The bounded HTTP adapter's words for a `Retry-After` longer than one request may wait.
_ASKED = re.compile(r"retry after (\d+(?:\.\d+)?) s\b")


def throttled(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the server is rate-limiting this client."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "code", "") == "REQUEST_LIMIT_EXCEEDED" or _THROTTLED.search(str(seen)):
            return True
        seen = seen.__cause__
    return False


def retry_after(exc: BaseException) -> float | None:
    """The server's `Retry-After` in seconds, where the error (or its cause) carries it."""
    seen: BaseException | None = exc
    while seen is not None:
        value = getattr(seen, "retry_after", None)
        if isinstance(value, int | float) and value >= 0:
            return float(value)
        asked = _ASKED.search(str(seen))
        if asked:
            return float(asked.group(1))
        seen = seen.__cause__
    return None


class Throttle:
    """Shared by the workers of one executor. `clock` and `sleep` are injectable so tests
    see every pause without waiting for it."""

    def __init__(
        self,
        *,
        attempts: int = budget.THROTTLE_ATTEMPTS,
        backoff_s: float = budget.THROTTLE_BACKOFF_S,
        max_pause_s: float = budget.THROTTLE_MAX_PAUSE_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.attempts = attempts
        self._backoff = backoff_s
        self._max_pause = max_pause_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._until = 0.0
        self._strikes = 0
        self.pauses: list[float] = []  # every pause decided, for the report and the tests

    def wait(self) -> None:
        """Before a request: wait out a pause another worker was told to take."""
        while True:
            with self._lock:
                remaining = self._until - self._clock()
            if remaining <= 0:
                return
            self._sleep(remaining)

    def hit(self, exc: BaseException) -> None:
        """A throttled answer: pause every worker, longer on each strike in a row."""
        with self._lock:
            self._strikes += 1
            asked = retry_after(exc)
            backoff = self._backoff * 2 ** (self._strikes - 1)
            pause = min(self._max_pause, asked if asked is not None else backoff)
            scope = budget.current()
            if scope is not None:  # never sleep past the invocation's deadline
                pause = max(0.0, min(pause, scope.remaining()))
            until = self._clock() + pause
            if until > self._until:
                self._until = until
                self.pauses.append(pause)

    def ok(self) -> None:
        """An answer that was not throttled: the next strike starts from the first backoff."""
        with self._lock:
            self._strikes = 0
