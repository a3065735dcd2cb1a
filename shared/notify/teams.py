"""Delivery of Adaptive Cards to a Teams Workflows webhook, or to a file when there is none.

Best effort: retries throttling and server errors within a time budget, never raises, and never
logs or reports the webhook URL (its `sig=` query parameter is the credential).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr

from shared.notify.blocks import encode_envelope, envelope
from shared.notify.sizing import fit
from shared.redact import redact, uri_origin

log = logging.getLogger(__name__)

# No attempt is started with less budget left than this; a retry that would end past the
# budget is not waited for (an Event Grid invocation must answer within 30 s).
_MIN_ATTEMPT_S = 1.0
_CONNECT_TIMEOUT_S = 5.0
_READ_TIMEOUT_S = 10.0
_BASE_DELAY_S = 1.0
_MAX_DELAY_S = 8.0
_SIG = re.compile(r"(?i)\b(sig=)[^&\s\"'<>]+")
_MASKED = "…(masked)"


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one notification went. `error` never contains the webhook URL."""

    ok: bool
    status: int | None
    attempts: int
    error: str | None = None


class CardSink(Protocol):
    """Where cards go: the Teams webhook in production, a file or stdout from the CLI."""

    def post(self, card: Mapping[str, object]) -> Delivery: ...


def mask_url(url: str) -> str:
    """Scheme, host and port only, e.g. `https://host/…(masked)`: safe to log."""
    origin = uri_origin(url)
    return "(masked URL)" if origin is None else f"{origin}/{_MASKED}"


