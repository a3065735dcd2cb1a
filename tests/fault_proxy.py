"""A loopback HTTP proxy in front of the real MLflow server that fails chosen requests.

It forwards every request unchanged, except those a rule picks, which get a 500 as an
overloaded or broken MLflow server sends it. Tests use it to make one experiment's run
search fail while the rest of the server keeps answering.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

# (method, path, parsed JSON body or None) -> whether to answer 500 instead of forwarding.
Rule = Callable[[str, str, object], bool]

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the forwarding itself recomputes.
_DROPPED = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
_DROPPED_BACK = _DROPPED | {"content-encoding"}

INTERNAL_ERROR = {"error_code": "INTERNAL_ERROR", "message": "injected by the test proxy"}


def fail_run_search_of(experiment_id: str) -> Rule:
    """Fail `runs/search` whenever it asks for `experiment_id` (every page of it)."""

    def rule(method: str, path: str, body: object) -> bool:
        if not path.split("?")[0].endswith("/runs/search") or not isinstance(body, dict):
            return False
        return experiment_id in [str(e) for e in body.get("experiment_ids", [])]

    return rule


def fail_all_run_searches(method: str, path: str, body: object) -> bool:
    return path.split("?")[0].endswith("/runs/search")


def _handler(upstream: str, rule: Rule, hits: list[str]) -> type[BaseHTTPRequestHandler]:
    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: object = json.loads(raw) if raw else None
            except ValueError:
                body = None
            if rule(self.command, self.path, body):
                hits.append(self.path)
                self._answer(500, {"Content-Type": "application/json"}, INTERNAL_ERROR)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _DROPPED}
            reply = requests.request(
                self.command, upstream + self.path, data=raw, headers=headers, timeout=30
            )
            back = {k: v for k, v in reply.headers.items() if k.lower() not in _DROPPED_BACK}
            self._answer(reply.status_code, back, reply.content)

        def _answer(self, status: int, headers: dict[str, str], content: object) -> None:
            data = content if isinstance(content, bytes) else json.dumps(content).encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass  # the test output is not the place for an access log

    return Forward


@contextmanager
def fault_proxy(upstream: str, rule: Rule) -> Iterator[tuple[str, list[str]]]:
    """Yield the proxy's URI and the list of paths it failed, while it serves."""
    hits: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream, rule, hits))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fault-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
