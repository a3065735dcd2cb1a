"""The size guard: shorten a card's lists until its Teams message fits; never reject a card.

Teams refuses messages past ~28 KB, so cards are kept under 24 KB of serialized envelope.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

from shared.notify.blocks import LIST_PREFIX, Card, Element, MoreLine, encode_envelope
from shared.notify.blocks import more_line as _more_line
from shared.notify.blocks import text as _text

DEFAULT_LIMIT_BYTES = 24_000
_TEXT_CLIP = 400


def size_of(content: Mapping[str, object]) -> int:
    """Bytes of the message that carries `content` (what Teams' limit applies to)."""
    return len(encode_envelope(content))


def fit(content: Mapping[str, object], limit_bytes: int = DEFAULT_LIMIT_BYTES) -> Card:
    """A copy of the card whose envelope is at most `limit_bytes`.

    Long lists lose rows from their end (the longest list first) and say "… and N more runs";
    then overlong texts are clipped; as a last resort the body is replaced by a short notice.
    """
    result: Card = copy.deepcopy(dict(content))
    if size_of(result) <= limit_bytes:
        return result
    for floor in (1, 0):  # keep one row per list if possible, then none
        _trim_lists(result, limit_bytes, floor)
        if size_of(result) <= limit_bytes:
            return result
    for block in _walk(result):
        if block.get("type") == "TextBlock" and len(str(block.get("text", ""))) > _TEXT_CLIP:
            block["text"] = str(block["text"])[: _TEXT_CLIP - 1] + "…"
    if size_of(result) <= limit_bytes:
        return result
    return _placeholder(result)


def _trim_lists(card: Card, limit_bytes: int, floor: int) -> None:
    while (excess := size_of(card) - limit_bytes) > 0:
        lists = [b for b in _walk(card) if _is_list(b)]
        rows = {id(b): _rows(b) for b in lists}
        hidden = {id(b): _hidden(b) for b in lists}
        # Room for the "… and N more" lines that replace the rows.
        budget, saved = excess + 80 * len(lists), 0
        while saved < budget:
            open_lists = [b for b in lists if len(rows[id(b)]) > floor]
            if not open_lists:
                break
            target = max(open_lists, key=lambda b: len(rows[id(b)]))
            row = rows[id(target)].pop()
            saved += len(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()) + 1
            hidden[id(target)] += 1
        if saved == 0:
            return
        for block in lists:
            more = hidden[id(block)]
            block["items"] = rows[id(block)] + ([_more_line(block["id"], more)] if more else [])


def _is_list(block: Element) -> bool:
    return block.get("type") == "Container" and str(block.get("id", "")).startswith(LIST_PREFIX)


def _rows(block: Element) -> list[Element]:
    return [item for item in block.get("items", []) if not _is_more(item)]


def _hidden(block: Element) -> int:
    """Rows the list already left out (its "… and N more" line, built with the card)."""
    return sum(item.hidden for item in block.get("items", []) if isinstance(item, MoreLine))


def _is_more(item: Element) -> bool:
    return isinstance(item, MoreLine)


def _walk(node: Any) -> Iterator[Element]:
    """Every element (dict) of the card, parents before children, in document order."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _placeholder(card: Card) -> Card:
    heading = next(
        (dict(b) for b in card.get("body", []) if b.get("type") == "TextBlock"),
        _text("mlgov notice", size="Medium", weight="Bolder"),
    )
    heading["text"] = str(heading.get("text", ""))[:200]
    note = _text("This notice was too large for Teams; the command's --json report has it all.")
    result: Card = {**card, "body": [heading, note]}
    if card.get("actions"):
        result["actions"] = card["actions"][:1]
    return result
