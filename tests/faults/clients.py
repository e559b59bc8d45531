"""Scripted clients for the fault tests and ``benchmarks/faults.py``, written as a careful widget and console
would be: a dropped socket is reopened on whichever app process answers, resuming from the last seq seen; a
message is resent with the same ``client_msg_id`` until its echo arrives. :func:`audit` then counts, against
the transcript in Redis, what was lost, duplicated or delivered out of order."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import websockets

from bot.store.conversations import ConversationStore
from bot.store.keys import Keys
from tests.live import client_for

RESEND_AFTER_S = 5.0  # no echo and no error this long: send again (same client_msg_id)
RETRY_PAUSE_S = 0.2
HELLO_TIMEOUT_S = 10.0


class Socket(abc.ABC):
    """One websocket that is reopened on the next answering URL when it drops; every JSON frame it ever
    received is kept in ``frames``, and ``changed`` is set on each one (and when the socket drops)."""

    def __init__(self, urls: list[str]) -> None:
        self.urls, self.current = urls, 0
        self.frames: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.reconnects = 0
        self.ws: Any = None
        self._reader: asyncio.Task[None] | None = None

    @abc.abstractmethod
    def hello(self) -> dict[str, Any]:
        """The first frame of each connection."""

    @abc.abstractmethod
    def on_frame(self, frame: dict[str, Any]) -> None:
        """Tally one received frame."""

    @property
    def open(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def connect(self, deadline_s: float = 30.0) -> None:
        """Open the socket on the first URL that takes the hello, starting with the one last used."""
        deadline = time.monotonic() + deadline_s
        for index in itertools.cycle(range(len(self.urls))):
            url = self.urls[(self.current + index) % len(self.urls)]
            ws = None
            try:
                ws = await websockets.connect(url, open_timeout=5, max_size=None)
                await ws.send(json.dumps(self.hello()))
                first = json.loads(await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT_S))
                if first.get("type") != "hello":
                    raise ConnectionError(f"refused: {first}")
            except (OSError, TimeoutError, ConnectionError, websockets.WebSocketException):
                if ws is not None:
                    with contextlib.suppress(Exception):
                        await ws.close()
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(RETRY_PAUSE_S)
                continue
            if self.ws is not None:
                self.reconnects += 1
            self.current = (self.current + index) % len(self.urls)
            self.ws = ws
            self.on_frame(first)
            self._reader = asyncio.create_task(self._read(ws))
            return

    async def _read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                self.frames.append(frame)
                self.on_frame(frame)
                self.changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.changed.set()

    async def send(self, frame: dict[str, Any]) -> None:
        """Send, reopening the socket first when it dropped; a send into a dying socket is reconnected."""
        while True:
            if not self.open:
                await self.connect()
            try:
                await self.ws.send(json.dumps(frame))
                return
            except websockets.ConnectionClosed:
                await asyncio.sleep(RETRY_PAUSE_S)

    async def until(self, predicate: Any, timeout: float) -> bool:
        """Wait until ``predicate()`` holds, reopening the socket whenever it drops; False on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if not self.open:
                await self.connect()
                continue
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                return bool(predicate())
        return True

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader


