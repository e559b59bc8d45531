"""A Rasa client's callback URL: a real HTTP server on loopback that records every POST it receives."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Received:
    body: dict[str, Any]
    idempotency_key: str
    answered: int = 0  # the status sent back; 0 while stalled or when the sender went away

    @property
    def message_id(self) -> str:
        return str(self.body.get("metadata", {}).get("message_id", ""))


@dataclass
class CallbackServer:
    """``fail_first``: answer 500 to that many POSTs; ``always_fail``: answer 500 to all; ``stall_first``:
    hold the first POST open until ``release`` is set (its sender may die meanwhile)."""

    fail_first: int = 0
    always_fail: bool = False
    stall_first: bool = False
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def record(self, item: Received) -> int:
        with self.lock:
            self.received.append(item)
            return len(self.received)

    @property
    def delivered(self) -> list[Received]:
        """What the receiver accepted (200), each message id once — what a deduplicating receiver keeps."""
        seen: dict[str, Received] = {}
        for item in list(self.received):
            if item.answered == 200 and item.message_id not in seen:
                seen[item.message_id] = item
        return list(seen.values())

    def message_ids(self) -> set[str]:
        """Distinct idempotency keys over every POST, answered or not."""
        return {item.message_id for item in list(self.received)}

    def texts(self) -> list[str]:
        return [str(item.body.get("text", "")) for item in self.delivered]

    def wait_for(self, predicate: Callable[[CallbackServer], Any], timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate(self)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"condition not met in time; received {[r.body for r in self.received]}")


def _handler(server: CallbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
            item = Received(body, self.headers.get("idempotency-key", ""))
            count = server.record(item)
            if server.stall_first and count == 1:
                server.release.wait(60)
            status = 500 if server.always_fail or count <= server.fail_first else 200
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")
                item.answered = status
            except OSError:
                pass  # the sender died while we stalled

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def callback_server() -> Iterator[CallbackServer]:
    server = CallbackServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}/bot"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    httpd.shutdown()
    httpd.server_close()
