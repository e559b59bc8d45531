"""End-to-end chat benchmarks over the websocket, against a real server process and a real Redis:
reply latency for one user, and throughput with 200 concurrent users on one app process.

``python -m benchmarks.chat`` (part of ``make bench``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from typing import Any

import httpx
import websockets

from benchmarks.common import percentiles, write_result
from benchmarks.servers import app_servers

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
USERS = 200
PER_USER = 10
SINGLE_USER_MESSAGES = 300


async def _conversation(http: httpx.AsyncClient, base: str) -> dict[str, str]:
    response = await http.post(f"{base}/api/v1/conversations", json={"channel": "web"})
    response.raise_for_status()
    body: dict[str, str] = response.json()
    return body


async def _session(base: str, conversation: dict[str, str], texts: list[str], latencies: list[float]) -> None:
    url = base.replace("http", "ws") + "/ws/chat"
    async with websockets.connect(url, max_size=2**20) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "hello",
                    "conversation_id": conversation["conversation_id"],
                    "token": conversation["token"],
                    "last_seq": 0,
                }
            )
        )
        await ws.recv()
        for text in texts:
            msg_id = uuid.uuid4().hex
            started = time.perf_counter()
            await ws.send(json.dumps({"type": "message", "text": text, "client_msg_id": msg_id}))
            while True:
                frame: dict[str, Any] = json.loads(await ws.recv())
                if frame.get("type") == "message" and frame.get("role") in ("bot", "system"):
                    latencies.append((time.perf_counter() - started) * 1000)
                    break
                if frame.get("type") == "error":
                    raise RuntimeError(frame)


async def run(base: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        single: list[float] = []
        texts = [MESSAGES[i % len(MESSAGES)] for i in range(SINGLE_USER_MESSAGES)]
        await _session(base, await _conversation(http, base), texts[:20], [])  # warm-up
        await _session(base, await _conversation(http, base), texts, single)
        conversations = [await _conversation(http, base) for _ in range(USERS)]
    loaded: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _session(base, c, [MESSAGES[(i + j) % len(MESSAGES)] for j in range(PER_USER)], loaded)
            for i, c in enumerate(conversations)
        )
    )
    elapsed = time.perf_counter() - started
    return {
        "single_user": {"messages": len(single), "reply_ms": percentiles(single)},
        "concurrent": {
            "users": USERS,
            "messages": len(loaded),
            "seconds": round(elapsed, 2),
            "messages_per_second": round(len(loaded) / elapsed, 1),
            "reply_ms": percentiles(loaded),
        },
    }


def main() -> None:
    with app_servers(1, {"TRIAGE_ON_DUTY": "true"}) as cluster:
        print(f"  benchmarking {cluster.urls[0]} (one uvicorn process)", file=sys.stderr, flush=True)
        result = asyncio.run(run(cluster.urls[0]))
    write_result("chat", {"server": "1 uvicorn process", "redis": "redis-server on loopback", **result})


if __name__ == "__main__":
    main()
