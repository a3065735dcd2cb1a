"""Adaptive Card building blocks: elements, markdown escaping, value formats, the Teams envelope.

Cards declare schema 1.4 and use only TextBlock, FactSet, Container, ColumnSet, Action.OpenUrl.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.4"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
# Containers whose id starts with LIST_PREFIX hold rows that `fit()` may shorten; the id reads
# `list.<noun>.<key>` so the "… and N more <noun>" line can name what was left out.
LIST_PREFIX = "list."
MORE_SUFFIX = ".more"
MAX_TEXT = 160
# More rows than this make a card people scroll past; the rest is "… and N more".
MAX_ROWS = 20

Card = dict[str, Any]
Element = dict[str, Any]

_SINGULAR = {
    "runs": "run",
    "experiments": "experiment",
    "notices": "notice",
    "promotions": "promotion",
    "actions": "action",
    "workspaces": "workspace",
    "owners": "owner",
    "failed actions": "failed action",
}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>])")
_URL_SAFE = ":/?#@!$&'*+,;=%~-._"


def card(body: Sequence[Element], actions: Sequence[Element] = ()) -> Card:
    """A complete AdaptiveCard (schema 1.4)."""
    result: Card = {
        "$schema": SCHEMA,
        "type": "AdaptiveCard",
        "version": VERSION,
        "body": list(body),
    }
    if actions:
        result["actions"] = list(actions)
    return result


def envelope(content: Mapping[str, object]) -> dict[str, object]:
    """The message a Teams Workflows webhook expects, carrying one Adaptive Card."""
    return {
        "type": "message",
        "attachments": [{"contentType": CONTENT_TYPE, "contentUrl": None, "content": content}],
    }


def encode_envelope(content: Mapping[str, object]) -> bytes:
    """The exact bytes posted (and measured by `fit`): compact UTF-8 JSON, no NaN."""
    return json.dumps(
        envelope(content), ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def text(
    value: str,
    *,
    size: str | None = None,
    weight: str | None = None,
    color: str | None = None,
    subtle: bool = False,
    spacing: str | None = None,
    separator: bool = False,
    monospace: bool = False,
) -> Element:
    """A wrapping TextBlock. `value` is markdown: escape user data with `md()` first."""
    block: Element = {"type": "TextBlock", "text": value, "wrap": True}
    optional = {"size": size, "weight": weight, "color": color, "spacing": spacing}
    block.update({k: v for k, v in optional.items() if v is not None})
    if subtle:
        block["isSubtle"] = True
    if separator:
        block["separator"] = True
    if monospace:
        block["fontType"] = "Monospace"
    return block


def title(value: str, *, dry_run: bool = False) -> Element:
    prefix = "Dry run: " if dry_run else ""
    return text(prefix + value, size="Medium", weight="Bolder")


def heading(value: str) -> Element:
    return text(value, weight="Bolder", spacing="Medium", separator=True)


def facts(pairs: Iterable[tuple[str, str]]) -> Element:
    return {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in pairs]}


def container(
    items: Sequence[Element],
    *,
    block_id: str | None = None,
    style: str | None = None,
    spacing: str | None = None,
    separator: bool = False,
) -> Element:
    block: Element = {"type": "Container", "items": list(items)}
    if block_id is not None:
        block["id"] = block_id
    if style is not None:
        block["style"] = style
    if spacing is not None:
        block["spacing"] = spacing
    if separator:
        block["separator"] = True
    return block


def columns(cells: Sequence[Sequence[Element]], *, spacing: str | None = None) -> Element:
    """A ColumnSet with one equally wide ("stretch") column per cell."""
    block: Element = {
        "type": "ColumnSet",
        "columns": [{"type": "Column", "width": "stretch", "items": list(c)} for c in cells],
    }
    if spacing is not None:
        block["spacing"] = spacing
    return block


def item_list(noun: str, key: str, rows: Sequence[Element], limit: int = MAX_ROWS) -> Element:
    """Rows `fit()` may shorten further; past `limit` the tail is "… and N more <noun>"."""
    list_id = f"{LIST_PREFIX}{noun}.{key}"
    shown = list(rows[:limit])
    if len(rows) > limit:
        shown.append(more_line(list_id, len(rows) - limit))
    return container(shown, block_id=list_id, spacing="Small")


class MoreLine(dict[str, Any]):
    """The "… and N more" TextBlock of a list; it keeps N as a number (`hidden`), so `fit()`
    can add to it without reading the text back. JSON sees only the TextBlock."""

    hidden: int


def more_line(list_id: str, hidden: int) -> MoreLine:
    noun = list_id.removeprefix(LIST_PREFIX).split(".", 1)[0]
    word = _SINGULAR.get(noun, noun) if hidden == 1 else noun
    block = MoreLine(text(f"… and {hidden} more {word}", subtle=True))
    block["id"] = list_id + MORE_SUFFIX
    block.hidden = hidden
    return block


def dry_run_banner() -> Element:
    return container(
        [
            text(
                "DRY RUN: decided and reported; nothing was changed.",
                weight="Bolder",
                color="Warning",
            )
        ],
        style="warning",
    )


def open_url(label: str, url: str | None) -> list[Element]:
    """A one-element list with an Action.OpenUrl, or nothing when there is no usable URL."""
    safe = safe_url(url)
    return [] if safe is None else [{"type": "Action.OpenUrl", "title": label, "url": safe}]


def safe_url(url: str | None) -> str | None:
    """Only absolute http(s) URLs, with the characters that would break a markdown link quoted."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return quote(url.strip(), safe=_URL_SAFE)


def md(value: object, limit: int = MAX_TEXT) -> str:
    """User data made safe for markdown: one line, clipped, markdown characters escaped."""
    flat = " ".join(str(value).split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return _MD_SPECIAL.sub(r"\\\1", flat)


def link(label: object, url: str | None) -> str:
    """`label` as a markdown link when there is a usable URL, else the escaped label."""
    safe = safe_url(url)
    return md(label) if safe is None else f"[{md(label)}]({safe})"


def num(value: float | None) -> str:
    """A metric value for people: 4 decimals at most, no trailing zeros."""
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    if size != 0 and (size < 1e-3 or size >= 1e6):
        return f"{value:.4g}"
    if size >= 1000:
        return f"{value:,.1f}"
    return f"{value:.4f}".rstrip("0").rstrip(".")


def signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + num(abs(value))


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "unknown"
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m} min"
    return f"{m} min {s} s" if m else f"{s} s"


def age(hours: float) -> str:
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.0f} h"


def day_time(moment: datetime) -> str:
    """Shorter than `when`: weekday, day, month and time (UTC implied by the caller)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%a %d %b %H:%M")


def plural(count: int, noun: str) -> str:
    return f"{count} {_SINGULAR.get(noun, noun) if count == 1 else noun}"