class User(Socket):
    """A widget user of one conversation; ``seqs``: the seq of every event received, in arrival order."""

    def __init__(self, conv: dict[str, str], base_urls: list[str]) -> None:
        super().__init__([url + "/ws/chat" for url in base_urls])
        self.cid, self.token = conv["conversation_id"], conv["token"]
        self.seqs: list[int] = []
        self.acked: dict[str, float] = {}  # client_msg_id -> when its echo arrived
        self.sent: dict[str, float] = {}  # client_msg_id -> when it was first sent
        self.refused: dict[str, dict[str, Any]] = {}  # client_msg_id -> the last error frame for it

    @property
    def last_seq(self) -> int:
        return max(self.seqs, default=0)

    def hello(self) -> dict[str, Any]:
        return {"type": "hello", "conversation_id": self.cid, "token": self.token, "last_seq": self.last_seq}

    def on_frame(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "error" and frame.get("client_msg_id"):
            self.refused[frame["client_msg_id"]] = frame
        elif frame["type"] not in ("hello", "heartbeat", "typing", "error") and "seq" in frame:
            self.seqs.append(frame["seq"])
            if frame.get("role") == "user" and frame.get("client_msg_id"):
                self.acked.setdefault(frame["client_msg_id"], time.monotonic())

    async def say(self, text: str, client_msg_id: str, timeout: float = 90.0) -> None:
        """Send until the message's echo arrives: an error frame (retryable) or a dropped socket sends it
        again with the same ``client_msg_id``, which the server processes once."""
        self.sent.setdefault(client_msg_id, time.monotonic())
        deadline = time.monotonic() + timeout
        while client_msg_id not in self.acked:
            self.refused.pop(client_msg_id, None)
            await self.send({"type": "message", "text": text, "client_msg_id": client_msg_id})
            answered = await self.until(
                lambda: client_msg_id in self.acked or client_msg_id in self.refused,
                min(RESEND_AFTER_S, max(0.0, deadline - time.monotonic())),
            )
            refused = self.refused.get(client_msg_id)
            if refused is not None and not refused.get("retryable"):
                raise AssertionError(f"{client_msg_id} refused for good: {refused}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"{client_msg_id} in {self.cid} never acknowledged")
            if not answered or refused is not None:
                await asyncio.sleep(RETRY_PAUSE_S)

    async def talk(self, count: int, text: str = "你好", pause: float = 0.05) -> None:
        for i in range(count):
            await self.say(text, f"{self.cid[-6:]}-{i}")
            await asyncio.sleep(pause)


class Console(Socket):
    """An agent's console; ``seqs[cid]``: the seqs received per conversation, per connection (a reopened
    console replays the transcripts of the conversations it owns: each connection is checked on its own)."""

    def __init__(self, token: str, base_urls: list[str]) -> None:
        super().__init__([url + "/ws/agent" for url in base_urls])
        self.token = token
        self.connections: list[dict[str, list[int]]] = []

    def hello(self) -> dict[str, Any]:
        self.connections.append({})
        return {"type": "hello", "token": self.token}

    def on_frame(self, frame: dict[str, Any]) -> None:
        if "seq" in frame and frame.get("conversation_id") and frame["type"] not in ("hello", "heartbeat"):
            self.connections[-1].setdefault(frame["conversation_id"], []).append(frame["seq"])

    def seen(self, cid: str) -> set[int]:
        return {seq for connection in self.connections for seq in connection.get(cid, [])}

    def echoed(self, client_msg_id: str) -> bool:
        return any(f.get("role") == "agent" and f.get("client_msg_id") == client_msg_id for f in self.frames)

    async def say(self, cid: str, text: str, client_msg_id: str, timeout: float = 90.0) -> None:
        """Reply until the reply's echo arrives; an error frame or a dropped socket sends it again (the desk
        stores one reply per ``client_msg_id``)."""
        deadline = time.monotonic() + timeout
        while not self.echoed(client_msg_id):
            seen = len(self.frames)
            await self.send(
                {"type": "message", "conversation_id": cid, "text": text, "client_msg_id": client_msg_id}
            )
            await self.until(
                lambda seen=seen: (
                    self.echoed(client_msg_id) or any(f["type"] == "error" for f in self.frames[seen:])
                ),
                min(RESEND_AFTER_S, max(0.0, deadline - time.monotonic())),
            )
            if time.monotonic() >= deadline:
                raise AssertionError(f"reply {client_msg_id} in {cid} never acknowledged")
            if not self.echoed(client_msg_id):
                await asyncio.sleep(RETRY_PAUSE_S)


@dataclass(frozen=True)
class Ledger:
    """What a scenario's clients sent and received, counted against the transcripts."""

    sent: int  # distinct client_msg_ids sent
    acknowledged: int  # of those, echoed back to the sender
    lost: int  # acknowledged but not in the transcript, or sent and never stored
    duplicated: int  # a client_msg_id stored twice, or a seq delivered twice on one user connection
    out_of_order: int  # a seq received after a higher one
    missing: int  # a visible stored event its user never received
    problems: tuple[str, ...] = ()  # which, per conversation

    @property
    def clean(self) -> bool:
        return self.lost == self.duplicated == self.out_of_order == self.missing == 0


async def transcript(redis_url: str, prefix: str, cid: str) -> list[dict[str, Any]]:
    """Every stored event of ``cid`` with its seq, read in one XRANGE."""
    client = client_for(redis_url)
    try:
        return await ConversationStore(client, prefix).events_after(cid, 0, 100_000)
    finally:
        await client.aclose()


async def stored_seq(redis_url: str, prefix: str, cid: str) -> int:
    """The last seq stored for ``cid``."""
    client = client_for(redis_url)
    try:
        return int(await client.hget(Keys(prefix).conversation(cid), "seq") or 0)
    finally:
        await client.aclose()


async def audit(users: list[User], redis_url: str, prefix: str) -> Ledger:
    lost = duplicated = out_of_order = missing = 0
    problems: list[str] = []
    for user in users:
        events = await transcript(redis_url, prefix, user.cid)
        stored = [e["client_msg_id"] for e in events if e.get("role") == "user" and e.get("client_msg_id")]
        twice = sorted({cmid for cmid in stored if stored.count(cmid) > 1})
        redelivered = sorted({seq for seq in user.seqs if user.seqs.count(seq) > 1})
        unstored = sorted(set(user.sent) - set(stored))
        lost += len(unstored)
        duplicated += len(stored) - len(set(stored)) + len(user.seqs) - len(set(user.seqs))
        out_of_order += sum(1 for a, b in itertools.pairwise(user.seqs) if b < a)
        visible = {e["seq"] for e in events if e.get("visibility") != "internal"}
        missing += len(visible - set(user.seqs))
        for what, found in (("stored twice", twice), ("delivered twice", redelivered), ("lost", unstored)):
            if found:
                problems.append(f"{user.cid}: {what} {found}")
    return Ledger(
        sent=sum(len(u.sent) for u in users),
        acknowledged=sum(len(u.acked) for u in users),
        lost=lost,
        duplicated=duplicated,
        out_of_order=out_of_order,
        missing=missing,
        problems=tuple(problems),
    )


async def settled_audit(users: list[User], redis_url: str, prefix: str, timeout: float = 30.0) -> Ledger:
    """The audit once every user has received everything stored for its conversation (``timeout`` each)."""
    for user in users:
        final = await stored_seq(redis_url, prefix, user.cid)
        assert await user.until(lambda user=user, final=final: user.last_seq >= final, timeout)
    return await audit(users, redis_url, prefix)


async def ready_again(app_url: str, since: float, within: float = 30.0) -> None:
    """Poll ``/readyz`` until it answers 200, failing if that is not ``within`` seconds of ``since``."""
    async with httpx.AsyncClient(timeout=5) as http:
        while (await http.get(f"{app_url}/readyz")).status_code != 200:
            assert time.monotonic() - since < within, f"{app_url} not ready {within:.0f} s after the fault"
            await asyncio.sleep(0.2)
