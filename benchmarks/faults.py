"""Redis restarted and crashed under traffic, at both append-only fsync policies: how many messages were
acknowledged, how many of them were lost, duplicated or reordered, and how long until every client was
answered again. The same scenario as tests/faults/test_redis_aof.py (``tests.faults.scenarios``), run
several times per case; writes benchmarks/results/faults.json."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import percentiles, write_result
from benchmarks.servers import ensure_models, raise_open_files
from tests.faults.conftest import UNLIMITED
from tests.faults.scenarios import redis_restart
from tests.live import AppProcess, RedisServer, app_env

CASES = [("everysec", False), ("always", False), ("everysec", True), ("always", True)]
COUNTED = ("messages_acknowledged", "lost_acknowledged_before_restart", "lost", "duplicated", "out_of_order")


async def one_run(folder: Path, appendfsync: str, crash: bool) -> dict[str, Any]:
    """A fresh redis-server and app process; the scenario's figures, or how it failed."""
    redis = RedisServer(folder / "redis", appendfsync=appendfsync).start()
    prefix = f"bench:{uuid.uuid4().hex[:6]}:"
    env = app_env(
        redis.url,
        prefix,
        folder / "var",
        None,
        TRIAGE_ON_DUTY="true",
        TRIAGE_LOG_LEVEL="warning",
        **UNLIMITED,
    )
    app = AppProcess(env, folder / "app.log").start(timeout=120)
    try:
        return await redis_restart(app, redis, prefix, crash, users=8, messages=30)
    except AssertionError as exc:  # a client that never got its echo: recorded, not hidden
        return {"appendfsync": appendfsync, "restart": "SIGKILL" if crash else "SIGTERM", "failed": str(exc)}
    finally:
        app.stop()
        redis.kill()


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in runs if "failed" not in r]
    summary: dict[str, Any] = {
        "appendfsync": runs[0]["appendfsync"],
        "restart": runs[0]["restart"],
        "runs": len(runs),
        "failed_runs": [r["failed"] for r in runs if "failed" in r],
    }
    for key in COUNTED:
        summary[key] = sum(r[key] for r in done)
    summary["socket_reconnects"] = sum(r["socket_reconnects"] for r in done)
    summary["recovery_s"] = percentiles([r["recovery_s"] for r in done])
    summary["redis_down_s"] = percentiles([r["redis_down_s"] for r in done])
    return summary


async def main(repeats: int) -> None:
    raise_open_files()
    ensure_models()
    cases = []
    for appendfsync, crash in CASES:
        runs = [
            await one_run(Path(tempfile.mkdtemp(prefix="triage-faults-")), appendfsync, crash)
            for _ in range(repeats)
        ]
        cases.append(summarize(runs))
    write_result(
        "faults",
        {
            "scenario": "one app process; 8 widget users talking to the bot (one also to an agent on a "
            "console), 30 messages each, resent until acknowledged; Redis restarted (SIGTERM) or crashed "
            "(SIGKILL) after every client had 3 messages acknowledged, and started again on the same port",
            "cases": cases,
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="runs per case")
    asyncio.run(main(parser.parse_args().repeats))
