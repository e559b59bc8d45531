"""Redis commands and round trips per chat message, counted from the outside.

One app (the whole product, ``triagebot.app.create_app``) runs in this process under uvicorn, in a thread,
against a redis-server of the benchmark's own; users talk to it over real websockets. Two counts:

* Redis itself: ``INFO commandstats`` and ``INFO stats`` (``total_commands_processed``) before and after,
  less what the same app does idle for as long (the dispatcher's pass every 0.5 s, the hub);
* round trips, by wrapping redis-py's ``send_packed_command`` (one call per command or per pipeline) and
  ``pack_command`` (one per command), attributed to the engine when they happen inside ``Engine.handle``.

Nothing in ``bot/`` changes: the wrappers are installed here, on the classes, for this process only.

``python -m benchmarks.redis_cost`` (part of ``make bench``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import uvicorn
import websockets
from redis.asyncio.connection import AbstractConnection

from benchmarks.common import write_result
from bot.app import load_understanding
from bot.engine import Engine
from bot.settings import Settings
from bot.store import conversations, handoffs
from tests.live import RedisServer, free_port
from triagebot.app import create_app

ANSWERABLE = [  # first messages of fresh conversations that the KB answers: the common path
    "how do I reset my password",
    "发票查验失败，提示查验结果不一致",
    "收不到短信验证码",
    "export to excel keeps timing out",
    "审批一直卡着没人批",
]
CONVERSATION = [  # the chat benchmark's mix: questions, thanks, small talk, in both languages
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
ANSWER_USERS = 100
MIX_USERS = 20
SCRIPTS = {
    hashlib.sha1(source.encode()).hexdigest(): name
    for name, source in {
        "append_many": conversations._APPEND_MANY,
        "append": conversations._APPEND,
        "transition": handoffs._TRANSITION,
        "escalate": handoffs._ESCALATE,
    }.items()
}

IN_ENGINE: contextvars.ContextVar[Counter[str] | None] = contextvars.ContextVar("in_engine", default=None)


class Tally:
    """Round trips and commands as redis-py sends them, split into the engine's and everything else's."""

    def __init__(self) -> None:
        self.trips: Counter[str] = Counter()
        self.commands: Counter[str] = Counter()
        self.per_message: Counter[int] = Counter()  # the engine's round trips per message -> messages

    def install(self) -> None:
        send, pack, handle = (
            AbstractConnection.send_packed_command,
            AbstractConnection.pack_command,
            Engine.handle,
        )
        tally = self

        async def send_packed_command(self: Any, command: Any, check_health: bool = True) -> None:
            engine = IN_ENGINE.get()
            tally.trips["engine" if engine is not None else "other"] += 1
            if engine is not None:
                engine["trips"] += 1
            await send(self, command, check_health)

        def pack_command(self: Any, *args: Any) -> Any:
            name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
            name = name.split()[0].upper()
            if name == "EVALSHA":
                sha = args[1].decode() if isinstance(args[1], bytes) else str(args[1])
                name = f"EVALSHA {SCRIPTS.get(sha, sha[:8])}"
            where = "engine" if IN_ENGINE.get() is not None else "other"
            tally.commands[f"{where}: {name}"] += 1
            return pack(self, *args)

        async def counted_handle(self: Engine, message: Any) -> dict[str, Any]:
            mine: Counter[str] = Counter()
            token = IN_ENGINE.set(mine)
            try:
                return await handle(self, message)
            finally:
                IN_ENGINE.reset(token)
                tally.per_message[mine["trips"]] += 1

        AbstractConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]
        AbstractConnection.pack_command = pack_command  # type: ignore[method-assign]
        Engine.handle = counted_handle  # type: ignore[method-assign]

    def snapshot(self) -> tuple[Counter[str], Counter[str], Counter[int]]:
        return Counter(self.trips), Counter(self.commands), Counter(self.per_message)


def _server_counts(client: redis.Redis) -> tuple[int, Counter[str]]:
    stats: dict[str, Any] = client.info("stats")
    raw: dict[str, Any] = client.info("commandstats")
    calls = Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in raw.items()})
    return int(stats["total_commands_processed"]), calls


async def _connect(base: str, http: Any, stack: contextlib.AsyncExitStack) -> Any:
    conv = (await http.post(f"{base}/api/v1/conversations", json={"channel": "web"})).json()
    ws = await stack.enter_async_context(
        websockets.connect(base.replace("http", "ws") + "/ws/chat", ping_interval=None)
    )
    await ws.send(
        json.dumps({"type": "hello", "conversation_id": conv["conversation_id"], "token": conv["token"]})
    )
    await ws.recv()
    return ws


async def _say(ws: Any, text: str) -> None:
    """Send one message and wait for the first bot or system reply after the user's own event."""
    msg_id = uuid.uuid4().hex
    await ws.send(json.dumps({"type": "message", "text": text, "client_msg_id": msg_id}))
    seen_mine = False
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("client_msg_id") == msg_id and frame.get("role") == "user":
            seen_mine = True
        elif seen_mine and frame.get("role") in ("bot", "system"):
            return
        elif frame.get("type") == "error":
            raise RuntimeError(frame)


