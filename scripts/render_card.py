"""Renders an Adaptive Card (or a Teams message carrying one) to PNG with the official renderer.

Headless Chromium runs npm `adaptivecards` (pinned in scripts/package.json) in two passes: the
first dumps the DOM to read the renderer's parse and validation events and the card's height,
the second takes the screenshot. Exit 0 when the card rendered without events and the PNG has
content; 1 with the events (or the PNG problem) printed otherwise; 2 when a tool is missing.

    python scripts/render_card.py card.json out.png [--width 560]
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
SCRIPTS = (
    NODE_MODULES / "markdown-it" / "dist" / "markdown-it.min.js",
    NODE_MODULES / "adaptivecards" / "dist" / "adaptivecards.js",
)
STYLESHEET = NODE_MODULES / "adaptivecards" / "dist" / "adaptivecards.css"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--default-background-color=ffffffff",
    "--hide-scrollbars",
)
RESULT = re.compile(r'<pre id="mlgov-result">(.*?)</pre>', re.DOTALL)
PAD = 16

# Adaptive Cards markdown (what Teams supports): bold, italic, lists and links; no raw HTML.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>rendering</title>
<style>
  body {{ margin: 0; padding: {pad}px; background: #f5f5f5;
         font-family: "Segoe UI", "Liberation Sans", "DejaVu Sans", sans-serif; }}
  #card {{ background: #fff; border: 1px solid #e1e1e1; border-radius: 6px; overflow: hidden; }}
  #mlgov-result {{ display: none; }}
  .ac-textBlock p {{ margin: 0; }}
</style>
{scripts}
</head><body><div id="card"></div><pre id="mlgov-result"></pre>
<script>
const payload = {payload};
const errors = [];
let height = 0;
try {{
  const md = window.markdownit({{ html: false, linkify: false, breaks: false }});
  AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => {{
    result.outputHtml = md.render(text);
    result.didProcess = true;
  }};
  const card = new AdaptiveCards.AdaptiveCard();
  // The library's default host config (at most 5 actions; Teams allows 6): stricter is safer.
  const context = new AdaptiveCards.SerializationContext(new AdaptiveCards.Version(1, 4));
  card.parse(payload, context);
  for (let i = 0; i < context.eventCount; i++) {{
    const e = context.getEventAt(i);
    errors.push("parse: " + e.message);
  }}
  for (const e of card.validateProperties().validationEvents) {{
    errors.push("validation: " + e.message);
  }}
  const element = card.render();
  if (!element) {{
    errors.push("render() returned nothing");
  }} else {{
    document.getElementById("card").appendChild(element);
    height = Math.ceil(document.getElementById("card").getBoundingClientRect().height);
  }}
}} catch (err) {{
  errors.push("exception: " + (err && err.stack ? err.stack : String(err)));
}}
document.getElementById("mlgov-result").textContent = JSON.stringify({{ errors, height }});
document.title = errors.length ? "mlgov-card-errors" : "mlgov-card-ok";
</script>
</body></html>
"""


class RenderError(Exception):
    """The card did not render cleanly; the message lists why."""


def find_chromium() -> str | None:
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit
    return next((p for name in CHROMIUM_NAMES if (p := shutil.which(name))), None)


def missing_tools() -> list[str]:
    """What this script needs and cannot find (empty when it can run)."""
    missing = [] if find_chromium() else ["chromium (apt-get install -y chromium)"]
    missing += [f"{p} (cd scripts && npm ci)" for p in (*SCRIPTS, STYLESHEET) if not p.is_file()]
    return missing


def load_card(source: Path) -> dict[str, object]:
    """The card itself, whether `source` holds a bare card or a Teams message envelope."""
    data = json.loads(source.read_text(encoding="utf-8"))
    if isinstance(data, dict) and data.get("type") == "message":
        attachments = data.get("attachments") or []
        if len(attachments) != 1 or not isinstance(attachments[0], dict):
            raise RenderError("a Teams message must carry exactly one attachment")
        data = attachments[0].get("content")
    if not isinstance(data, dict) or data.get("type") != "AdaptiveCard":
        raise RenderError("not an AdaptiveCard (nor a Teams message carrying one)")
    return data