class TeamsNotifier:
    """Posts cards to a Teams Workflows webhook ("When a Teams webhook request is received")."""

    def __init__(
        self,
        webhook_url: SecretStr,
        *,
        session: requests.Session | None = None,
        total_timeout_s: float = 20.0,
        max_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = webhook_url
        self._masked = mask_url(webhook_url.get_secret_value())
        self._session = session if session is not None else requests.Session()
        self._total = total_timeout_s
        self._max_attempts = max(1, max_attempts)
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 (jitter, not crypto)
        self._clock = clock
        self._secrets = _secret_forms(webhook_url.get_secret_value())
        _SCRUBBER.add(self._secrets)

    def __repr__(self) -> str:
        return f"TeamsNotifier({self._masked})"

    def post(self, card: Mapping[str, object]) -> Delivery:
        """Send one card (shortened by `fit` if needed). Never raises for delivery failure."""
        try:
            body = encode_envelope(fit(card))
        except (TypeError, ValueError) as exc:
            return self._failed(Delivery(False, None, 0, f"card is not valid JSON: {exc}"))
        deadline = self._clock() + self._total
        attempts, status = 0, None
        error = "no attempt made: the time budget is too small"
        while deadline - self._clock() >= _MIN_ATTEMPT_S:
            attempts += 1
            remaining = deadline - self._clock()
            retry_after: float | None = None
            try:
                response = self._session.post(
                    self._url.get_secret_value(),
                    data=body,
                    headers={"Content-Type": "application/json; charset=utf-8"},
                    timeout=(min(_CONNECT_TIMEOUT_S, remaining), min(_READ_TIMEOUT_S, remaining)),
                    allow_redirects=False,  # a card is never sent anywhere but the webhook
                )
            except requests.RequestException as exc:
                status = None
                error = f"{type(exc).__name__}: {self._scrub(str(exc))[:300]}"
                retryable = isinstance(exc, requests.ConnectionError | requests.Timeout)
            else:
                with response:
                    status = response.status_code
                    if 200 <= status < 300:
                        return Delivery(True, status, attempts, None)
                    # Redacted whole before the cut: half a secret must not survive the cut.
                    excerpt = redact(self._scrub(" ".join(response.text.split())))[:200]
                    error = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
                    retryable = status == 429 or 500 <= status <= 599
                    retry_after = _retry_after(response.headers.get("Retry-After"))
            if not retryable:
                break
            if attempts >= self._max_attempts:
                error += f"; gave up after {attempts} attempts"
                break
            delay = retry_after if retry_after is not None else self._backoff(attempts)
            if self._clock() + delay + _MIN_ATTEMPT_S > deadline:
                error += (
                    f"; gave up: a retry in {delay:.1f} s would pass the {self._total:g} s budget"
                )
                break
            log.info(
                "Teams webhook %s: %s; retry %d/%d in %.1f s",
                self._masked,
                error,
                attempts + 1,
                self._max_attempts,
                delay,
            )
            self._sleep(delay)
        return self._failed(Delivery(False, status, attempts, error))

    def _backoff(self, attempt: int) -> float:
        """Exponential (1, 2, 4, 8 s) with "equal jitter": half fixed, half random."""
        ceiling = min(_MAX_DELAY_S, _BASE_DELAY_S * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _scrub(self, text: str) -> str:
        return _scrub(text, self._secrets)

    def _failed(self, delivery: Delivery) -> Delivery:
        log.warning(
            "Teams notification to %s not delivered after %d attempt(s): %s",
            self._masked,
            delivery.attempts,
            delivery.error,
        )
        return delivery


class FileCardSink:
    """Writes the exact Teams message (JSON envelope) to a stream or a file.

    With a path, the first card goes to it and later ones to `<stem>-2<suffix>`, … so that
    every file is one valid message; `written` lists them.
    """

    def __init__(self, path_or_stream: str | os.PathLike[str] | IO[str]) -> None:
        self._target = path_or_stream
        self._count = 0
        self.written: list[Path] = []

    def post(self, card: Mapping[str, object]) -> Delivery:
        try:
            data = json.dumps(envelope(fit(card)), indent=2, ensure_ascii=False, allow_nan=False)
            if isinstance(self._target, str | os.PathLike):
                path = Path(self._target)
                if self._count:
                    path = path.with_name(f"{path.stem}-{self._count + 1}{path.suffix}")
                path.write_text(data + "\n", encoding="utf-8")
                self.written.append(path)
            else:
                self._target.write(data + "\n")
                self._target.flush()
            self._count += 1
        except (OSError, TypeError, ValueError) as exc:
            log.warning("card not written: %s", exc)
            return Delivery(False, None, 1, f"{type(exc).__name__}: {exc}")
        return Delivery(True, None, 1, None)


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds; an HTTP-date (or garbage) falls back to the backoff."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN is not a delay


def _secret_forms(url: str) -> tuple[str, ...]:
    """The URL as logs could spell it: whole, path with query, query alone (longest first)."""
    parts = urlsplit(url.strip())
    forms = {url.strip(), f"{parts.path}?{parts.query}" if parts.query else "", parts.query}
    return tuple(sorted((f for f in forms if len(f) > 8), key=len, reverse=True))


def _path_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    """Any URL-like token through the webhook's path, however its query was re-encoded."""
    paths = {urlsplit(s).path for s in secrets if s.startswith(("http://", "https://"))}
    paths = {p for p in paths if len(p) > 8}
    if not paths:
        return None
    alternatives = "|".join(re.escape(p) for p in sorted(paths, key=len, reverse=True))
    return re.compile(rf"[^\s\"'<>]*(?:{alternatives})[^\s\"'<>]*")


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, _MASKED)
    if (pattern := _path_pattern(secrets)) is not None:
        text = pattern.sub(_MASKED, text)
    return _SIG.sub(r"\1(masked)", text)


class _ScrubFilter(logging.Filter):
    """Masks webhook URLs in the HTTP library's own debug lines ("POST /…?sig=… HTTP/1.1")."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._installed = False

    def add(self, secrets: tuple[str, ...]) -> None:
        self._secrets.update(secrets)
        if not self._installed:
            for name in ("urllib3.connectionpool", "urllib3.util.retry", "requests"):
                logging.getLogger(name).addFilter(self)
            self._installed = True

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        ordered = tuple(sorted(self._secrets, key=len, reverse=True))
        scrubbed = _scrub(message, ordered)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


_SCRUBBER = _ScrubFilter()
