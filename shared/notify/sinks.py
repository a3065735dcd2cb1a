"""Where a card goes when it is not posted: kept for the report, or only logged.

`Channel` pairs a sink with a label that is safe to show (never the webhook URL).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.notify.blocks import envelope
from shared.notify.sizing import fit, size_of
from shared.notify.teams import CardSink, Delivery

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Channel:
    """A sink and how reports name it; `posts` is true only for a real Teams webhook."""

    sink: CardSink
    label: str
    posts: bool = False


class MemoryCardSink:
    """Keeps the exact Teams messages; the CLI prints them or puts them in its JSON report."""

    def __init__(self) -> None:
        self.messages: list[dict[str, object]] = []

    def post(self, card: Mapping[str, object]) -> Delivery:
        self.messages.append(envelope(fit(card)))
        return Delivery(True, None, 1, None)


@dataclass(slots=True)
class LogCardSink:
    """The Functions host without a webhook: one log line per card, no post."""

    why: str
    logged: list[int] = field(default_factory=list)

    def post(self, card: Mapping[str, object]) -> Delivery:
        size = size_of(fit(card))
        self.logged.append(size)
        log.info("Teams card not posted (%s): %d bytes", self.why, size)
        return Delivery(True, None, 1, None)
