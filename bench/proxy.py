"""A counting HTTP proxy on loopback: adds a fixed latency to each request, counts requests
and bytes per endpoint, the same way for every contender.

    python bench/proxy.py --upstream http://127.0.0.1:5000 --port 5001 --latency-ms 50

One thread per connection (keep-alive kept), one upstream connection per thread, so
concurrent requests are never serialised. Control endpoints, not counted:
`GET /__proxy/stats`, `POST /__proxy/reset`, `POST /__proxy/latency?ms=N`.

`--refuse-filter attributes.status --refuse-filter attributes.end_time` makes it a server
that refuses those run filters, as Azure ML may: a `runs/search` whose filter names one is
answered `400 INVALID_PARAMETER_VALUE` after the same latency, without reaching the server,
and counted under its endpoint with " (refused)".
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailers", "transfer-encoding", "upgrade", "content-length",
}  # fmt: skip
# Artifact paths name runs and files: one endpoint however many runs.
_ARTIFACT_PATH = re.compile(r"^(/api/2\.0/mlflow-artifacts/artifacts)/.*$")
# So do LoggedModel ids in their REST paths (`/logged-models/m-<hex>/tags`).
_MODEL_ID = re.compile(r"/logged-models/m-[0-9a-f]+")


def endpoint(method: str, path: str) -> str:
    path = _ARTIFACT_PATH.sub(r"\1/…", urlsplit(path).path)
    return f"{method} {_MODEL_ID.sub('/logged-models/{id}', path)}"


class Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency_s = 0.0
        self.per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.in_flight = 0
        self.max_in_flight = 0

    def reset(self) -> None:
        with self.lock:
            self.per = defaultdict(lambda: [0, 0, 0])
            self.max_in_flight = self.in_flight

    def add(self, key: str, sent: int, received: int) -> None:
        with self.lock:
            row = self.per[key]
            row[0] += 1
            row[1] += sent
            row[2] += received

    def enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            per = {
                k: {"requests": v[0], "bytes_sent": v[1], "bytes_read": v[2]}
                for k, v in self.per.items()
            }
            return {
                "requests": sum(v[0] for v in self.per.values()),
                "bytes_sent": sum(v[1] for v in self.per.values()),
                "bytes_read": sum(v[2] for v in self.per.values()),
                "max_in_flight": self.max_in_flight,
                "latency_ms": self.latency_s * 1000,
                "endpoints": dict(sorted(per.items())),
            }


def refusal(path: str, body: bytes, refused: tuple[str, ...]) -> bytes | None:
    """The error body for a `runs/search` whose filter names a refused field, else None."""
    if not refused or not urlsplit(path).path.endswith("/runs/search"):
        return None
    try:
        text = str(json.loads(body or b"{}").get("filter") or "")
    except ValueError:
        return None
    named = [field for field in refused if field.lower() in text.lower()]
    if not named:
        return None
    message = f"Invalid filter: {', '.join(named)} cannot be used in a filter on this server"
    return json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": message}).encode()


def make_handler(
    upstream: str, counters: Counters, refused: tuple[str, ...] = ()
) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(upstream)
    local = threading.local()

    def connection() -> http.client.HTTPConnection:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=300)
            local.conn = conn
        return conn

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _control(self) -> bool:
            parts = urlsplit(self.path)
            if not parts.path.startswith("/__proxy/"):
                return False
            if parts.path == "/__proxy/reset":
                counters.reset()
            elif parts.path == "/__proxy/latency":
                counters.latency_s = float(parse_qs(parts.query)["ms"][0]) / 1000
            body = json.dumps(counters.snapshot()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return True

        def _forward(self) -> None:
            if self._control():
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            counters.enter()
            try:
                if counters.latency_s:
                    time.sleep(counters.latency_s)  # one round trip to a distant workspace
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Host"] = target.netloc
                refused_body = refusal(self.path, body, refused)
                for attempt in range(0 if refused_body else 3):
                    try:
                        status, reason, answer_headers, data = self._upstream(headers, body)
                        break
                    except (OSError, http.client.HTTPException) as exc:
                        # A keep-alive connection the server closed (uvicorn drops idle ones
                        # after 5 s): once more on a fresh one; then answer 502, not a reset.
                        local.conn = None
                        print(f"upstream {self.command} {self.path}: {exc!r}", file=sys.stderr)
                        if attempt == 2:
                            status, reason, answer_headers = 502, "Bad Gateway", []
                            data = json.dumps(
                                {"error_code": "BAD_GATEWAY", "message": repr(exc)}
                            ).encode()
                if refused_body is not None:
                    status, reason, data = 400, "Bad Request", refused_body
                    answer_headers = [("Content-Type", "application/json")]
            finally:
                counters.leave()
            key = endpoint(self.command, self.path) + (" (refused)" if refused_body else "")
            counters.add(key, len(body), len(data))
            self.send_response(status, reason)
            for key, value in answer_headers:
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _upstream(
            self, headers: dict[str, str], body: bytes
        ) -> tuple[int, str, list[tuple[str, str]], bytes]:
            conn = connection()
            conn.request(self.command, self.path, body=body or None, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            return answer.status, answer.reason, answer.getheaders(), data

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _forward

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument(
        "--refuse-filter",
        action="append",
        default=[],
        help="refuse a runs/search whose filter names this field (repeatable)",
    )
    args = parser.parse_args()
    counters = Counters()
    counters.latency_s = args.latency_ms / 1000
    handler = make_handler(args.upstream, counters, tuple(args.refuse_filter))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    server.serve_forever()


if __name__ == "__main__":
    main()