async def _conversations(
    base: str, users: list[list[str]], before: Callable[[], None] = lambda: None
) -> tuple[int, float]:
    """Each list of texts is one user with a fresh conversation. Every socket is opened first; then, after
    ``before()``, the messages go one at a time (each after the previous reply). Returns (messages, seconds)."""
    import httpx

    async with httpx.AsyncClient(timeout=30) as http, contextlib.AsyncExitStack() as stack:
        sockets = [await _connect(base, http, stack) for _ in users]
        before()
        started = time.monotonic()
        for ws, texts in zip(sockets, users, strict=True):
            for text in texts:
                await _say(ws, text)
        return sum(len(t) for t in users), time.monotonic() - started


def _measure(
    name: str,
    base: str,
    client: redis.Redis,
    tally: Tally,
    users: list[list[str]],
    idle_rate: dict[str, float],
) -> dict[str, Any]:
    marks: dict[str, Any] = {}

    def before() -> None:
        marks["server"], marks["tally"] = _server_counts(client), tally.snapshot()

    answered, seconds = asyncio.run(_conversations(base, users, before))
    total0, calls0 = marks["server"]
    trips0, commands0, per0 = marks["tally"]
    total1, calls1 = _server_counts(client)
    trips1, commands1, per1 = tally.snapshot()
    # Subtract what the app does idle for as long (the dispatcher's passes) and the INFO calls themselves.
    idle = {k: v * seconds for k, v in idle_rate.items()}
    server = {
        k: round((calls1[k] - calls0[k] - idle.get(f"server: {k}", 0.0)) / answered, 2)
        for k in calls1
        if calls1[k] != calls0[k] and k != "info"
    }
    client_side = {
        k: round((commands1[k] - commands0[k] - idle.get(f"client: {k}", 0.0)) / answered, 2)
        for k in commands1
        if commands1[k] != commands0[k]
    }
    trips = {k: round((trips1[k] - trips0[k] - idle.get(f"trips: {k}", 0.0)) / answered, 2) for k in trips1}
    per_message = per1 - per0
    processed = (total1 - total0 - idle.get("total", 0.0) - 2) / answered  # 2: our own INFO calls
    return {
        "name": name,
        "users": len(users),
        "messages": answered,
        "seconds": round(seconds, 2),
        "server_commands_per_message": round(processed, 2),
        "server_calls_per_message": {k: v for k, v in sorted(server.items(), key=lambda kv: -kv[1]) if v},
        "client_commands_per_message": {
            k: v for k, v in sorted(client_side.items(), key=lambda kv: -kv[1]) if abs(v) >= 0.01
        },
        "round_trips_per_message": trips,
        "engine_round_trips_histogram": {str(k): v for k, v in sorted(per_message.items())},
    }


def _idle_rate(client: redis.Redis, tally: Tally, seconds: float) -> dict[str, float]:
    total0, calls0 = _server_counts(client)
    trips0, commands0, _ = tally.snapshot()
    time.sleep(seconds)
    total1, calls1 = _server_counts(client)
    trips1, commands1, _ = tally.snapshot()
    rate: dict[str, float] = {}
    rate["total"] = (total1 - total0 - 2) / seconds
    for k in calls1:
        if k != "info":
            rate[f"server: {k}"] = (calls1[k] - calls0[k]) / seconds
    for k in commands1:
        rate[f"client: {k}"] = (commands1[k] - commands0[k]) / seconds
    for k in trips1:
        rate[f"trips: {k}"] = (trips1[k] - trips0[k]) / seconds
    return rate


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="triage-cost-"))
    server = RedisServer(folder / "redis").start()
    settings = Settings(
        redis_url=server.url,
        redis_prefix="cost:",
        var_dir=folder / "var",
        on_duty=True,
        heartbeat_seconds=3600,  # no heartbeat sweeps inside the measurement
        log_level="WARNING",
    )
    nlu, kb = load_understanding(settings)
    tally = Tally()
    tally.install()
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(create_app(settings, nlu, kb), port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the in-process app did not start")
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        asyncio.run(_conversations(base, [CONVERSATION, ANSWERABLE]))  # warm-up: scripts loaded, pools filled
        idle = _idle_rate(client, tally, 5.0)
        runs = [
            _measure(
                "answered question, fresh conversation",
                base,
                client,
                tally,
                [[ANSWERABLE[i % len(ANSWERABLE)]] for i in range(ANSWER_USERS)],
                idle,
            ),
            _measure(
                "the chat benchmark's 10-message conversation",
                base,
                client,
                tally,
                [CONVERSATION] * MIX_USERS,
                idle,
            ),
        ]
    finally:
        uv.should_exit = True
        thread.join(30)
        client.close()
        server.stop()
    for run in runs:
        print(
            f"  {run['name']}: {run['server_commands_per_message']} commands/message, round trips "
            f"{run['round_trips_per_message']}",
            file=sys.stderr,
        )
    write_result(
        "redis_cost",
        {
            "setup": "one app process (uvicorn, in this process) on its own redis-server; users over websockets, "
            "one message at a time; idle background (the dispatcher's 0.5 s passes) subtracted",
            "idle_commands_per_second": round(idle["total"], 1),
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
