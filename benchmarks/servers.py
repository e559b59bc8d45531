"""Real servers for the end-to-end benchmarks: a redis-server and N uvicorn app processes sharing it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import ROOT
from tests.live import RedisServer, free_port, wait_until_ready


@dataclass
class Cluster:
    urls: list[str]
    redis_url: str
    prefix: str


@contextlib.contextmanager
def app_servers(count: int = 1, env: dict[str, str] | None = None) -> Iterator[Cluster]:
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
                **(env or {}),
            }
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "triagebot.main:app",
                        "--port",
                        str(port),
                        "--log-level",
                        "warning",
                    ],
                    cwd=ROOT,
                    env=full_env,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            wait_until_ready(url, process, timeout=120)
        yield Cluster(urls, redis.url, prefix)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        redis.stop()
