"""`shared.redact` applied at the edges: every log record, the CLI's stdout and stderr, cards
on their way out. `install` registers the settings' secrets and is called when an App is built.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TextIO

from shared.redact import redact, register, secrets_of_uri

if TYPE_CHECKING:
    from shared.notify.sinks import Channel
    from shared.notify.teams import CardSink, Delivery
    from shared.settings import Settings

# Credentials MLflow's and Azure's clients read from the environment (basic auth, a bearer
# token, a service principal's secret): masked wherever they would show.
_SECRET_ENV = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "AZURE_CLIENT_SECRET")


def secrets_of(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """What the settings hold that is a credential: the webhook URL (its `sig`), user info and
    query credentials of the tracking URI and the events topic endpoint."""
    environ = os.environ if environ is None else environ
    found: list[str] = []
    if settings.teams_webhook_url is not None:
        url = settings.teams_webhook_url.get_secret_value()
        found += [url, *secrets_of_uri(url)]
    for uri in (settings.effective_tracking_uri(), settings.events_topic_endpoint or ""):
        found += secrets_of_uri(uri)
    found += [environ[name] for name in _SECRET_ENV if environ.get(name)]
    return found


# -- log records -------------------------------------------------------------------------------


def redact_record(record: logging.LogRecord) -> None:
    """Replace the record's message, traceback and stack text by their redacted forms."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 (a malformed call: its handler reports it, redacted)
        return
    shown = redact(message)
    if shown != message or record.args:
        record.msg, record.args = shown, None
    if record.exc_info and not record.exc_text:
        # Formatted here, once: a formatter prints `exc_text` when set instead of formatting
        # the exception (whose message may carry a secret) again.
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactingFilter(logging.Filter):
    """On a handler: every record it emits is redacted first (never dropped)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_FILTER = RedactingFilter()
_LOCK = threading.Lock()
_FACTORY_INSTALLED = False


def install_logging() -> None:
    """Redact every record: at creation (a record factory, so handlers added later are covered)
    and on each root handler present now (the filter). Idempotent."""
    global _FACTORY_INSTALLED
    with _LOCK:
        if not _FACTORY_INSTALLED:
            previous = logging.getLogRecordFactory()

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                record = previous(*args, **kwargs)
                redact_record(record)
                return record

            logging.setLogRecordFactory(factory)
            _FACTORY_INSTALLED = True
        for handler in logging.getLogger().handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)


def install(settings: Settings) -> None:
    """Register the settings' secrets and redact the logs (the App calls this when built)."""
    register(*secrets_of(settings))
    install_logging()


# -- streams -----------------------------------------------------------------------------------


class RedactingStream(io.TextIOBase):
    """A text stream that redacts each line before it reaches `target`.

    Text is held until its line ends (or `flush`), so a secret written in two pieces is still
    seen whole.
    """

    def __init__(self, target: TextIO) -> None:
        super().__init__()
        self.target = target
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            cut = self._pending.rfind("\n") + 1
            if cut:
                done, self._pending = self._pending[:cut], self._pending[cut:]
                self.target.write(redact(done))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self.target.write(redact(self._pending))
                self._pending = ""
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")


@contextmanager
def redacted_std() -> Iterator[None]:
    """sys.stdout and sys.stderr redacted for the block (the CLI's whole run)."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(out), RedactingStream(err)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = out, err


# -- cards -------------------------------------------------------------------------------------


def redact_tree(value: object) -> Any:
    """A JSON-like value with every string redacted (keys are the card schema's own)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: redact_tree(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(item) for item in value]
    return value


class RedactingSink:
    """A card sink that redacts each card before `inner` posts or writes it."""

    def __init__(self, inner: CardSink) -> None:
        self.inner = inner

    def post(self, card: Mapping[str, object]) -> Delivery:
        delivery = self.inner.post(redact_tree(card))
        if delivery.error:
            delivery = replace(delivery, error=redact(delivery.error))
        return delivery


def redacted_channel(channel: Channel) -> Channel:
    """`channel` with its cards redacted; a card kept in memory is left as it is, since it
    reaches the output only through the redacted stdout (and the CLI reads it back)."""
    from shared.notify.sinks import Channel, MemoryCardSink

    if isinstance(channel.sink, MemoryCardSink | RedactingSink):
        return channel
    return Channel(RedactingSink(channel.sink), channel.label, posts=channel.posts)
