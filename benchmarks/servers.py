"""Real servers for the end-to-end benchmarks: a redis-server and N uvicorn app processes sharing it."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import ROOT
from tests.live import RedisServer, free_port, serve_command, wait_until_ready

_TRAIN = "from bot.app import load_understanding; from bot.settings import Settings; load_understanding(Settings())"


@dataclass
class Cluster:
    urls: list[str]
    redis_url: str
    prefix: str
    pids: list[int] = field(default_factory=list)


def raise_open_files() -> int:
    """Lift the soft open-file limit to the hard one (1,000 sockets need more than the usual 1,024); app
    processes started afterwards inherit it. Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ensure_models() -> None:
    """Train the NLU model and index the KB once, before the app processes start (they would otherwise
    race to train the same model at startup); a no-op when the data is unchanged (fingerprints)."""
    subprocess.run([sys.executable, "-c", _TRAIN], cwd=ROOT, check=True)


@contextlib.contextmanager
def app_servers(count: int = 1, env: dict[str, str] | None = None) -> Iterator[Cluster]:
    raise_open_files()
    ensure_models()
    folder = Path(tempfile.mkdtemp(prefix="triage-bench-"))
    redis = RedisServer(folder / "redis").start()
    prefix = "bench:"
    processes, urls = [], []
    try:
        for i in range(count):
            port = free_port()
            full_env = {
                **os.environ,
                "TRIAGE_REDIS_URL": redis.url,
                "TRIAGE_REDIS_PREFIX": prefix,
                "TRIAGE_VAR_DIR": str(folder / f"var{i}"),
                "TRIAGE_LOG_LEVEL": "warning",
                # The load comes from one address and a few thousand scripted users: the per-client limits
                # would measure themselves, not the desk.
                "TRIAGE_CONVERSATIONS_PER_MINUTE": "0",
                "TRIAGE_MESSAGES_PER_MINUTE": "0",
                **(env or {}),
            }
            processes.append(
                subprocess.Popen(
                    serve_command("127.0.0.1", port),
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,  # triage serve's banner; the logs go to stderr
                    env=full_env,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            wait_until_ready(url, process, timeout=120)
        yield Cluster(urls, redis.url, prefix, [p.pid for p in processes])
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        redis.stop()