def render(card: dict[str, object], out: Path, width: int = 560) -> int:
    """Writes `out`; returns the card's rendered height in pixels. Raises RenderError."""
    chromium = find_chromium()
    if chromium is None or missing_tools():
        raise RenderError("missing: " + "; ".join(missing_tools()))
    # `</` inside the inlined JSON must not close the <script> element.
    payload = json.dumps(card, ensure_ascii=False).replace("</", "<\\/")
    scripts = "\n".join(
        [f'<link rel="stylesheet" href="{STYLESHEET.as_uri()}">']
        + [f'<script src="{p.as_uri()}"></script>' for p in SCRIPTS]
    )
    with tempfile.TemporaryDirectory(prefix="mlgov-card-") as tmp:
        page = Path(tmp) / "card.html"
        page.write_text(PAGE.format(pad=PAD, scripts=scripts, payload=payload), encoding="utf-8")
        dom = _chromium(chromium, Path(tmp) / "profile-1", (width, 400), "--dump-dom", page)
        found = RESULT.search(dom)
        if found is None:
            raise RenderError("the page did not report a result (renderer script not loaded?)")
        result = json.loads(html.unescape(found.group(1)))
        if result["errors"]:
            raise RenderError("renderer reported:\n  " + "\n  ".join(result["errors"]))
        height = int(result["height"])
        if height <= 0:
            raise RenderError("the card rendered with zero height")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        size = (width, height + 2 * PAD)
        _chromium(chromium, Path(tmp) / "profile-2", size, f"--screenshot={out}", page)
    check_png(out)
    return height


def _chromium(chromium: str, profile: Path, size: tuple[int, int], mode: str, page: Path) -> str:
    command = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",  # a fresh profile per run: no state, no lock contention
        f"--window-size={size[0]},{size[1]}",
        mode,
        page.as_uri(),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RenderError("chromium did not finish within 120 s") from exc
    if done.returncode != 0:
        raise RenderError(f"chromium exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def check_png(path: Path) -> None:
    """The file is a PNG showing something: enough dark (text) pixels on the light card."""
    if not path.is_file() or path.stat().st_size == 0:
        raise RenderError(f"no screenshot written to {path}")
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise RenderError(f"{path} is not a PNG")
    if dark_pixels(data) < 200:
        raise RenderError(f"{path} is blank: no text was drawn")


def dark_pixels(png: bytes) -> int:
    """Pixels darker than mid-grey in an 8-bit RGB/RGBA PNG (what Chromium writes)."""
    width, height, depth, colour = struct.unpack(">IIBB", png[16:26])
    if depth != 8 or colour not in (2, 6):
        raise RenderError(f"unexpected PNG format (bit depth {depth}, colour type {colour})")
    step = 3 if colour == 2 else 4
    stride = width * step
    raw = zlib.decompress(b"".join(_chunks(png, b"IDAT")))
    previous = bytearray(stride)
    dark = 0
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, line, previous, step)
        dark += sum(1 for x in range(0, stride, step) if line[x] + line[x + 1] + line[x + 2] < 384)
        previous = line
    return dark


def _unfilter(kind: int, line: bytearray, previous: bytearray, step: int) -> None:
    """Undoes one scanline's PNG filter in place (RFC 2083, section 6)."""
    for i in range(len(line)):
        left = line[i - step] if i >= step else 0
        up = previous[i]
        up_left = previous[i - step] if i >= step else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            guess = left + up - up_left
            pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - up_left)
            nearest = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
            line[i] = (line[i] + nearest) & 0xFF


def _chunks(data: bytes, kind: bytes) -> list[bytes]:
    found, at = [], 8
    while at + 8 <= len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        if data[at + 4 : at + 8] == kind:
            found.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("card", type=Path, help="JSON: an AdaptiveCard or a Teams message")
    parser.add_argument("png", type=Path, help="where to write the picture")
    parser.add_argument("--width", type=int, default=560)
    args = parser.parse_args(argv)
    if missing := missing_tools():
        print("render_card: missing " + "; ".join(missing), file=sys.stderr)
        return 2
    try:
        height = render(load_card(args.card), args.png, args.width)
    except (RenderError, OSError, ValueError) as exc:
        print(f"render_card: {args.card}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.png}: {args.width}x{height + 2 * PAD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
