"""End-to-end chat benchmarks over the websocket, against real app processes and a real Redis.

* one user: reply latency, one message at a time;
* the old closed loop (200 users connected at once, 10 messages each, no think time), kept to compare with
  the figure from before the rebuild;
* users who arrive (a ramp, not all at once), each sending a few messages with think time, at 200 and
  1,000 users, on one app process and on two processes sharing one Redis (users alternate between them).

Every user checks the events its socket receives: their seqs must be exactly 1..N (N is the conversation's
stored seq at the end), so a lost, duplicated or out-of-order event is counted, per socket.

``python -m benchmarks.chat`` (part of ``make bench``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis.asyncio as aredis
import websockets

from benchmarks.common import RESULTS, ROOT, SHARED, percentiles, write_result
from benchmarks.servers import Cluster, app_servers, raise_open_files
from bot.store.keys import Keys

MESSAGES = [
    "发票查验失败，提示查验结果不一致",
    "谢谢",
    "how do I reset my password",
    "thanks",
    "收不到短信验证码",
    "好的谢谢",
    "export to excel keeps timing out",
    "thx",
    "审批一直卡着没人批",
    "多谢",
]
SINGLE_USER_MESSAGES = 300
CLOSED_LOOP = {"users": 200, "per_user": 10}  # the method of the figure before the rebuild
PER_USER = 5
THINK_S = (3.0, 7.0)  # uniform, between a reply and the user's next message
REPLY_TIMEOUT_S = 120.0
BEFORE = {"users": 200, "processes": 1, "messages_per_second": 190.3, "p50_ms": 887.5, "p99_ms": 1678.5}
BEFORE_COMMIT = "32a6f38"  # where BEFORE was measured (2026-11-23, on another machine)


@dataclass(frozen=True)
class Scenario:
    users: int
    processes: int
    ramp_s: float  # users arrive evenly over this long


SCENARIOS = [Scenario(200, 1, 10), Scenario(1000, 1, 30), Scenario(200, 2, 10), Scenario(1000, 2, 30)]


@dataclass
class Socket:
    """What one user's socket received, and the user's reply latencies."""

    seqs: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_codes: Counter[str] = field(default_factory=Counter)
    final_seq: int = 0

    def check(self) -> dict[str, int]:
        seen = set(self.seqs)
        out_of_order, top = 0, 0
        for seq in self.seqs:
            if seq < top:
                out_of_order += 1
            top = max(top, seq)
        return {
            "lost": len(set(range(1, self.final_seq + 1)) - seen),
            "duplicated": len(self.seqs) - len(seen),
            "out_of_order": out_of_order,
            "unexpected": len(seen - set(range(1, self.final_seq + 1))),
        }


async def _conversation(http: httpx.AsyncClient, base: str) -> dict[str, str]:
    response = await http.post(f"{base}/api/v1/conversations", json={"channel": "web"})
    response.raise_for_status()
    body: dict[str, str] = response.json()
    return body


async def _user(
    base: str,
    http: httpx.AsyncClient,
    redis: Any,
    keys: Keys,
    texts: list[str],
    think: tuple[float, float] | None,
    rng: random.Random,
) -> Socket:
    """One user: open a conversation, say hello, send ``texts`` (each after the previous reply and a think
    time), then wait until the socket has everything the conversation holds."""
    result = Socket()
    conversation = await _conversation(http, base)
    cid = conversation["conversation_id"]
    pending: dict[str, tuple[float, asyncio.Future[None]]] = {}
    user_seq: dict[str, int] = {}
    url = base.replace("http", "ws") + "/ws/chat"
    async with websockets.connect(url, max_size=2**20, open_timeout=60, ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "hello", "conversation_id": cid, "token": conversation["token"]}))
        first = json.loads(await ws.recv())
        if first.get("type") != "hello":
            raise RuntimeError(first)

        async def read() -> None:
            async for raw in ws:
                frame: dict[str, Any] = json.loads(raw)
                if "seq" in frame and frame.get("type") != "heartbeat":
                    result.seqs.append(frame["seq"])
                if frame.get("type") == "error":
                    result.errors += 1
                    result.error_codes[str(frame.get("code"))] += 1
                    waiting = pending.pop(str(frame.get("client_msg_id")), None)
                    if waiting:
                        waiting[1].set_result(None)
                elif frame.get("role") == "user" and frame.get("client_msg_id") in pending:
                    user_seq[frame["client_msg_id"]] = frame["seq"]
                elif frame.get("type") == "message" and frame.get("role") in ("bot", "system"):
                    for msg_id, seq in list(user_seq.items()):
                        if frame["seq"] > seq and msg_id in pending:
                            started, done = pending.pop(msg_id)
                            del user_seq[msg_id]
                            result.latencies.append((time.perf_counter() - started) * 1000)
                            done.set_result(None)

        reader = asyncio.create_task(read())
        try:
            for i, text in enumerate(texts):
                if think and i:
                    await asyncio.sleep(rng.uniform(*think))
                msg_id = uuid.uuid4().hex
                done = asyncio.get_running_loop().create_future()
                pending[msg_id] = (time.perf_counter(), done)
                await ws.send(json.dumps({"type": "message", "text": text, "client_msg_id": msg_id}))
                await asyncio.wait_for(asyncio.shield(done), REPLY_TIMEOUT_S)
            result.final_seq = int(await redis.hget(keys.conversation(cid), "seq") or 0)
            deadline = time.monotonic() + 10
            while (not result.seqs or max(result.seqs) < result.final_seq) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            reader.cancel()
    return result


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


async def _crowd(
    cluster: Cluster,
    users: int,
    processes: int,
    per_user: int,
    ramp_s: float,
    think: tuple[float, float] | None,
) -> dict[str, Any]:
    rng = random.Random(users * 10 + processes)
    urls = cluster.urls[:processes]
    keys = Keys(cluster.prefix)
    redis = aredis.Redis.from_url(cluster.redis_url, decode_responses=True, max_connections=64)
    limits = httpx.Limits(max_connections=200)
    load_start = os.getloadavg()
    server_cpu = _cpu_seconds(cluster.pids[:processes])
    client_cpu = time.process_time()

    async def arrive(i: int, http: httpx.AsyncClient) -> Socket:
        await asyncio.sleep(ramp_s * i / users)
        texts = [MESSAGES[(i + j) % len(MESSAGES)] for j in range(per_user)]
        return await _user(urls[i % len(urls)], http, redis, keys, texts, think, random.Random(rng.random()))

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        outcomes = await asyncio.gather(*(arrive(i, http) for i in range(users)), return_exceptions=True)
    elapsed = time.perf_counter() - started
    await redis.aclose()
    sockets = [o for o in outcomes if isinstance(o, Socket)]
    failures = [repr(o) for o in outcomes if not isinstance(o, Socket)]
    latencies = [ms for s in sockets for ms in s.latencies]
    checks = [s.check() for s in sockets]
    bad = {k: sum(c[k] for c in checks) for k in ("lost", "duplicated", "out_of_order", "unexpected")}
    server_cpu = _cpu_seconds(cluster.pids[:processes]) - server_cpu
    return {
        "users": users,
        "processes": processes,
        "per_user": per_user,
        "ramp_seconds": ramp_s,
        "think_seconds": list(think) if think else None,
        "messages": len(latencies),
        "messages_expected": users * per_user,
        "seconds": round(elapsed, 2),
        "messages_per_second": round(len(latencies) / elapsed, 1),
        "reply_ms": {**percentiles(latencies), "max": round(max(latencies, default=0.0), 1)},
        "events_checked": sum(len(s.seqs) for s in sockets),
        **bad,
        "sockets_with_problems": sum(1 for c in checks if any(c.values())),
        "error_frames": sum(s.errors for s in sockets),
        "error_codes": dict(sum((s.error_codes for s in sockets), Counter[str]())),
        "users_failed": len(failures),
        "failures": sorted(set(failures))[:5],
        "server_cpu_ms_per_message": round(1000 * server_cpu / max(1, len(latencies)), 2),
        "client_cpu_seconds": round(time.process_time() - client_cpu, 1),
        "load_average": {
            "start": [round(x, 2) for x in load_start],
            "end": [round(x, 2) for x in os.getloadavg()],
        },
    }


async def _warm_up(cluster: Cluster) -> None:
    """20 messages on every process first: the first parses and searches of a process are slow."""
    redis = aredis.Redis.from_url(cluster.redis_url, decode_responses=True)
    keys, rng = Keys(cluster.prefix), random.Random(0)
    texts = [MESSAGES[i % len(MESSAGES)] for i in range(20)]
    async with httpx.AsyncClient(timeout=30) as http:
        for base in cluster.urls:
            await _user(base, http, redis, keys, texts, None, rng)
    await redis.aclose()


async def _single_user(base: str, cluster: Cluster) -> dict[str, Any]:
    redis = aredis.Redis.from_url(cluster.redis_url, decode_responses=True)
    keys, rng = Keys(cluster.prefix), random.Random(0)
    texts = [MESSAGES[i % len(MESSAGES)] for i in range(SINGLE_USER_MESSAGES)]
    async with httpx.AsyncClient(timeout=30) as http:
        socket = await _user(base, http, redis, keys, texts, None, rng)
    await redis.aclose()
    return {"messages": len(socket.latencies), "reply_ms": percentiles(socket.latencies), **socket.check()}


def _log(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def _summary(run: dict[str, Any]) -> str:
    r = run["reply_ms"]
    return (
        f"{run['users']} users × {run['processes']} process(es): {run['messages']}/{run['messages_expected']} "
        f"replies, {run['messages_per_second']} msg/s, p50 {r['p50']} ms, p99 {r['p99']} ms; lost "
        f"{run['lost']}, dup {run['duplicated']}, out of order {run['out_of_order']}, failed {run['users_failed']}"
    )


def before_on_this_machine() -> dict[str, Any]:
    """Run the chat benchmark of the code before the rebuild (``git archive`` of BEFORE_COMMIT into a temporary
    folder, its own servers and model) on this machine, for a like-for-like comparison."""
    folder = Path(tempfile.mkdtemp(prefix="triage-before-"))
    archive = subprocess.run(["git", "archive", BEFORE_COMMIT], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    load_start = os.getloadavg()
    env = {**os.environ, "TRIAGE_SHARED_DIR": str(SHARED)}
    subprocess.run([sys.executable, "-m", "benchmarks.chat"], cwd=folder, env=env, check=True)
    old = json.loads((folder / "benchmarks" / "results" / "chat.json").read_text(encoding="utf-8"))
    return {
        "commit": BEFORE_COMMIT,
        "measured_at": old["measured_at"],
        "single_user": old["single_user"],
        "concurrent": old["concurrent"],
        "load_average": {
            "start": [round(x, 2) for x in load_start],
            "end": [round(x, 2) for x in os.getloadavg()],
        },
    }


def main() -> None:
    if sys.argv[1:] == ["before"]:  # `python -m benchmarks.chat before`: add the old code's run to chat.json
        path = RESULTS / "chat.json"
        result = json.loads(path.read_text(encoding="utf-8"))
        result["before_on_this_machine"] = before_on_this_machine()
        path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        _log(f"wrote {path}")
        return
    open_files = raise_open_files()
    only = {int(a) for a in sys.argv[1:]}  # e.g. `python -m benchmarks.chat 200` runs the 200-user rows
    runs: list[dict[str, Any]] = []
    single: dict[str, Any] = {}
    closed: dict[str, Any] = {}
    env = {"TRIAGE_ON_DUTY": "true"}
    for processes in (1, 2):
        scenarios = [s for s in SCENARIOS if s.processes == processes and (not only or s.users in only)]
        if not scenarios:
            continue
        with app_servers(processes, env) as cluster:
            _log(f"{processes} uvicorn process(es): {cluster.urls}")
            asyncio.run(_warm_up(cluster))
            if processes == 1 and not only:
                single = asyncio.run(_single_user(cluster.urls[0], cluster))
                _log(f"one user: p50 {single['reply_ms']['p50']} ms, p99 {single['reply_ms']['p99']} ms")
                closed = asyncio.run(
                    _crowd(cluster, CLOSED_LOOP["users"], 1, CLOSED_LOOP["per_user"], 0.0, None)
                )
                _log("closed loop (as before): " + _summary(closed))
            for s in scenarios:
                runs.append(asyncio.run(_crowd(cluster, s.users, s.processes, PER_USER, s.ramp_s, THINK_S)))
                _log(_summary(runs[-1]))
    write_result(
        "chat",
        {
            "server": "uvicorn processes (one event loop each) on one redis-server",
            "redis": "redis-server on loopback, appendonly",
            "client": "one Python asyncio process (websockets + httpx) on the same machine",
            "open_file_limit": open_files,
            "single_user": single,
            "closed_loop": closed,
            "before": BEFORE,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
