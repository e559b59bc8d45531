"""WeCom channel benchmarks against real app processes, one Redis and a fake WeCom on loopback.

* members arrive (a ramp, not all at once), each sending a few text messages as WeCom's servers would
  (encrypted, signed callbacks; tests/channels/wecom_client.py), thinking after each answer; on one app
  process and on two sharing one Redis (members alternate between them). Measured: the callback's
  acknowledgement (client side, POST sent to 200 received; WeCom retries after 5 s) and the end-to-end time
  from the POST to the fake WeCom (tests/fakes/wecom.py) accepting the ``message/send`` call that carries
  that member's answer — the member's k-th answer matched to its k-th message. Every message must get exactly
  one answer: lost and duplicated answers are counted per member;
* outbound, after the members: one agent message appended to every member's conversation at once
  (``ConversationStore.append`` on the same Redis and prefix, as the desk does), for the sends per second
  the fake receives — one message per member, so the per-member pace (25 a minute) is never what is
  measured; then a burst of agent messages to each of a few members, for how the outbox merges a burst
  (messages appended vs send calls). The fake records what exceeded WeCom's own pace (``dropped``): it must
  stay empty.

``python -m benchmarks.platforms`` (part of ``make bench``); ``python -m benchmarks.platforms 200`` runs the
200-member rows only.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
import redis.asyncio as aredis
from pydantic import SecretStr

from benchmarks.common import percentiles, write_result
from benchmarks.servers import Cluster, app_servers, raise_open_files
from bot.channels.platform import WeComApp
from bot.channels.wecom import PER_MEMBER_PER_MINUTE, conversation_id
from bot.store.conversations import ConversationStore
from tests.channels.wecom_client import AES_KEY, AGENT_ID, CORP_ID, SECRET, TOKEN, WeComMember
from tests.fakes.wecom import FakeWeCom, WeComMessage

# Questions whose answers are one short send each and never a handoff (so "one message, one answer" holds).
MESSAGES = [
    "发票查验失败，提示查验结果不一致",
    "谢谢",
    "how do I reset my password",
    "收不到短信验证码",
    "thanks",
    "export to excel keeps timing out",
    "审批一直卡着没人批",
    "好的谢谢",
]
PER_MEMBER = 3
THINK_S = (2.0, 4.0)  # uniform, between an answer and the member's next message
ANSWER_TIMEOUT_S = 60.0  # a member waits this long for an answer, then counts it lost and goes on
SETTLE_S = 2.0  # after the last answer, for late duplicates to show
WECOM_RETRY_S = 5.0  # WeCom retries a callback not answered in this long
POLL_S = 0.01
MERGE_MEMBERS = 50
MERGE_MESSAGES = 20  # + 3 answers + 1 fan-out message stays under the pace even if nothing were merged
APPEND_CONCURRENCY = 32


@dataclass(frozen=True)
class Scenario:
    members: int
    processes: int
    ramp_s: float  # members arrive evenly over this long


SCENARIOS = [Scenario(200, 1, 15), Scenario(500, 1, 20), Scenario(200, 2, 15), Scenario(500, 2, 20)]
APP = WeComApp(
    corp_id=CORP_ID,
    agent_id=AGENT_ID,
    token=SecretStr(TOKEN),
    aes_key=SecretStr(AES_KEY),
    secret=SecretStr(SECRET),
)


@dataclass
class Member:
    name: str
    posted: list[float] = field(default_factory=list)  # time.time() of each callback answered 200
    ack_ms: list[float] = field(default_factory=list)
    refused: Counter[int] = field(default_factory=Counter)  # non-200 statuses
    unanswered: int = 0  # answers not seen within ANSWER_TIMEOUT_S


class Answers:
    """Follows the fake's accepted sends, so each member can wait for its own answer before thinking."""

    def __init__(self, fake: FakeWeCom) -> None:
        self.fake = fake
        self.read = len(fake.sent)
        self.count: Counter[str] = Counter()
        self._waiting: dict[str, asyncio.Future[None]] = {}

    async def watch(self) -> None:
        while True:
            sent = self.fake.sent
            for message in sent[self.read :]:
                self.count[message.touser] += 1
                waiter = self._waiting.pop(message.touser, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            self.read = len(sent)
            await asyncio.sleep(POLL_S)

    async def wait(self, member: str, n: int, timeout: float) -> bool:
        """True once ``member`` has ``n`` sends; False after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.count[member] < n:
            left = deadline - loop.time()
            if left <= 0:
                return False
            waiter = self._waiting.setdefault(member, loop.create_future())
            try:
                await asyncio.wait_for(asyncio.shield(waiter), left)
            except TimeoutError:
                return False
        return True


async def _member(
    name: str,
    http: httpx.AsyncClient,
    answers: Answers,
    texts: list[str],
    think: tuple[float, float] | None,
    rng: random.Random,
) -> Member:
    member, wecom = Member(name), WeComMember(http, name)
    for k, text in enumerate(texts):
        if think and k:
            await asyncio.sleep(rng.uniform(*think))
        request = wecom.say(text)  # encrypted and signed here; the POST starts when awaited
        posted, started = time.time(), time.perf_counter()
        response = await request
        member.ack_ms.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            member.refused[response.status_code] += 1
            continue
        member.posted.append(posted)
        if not await answers.wait(name, len(member.posted), ANSWER_TIMEOUT_S):
            member.unanswered += 1
    return member


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def _by_member(messages: list[WeComMessage], names: set[str]) -> dict[str, list[WeComMessage]]:
    grouped: dict[str, list[WeComMessage]] = defaultdict(list)
    for message in messages:
        if message.touser in names:
            grouped[message.touser].append(message)
    return grouped


def _clients(urls: list[str]) -> list[httpx.AsyncClient]:
    # No client-side queueing: every member may have a connection of its own, as WeCom's servers would.
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends them: a POST on a connection the
    # server is closing at that moment fails with ReadError (the client's race, not the app's).
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=2000, keepalive_expiry=2.0)
    return [httpx.AsyncClient(base_url=url, timeout=60, limits=limits) for url in urls]


async def _crowd(cluster: Cluster, fake: FakeWeCom, s: Scenario, tag: str) -> dict[str, Any]:
    rng = random.Random(s.members * 10 + s.processes)
    clients = _clients(cluster.urls[: s.processes])
    names = [f"{tag}-{i:04d}" for i in range(s.members)]
    answers = Answers(fake)
    watcher = asyncio.create_task(answers.watch())
    load_start = os.getloadavg()
    server_cpu = _cpu_seconds(cluster.pids[: s.processes])
    client_cpu = time.process_time()

    async def arrive(i: int) -> Member:
        await asyncio.sleep(s.ramp_s * i / s.members)
        texts = [MESSAGES[(i + j) % len(MESSAGES)] for j in range(PER_MEMBER)]
        return await _member(
            names[i], clients[i % len(clients)], answers, texts, THINK_S, random.Random(rng.random())
        )

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(arrive(i) for i in range(s.members)), return_exceptions=True)
    elapsed = time.perf_counter() - started
    await asyncio.sleep(SETTLE_S)
    watcher.cancel()
    for client in clients:
        await client.aclose()
    server_cpu = _cpu_seconds(cluster.pids[: s.processes]) - server_cpu
    members = [o for o in outcomes if isinstance(o, Member)]
    failures = [repr(o) for o in outcomes if not isinstance(o, Member)]
    sent = _by_member(fake.sent, set(names))
    dropped = _by_member(fake.dropped, set(names))
    end_to_end, lost, duplicated = [], 0, 0
    for member in members:
        got = sent.get(member.name, [])
        lost += max(0, len(member.posted) - len(got))
        duplicated += max(0, len(got) - len(member.posted))
        end_to_end += [(m.at - at) * 1000 for m, at in zip(got, member.posted, strict=False)]
    acks = [ms for m in members for ms in m.ack_ms]
    accepted = sum(len(m.posted) for m in members)
    return {
        "members": s.members,
        "processes": s.processes,
        "per_member": PER_MEMBER,
        "ramp_seconds": s.ramp_s,
        "think_seconds": list(THINK_S),
        "callbacks": len(acks),
        "callbacks_expected": s.members * PER_MEMBER,
        "callbacks_refused": dict(sum((m.refused for m in members), Counter[int]())),
        "ack_ms": {**percentiles(acks), "max": round(max(acks, default=0.0), 1)},
        "acks_over_wecom_retry": sum(1 for ms in acks if ms >= WECOM_RETRY_S * 1000),
        "answered": len(end_to_end),
        "end_to_end_ms": {**percentiles(end_to_end), "max": round(max(end_to_end, default=0.0), 1)},
        "lost": lost,
        "duplicated": duplicated,
        "dropped": sum(len(d) for d in dropped.values()),
        "members_failed": len(failures),
        "failures": sorted(set(failures))[:5],
        "seconds": round(elapsed, 2),
        "messages_per_second": round(accepted / elapsed, 1),
        "server_cpu_ms_per_message": round(1000 * server_cpu / max(1, accepted), 2),
        "client_cpu_seconds": round(time.process_time() - client_cpu, 1),
        "load_average": {
            "start": [round(x, 2) for x in load_start],
            "end": [round(x, 2) for x in os.getloadavg()],
        },
    }


async def _arrived(fake: FakeWeCom, after: int, done: Any, timeout: float) -> list[WeComMessage]:
    """The fake's sends after index ``after``, once ``done(sends)`` holds or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while True:
        sends = fake.sent[after:]
        if done(sends) or time.monotonic() > deadline:
            return sends
        await asyncio.sleep(POLL_S)


def _max_per_minute(messages: list[WeComMessage]) -> int:
    """The most sends any one member got within 60 s."""
    times: dict[str, list[float]] = defaultdict(list)
    for message in messages:
        times[message.touser].append(message.at)
    most = 0
    for ats in times.values():
        ats.sort()
        first = 0
        for last, at in enumerate(ats):
            while at - ats[first] >= 60:
                first += 1
            most = max(most, last - first + 1)
    return most


async def _outbound(cluster: Cluster, fake: FakeWeCom, names: list[str], processes: int) -> dict[str, Any]:
    redis = aredis.Redis.from_url(cluster.redis_url, decode_responses=True, max_connections=64)
    store = ConversationStore(redis, cluster.prefix)
    slots = asyncio.Semaphore(APPEND_CONCURRENCY)
    appended_at: dict[str, float] = {}

    async def append(name: str, text: str) -> None:
        async with slots:
            appended_at.setdefault(name, time.time())
            await store.append(conversation_id(APP, name), {"type": "message", "role": "agent", "text": text})

    # Fan-out: one agent message to every member at once.
    wanted, before, load_start = set(names), len(fake.sent), os.getloadavg()
    server_cpu = _cpu_seconds(cluster.pids[:processes])
    started = time.time()
    await asyncio.gather(*(append(name, f"客服通知：{name} 的工单已更新") for name in names))
    appended = time.time()
    sends = await _arrived(fake, before, lambda got: len({m.touser for m in got} & wanted) >= len(wanted), 60)
    await asyncio.sleep(1.0)
    sends = [m for m in fake.sent[before:] if m.touser in wanted]
    server_cpu = _cpu_seconds(cluster.pids[:processes]) - server_cpu
    last = max((m.at for m in sends), default=started)
    latency = [(m.at - appended_at[m.touser]) * 1000 for m in sends]
    fanout = {
        "conversations": len(names),
        "received": len(sends),
        "lost": len(wanted - {m.touser for m in sends}),
        "duplicated": len(sends) - len({m.touser for m in sends}),
        "append_seconds": round(appended - started, 2),
        "seconds": round(last - started, 2),
        "sends_per_second": round(len(sends) / max(1e-9, last - started), 1),
        "append_to_send_ms": {**percentiles(latency), "max": round(max(latency, default=0.0), 1)},
        "server_cpu_ms_per_send": round(1000 * server_cpu / max(1, len(sends)), 2),
        "load_average_start": [round(x, 2) for x in load_start],
    }

    # Bursts: MERGE_MESSAGES agent messages to each of MERGE_MEMBERS members, appended one after another.
    burst_names = names[:MERGE_MEMBERS]
    texts = {name: [f"第 {n} 条说明（{name}）" for n in range(MERGE_MESSAGES)] for name in burst_names}
    before, started = len(fake.sent), time.time()

    async def burst(name: str) -> None:
        for text in texts[name]:
            await store.append(conversation_id(APP, name), {"type": "message", "role": "agent", "text": text})

    await asyncio.gather(*(burst(name) for name in burst_names))

    def complete(got: list[WeComMessage]) -> bool:
        joined = "\n".join(m.content for m in got)
        return all(texts[name][-1] in joined for name in burst_names)

    await _arrived(fake, before, complete, 60)
    await asyncio.sleep(1.0)
    sends = [m for m in fake.sent[before:] if m.touser in set(burst_names)]
    joined = "\n".join(m.content for m in sends)
    everything = [t for name in burst_names for t in texts[name]]
    await redis.aclose()
    merge = {
        "members": len(burst_names),
        "appended": len(everything),
        "send_calls": len(sends),
        "lost": sum(1 for t in everything if t not in joined),
        "duplicated": sum(max(0, joined.count(t) - 1) for t in everything),
        "seconds": round(max((m.at for m in sends), default=started) - started, 2),
    }
    return {
        "processes": processes,
        "fanout": fanout,
        "merge": merge,
        "dropped": len(fake.dropped),
        "max_sends_to_one_member_per_minute": _max_per_minute(fake.sent),
        "token_fetches": fake.token_fetches,
    }


async def _warm_up(cluster: Cluster, fake: FakeWeCom, processes: int) -> None:
    """16 messages on every process first: the first parses and searches of a process are slow."""
    answers = Answers(fake)
    watcher = asyncio.create_task(answers.watch())
    clients = _clients(cluster.urls)
    for i, client in enumerate(clients):
        for j in range(2):  # 8 messages each: well under the pace of one member
            await _member(f"warm{processes}-{i}-{j}", client, answers, MESSAGES, None, random.Random(0))
    watcher.cancel()
    for client in clients:
        await client.aclose()


def _log(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def _summary(run: dict[str, Any]) -> str:
    ack, e2e = run["ack_ms"], run["end_to_end_ms"]
    return (
        f"{run['members']} members × {run['processes']} process(es): {run['answered']}/"
        f"{run['callbacks_expected']} answered, ack p50 {ack['p50']} / p99 {ack['p99']} / max {ack['max']} ms, "
        f"end to end p50 {e2e['p50']} / p99 {e2e['p99']} ms; lost {run['lost']}, dup {run['duplicated']}, "
        f"dropped {run['dropped']}, failed {run['members_failed']}"
    )


def main() -> None:
    open_files = raise_open_files()
    only = {int(a) for a in sys.argv[1:]}  # e.g. `python -m benchmarks.platforms 200`
    runs: list[dict[str, Any]] = []
    outbound: list[dict[str, Any]] = []
    for processes in (1, 2):
        scenarios = [s for s in SCENARIOS if s.processes == processes and (not only or s.members in only)]
        if not scenarios:
            continue
        with FakeWeCom(corpid=CORP_ID, corpsecret=SECRET, agentid=AGENT_ID) as fake:
            env = {
                "TRIAGE_WECOM_TOKEN": TOKEN,
                "TRIAGE_WECOM_AES_KEY": AES_KEY,
                "TRIAGE_WECOM_CORP_ID": CORP_ID,
                "TRIAGE_WECOM_AGENT_ID": str(AGENT_ID),
                "TRIAGE_WECOM_SECRET": SECRET,
                "TRIAGE_WECOM_API_BASE": fake.url,
            }
            with app_servers(processes, env) as cluster:
                _log(f"{processes} uvicorn process(es): {cluster.urls}; fake WeCom {fake.url}")
                asyncio.run(_warm_up(cluster, fake, processes))
                names: list[str] = []
                for s in scenarios:
                    tag = f"p{processes}m{s.members}"
                    runs.append(asyncio.run(_crowd(cluster, fake, s, tag)))
                    names += [f"{tag}-{i:04d}" for i in range(s.members)]
                    _log(_summary(runs[-1]))
                outbound.append(asyncio.run(_outbound(cluster, fake, names, processes)))
                out = outbound[-1]
                _log(
                    f"outbound: {out['fanout']['received']}/{out['fanout']['conversations']} at "
                    f"{out['fanout']['sends_per_second']} sends/s; burst {out['merge']['appended']} appended → "
                    f"{out['merge']['send_calls']} sends, lost {out['merge']['lost']}; dropped {out['dropped']}"
                )
    write_result(
        "platforms",
        {
            "server": "uvicorn processes (one event loop each) on one redis-server",
            "redis": "redis-server on loopback, appendonly",
            "client": "one Python process: the members (asyncio, httpx) and the fake WeCom (threaded HTTP "
            "server) on the same machine",
            "open_file_limit": open_files,
            "wecom_retry_seconds": WECOM_RETRY_S,
            "pace_per_member_per_minute": {"app": PER_MEMBER_PER_MINUTE, "wecom": 30},
            "runs": runs,
            "outbound": outbound,
        },
    )


if __name__ == "__main__":
    main()
