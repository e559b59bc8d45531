"""Fake WeCom and DingTalk servers for tests and benchmarks: real HTTP servers on loopback that speak the
platforms' server APIs, record what they receive and fail on demand (no mocks).

``FakePlatform`` is the part both share: the listening socket (``start``/``stop``; ``down``/``up`` on the same
port), fault injection settable from any thread (``fail_next``, ``errcode_next``, ``delay``,
``stall``/``release``), the request log and ``wait_for``. ``wecom.FakeWeCom`` and ``dingtalk.FakeDingTalk``
add their routes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

logger = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # bytes; far above what either platform accepts
_TICK = 0.02  # how often held and delayed requests look for release or ``down()``


@dataclass(frozen=True)
class Request:
    """One HTTP request as the fake read it; ``headers`` have lower-case names, ``at`` is ``time.time()``."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Received:
    """A request and the status it was answered with: 0 while held, or when it was never answered
    (aborted by ``down()``, or the client went away)."""

    request: Request
    status: int = 0


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


Route = Callable[[Request], Response]


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(payload, ensure_ascii=False).encode())


def html_error(status: int) -> Response:
    """What a gateway in front of the platform sends for a failure: an HTML page, not JSON."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    page = (
        f"<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1></body></html>"
    )
    return Response(status, page.encode(), content_type="text/html")


@dataclass
class _Fault:
    remaining: int
    respond: Route
    path: str | None
    applies: Callable[[str], bool]

    def matches(self, request: Request) -> bool:
        return (self.path is None or request.path.startswith(self.path)) and self.applies(request.path)


class FakePlatform:
    """A threaded HTTP server on 127.0.0.1 with the shared recording and fault injection.

    Subclasses fill ``routes`` (``(method, path) -> handler``) and may override ``_speaks_errcode`` and
    ``_reset_records``. Everything here is safe to call from the test thread while requests are in flight.
    """

    def __init__(self, *, port: int = 0, max_body: int = MAX_BODY) -> None:
        self.port = port
        self.max_body = max_body
        self.delay = 0.0  # seconds every request waits before it is processed
        self.lock = threading.RLock()
        self.routes: dict[tuple[str, str], Route] = {}
        self._log: list[Received] = []
        self._faults: list[_Fault] = []
        self._released = threading.Event()
        self._released.set()
        self._held = 0
        self._generation = 0  # bumped by down(): requests that started before it are dropped unanswered
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._httpd is not None

    def start(self) -> Self:
        if self._httpd is None:
            self._listen()
        return self

    def stop(self) -> None:
        self._released.set()
        self.down()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def down(self) -> None:
        """Close the listening socket (connects are refused) and drop held or delayed requests unanswered."""
        with self.lock:
            httpd, self._httpd, thread, self._thread = self._httpd, None, self._thread, None
            self._generation += 1
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(5)

    def up(self) -> None:
        """Listen again on the same port."""
        if self._httpd is None:
            self._listen()

    def _listen(self) -> None:
        deadline = time.monotonic() + 5
        while True:
            try:
                httpd = _Server(("127.0.0.1", self.port), self)
                break
            except OSError as error:  # the old socket may linger for a moment after down()
                if error.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.port = int(httpd.server_address[1])
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=type(self).__name__,
            daemon=True,
        )
        with self.lock:
            self._httpd, self._thread = httpd, thread
        thread.start()

    # ------------------------------------------------------------------ faults
    def fail_next(self, n: int = 1, status: int = 500, *, path: str | None = None) -> None:
        """Answer the next ``n`` requests (under ``path``, if given) with this HTTP status and an HTML page."""
        self._add_fault(n, lambda _request: html_error(status), path, lambda _path: True)

    def errcode_next(self, n: int, errcode: int, errmsg: str = "", *, path: str | None = None) -> None:
        """Answer the next ``n`` requests to errcode-speaking routes with HTTP 200 and this errcode
        (e.g. -1 system busy, 45009 api freq out of limit)."""
        payload = {"errcode": errcode, "errmsg": errmsg}
        self._add_fault(n, lambda _request: json_response(payload), path, self._speaks_errcode)

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def stall(self) -> None:
        """Hold every request from now on, unanswered, until ``release()`` (or ``down()``, which drops them)."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    @property
    def held(self) -> int:
        """How many requests are being held by ``stall()`` right now."""
        with self.lock:
            return self._held

    def _add_fault(self, n: int, respond: Route, path: str | None, applies: Callable[[str], bool]) -> None:
        if n > 0:
            with self.lock:
                self._faults.append(_Fault(n, respond, path, applies))

    def _speaks_errcode(self, path: str) -> bool:
        return True

    def _take_fault(self, request: Request) -> Response | None:
        with self.lock:
            for fault in self._faults:
                if fault.matches(request):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault.respond(request)
        return None

    # ------------------------------------------------------------------ recording
    @property
    def requests(self) -> list[Received]:
        """Every request received, in order, answered or not."""
        with self.lock:
            return list(self._log)

    def requests_to(self, path: str) -> list[Received]:
        return [item for item in self.requests if item.request.path == path]

    def reset(self) -> None:
        """Forget what was received and every pending fault; configuration stays."""
        with self.lock:
            self._log.clear()
            self._faults.clear()
            self.delay = 0.0
            self._reset_records()
        self._released.set()

    def _reset_records(self) -> None:
        pass

    def wait_for(self, predicate: Callable[[Self], Any], timeout: float = 10.0) -> Any:
        """Poll ``predicate(self)`` until it returns something truthy, and return that."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() > deadline:
                seen = [f"{r.request.method} {r.request.path} -> {r.status}" for r in self.requests]
                raise AssertionError(f"condition not met in {timeout}s; requests: {seen}")
            time.sleep(_TICK)

    # ------------------------------------------------------------------ serving
    def _serve(self, handler: _Handler) -> None:
        generation = self._generation
        parts = urlsplit(handler.path)
        headers = {name.lower(): value for name, value in handler.headers.items()}
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            length = -1
        too_big = length > self.max_body
        body = handler.rfile.read(length) if 0 < length <= self.max_body else b""
        request = Request(
            handler.command,
            parts.path,
            dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers,
            body,
            time.time(),
        )
        received = Received(request)
        with self.lock:
            self._log.append(received)
        if length < 0 or too_big or "chunked" in headers.get("transfer-encoding", ""):
            status = 413 if too_big else 400 if length < 0 else 411
            self._write(handler, html_error(status), received)
            return
        if not self._wait(generation):
            self._abort(handler)
            return
        response = self._take_fault(request) or self._route(request)
        self._write(handler, response, received)

    def _wait(self, generation: int) -> bool:
        """Apply ``delay`` and ``stall``; False when ``down()`` happened meanwhile."""
        deadline = time.monotonic() + self.delay
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(_TICK, left))
            if self._generation != generation:
                return False
        if not self._released.is_set():
            with self.lock:
                self._held += 1
            try:
                while not self._released.wait(_TICK):
                    if self._generation != generation:
                        return False
            finally:
                with self.lock:
                    self._held -= 1
        return self._generation == generation

    def _route(self, request: Request) -> Response:
        route = self.routes.get((request.method, request.path))
        if route is None:
            known = any(path == request.path for _method, path in self.routes)
            return html_error(405 if known else 404)
        try:
            return route(request)
        except Exception:
            logger.exception("fake %s failed on %s %s", type(self).__name__, request.method, request.path)
            return html_error(500)

    @staticmethod
    def _write(handler: _Handler, response: Response, received: Received) -> None:
        received.status = response.status  # before the client can see the answer
        try:
            handler.send_response(response.status)
            handler.send_header("Content-Type", response.content_type)
            handler.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(response.body)
            handler.wfile.flush()
        except OSError:
            received.status = 0  # the client went away

    @staticmethod
    def _abort(handler: _Handler) -> None:
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection, so down() refuses every later request

    def _dispatch(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the outbox's bursts overflow the default backlog of 5
    block_on_close = False  # held requests must not keep stop() waiting

    def __init__(self, address: tuple[str, int], fake: FakePlatform) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # skips HTTPServer's reverse DNS lookup
        self.server_name, self.server_port = "127.0.0.1", int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s failed", client_address, exc_info=True)
