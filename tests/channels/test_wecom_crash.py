"""A kill -9 of the process that took a WeCom callback, before it replied, must not lose the reply.

Real app processes (uvicorn) on one Redis, all serving the same WeCom app through one FakeWeCom on loopback.
The callback is acknowledged once its message is in the durable inbox (bot/inbox.py); the reply is pushed by
the outbox (bot/outbox.py). Either may be cut short by SIGKILL; another process claims the dead one's pending
entries after the lease (``TRIAGE_OUTBOX_LEASE_SECONDS``) and finishes the work.

The windows are made deterministic with the fake, not with hooks in the app: a stalled ``message/send``
holds the reply in flight; a stalled ``media/get`` keeps the process busy with a member's image, so the text
the member sends next is taken (pending in the inbox) but waits behind it, unhandled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis
from pydantic import SecretStr

from bot.channels.platform import WeComApp
from bot.channels.wecom import conversation_id
from bot.store.keys import Keys
from tests.channels.wecom_client import AES_KEY, AGENT_ID, CORP_ID, SECRET, TOKEN, WeComMember
from tests.conftest import DATA_DIR, KB_DIR, ROOT
from tests.fakes.wecom import FakeWeCom
from tests.live import free_port, wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.faults]  # processes killed: make test-faults

SEND, MEDIA = "/cgi-bin/message/send", "/cgi-bin/media/get"
QUESTION = "怎么导出报销单"
PICTURE = b"\x89PNG a screenshot of the error"
SETTLE_S = 45.0  # generous: a slow CI machine starts claiming only after the lease and a sweep


@dataclass
class App:
    name: str
    url: str
    process: subprocess.Popen[bytes]

    @property
    def callback(self) -> str:
        return f"{self.url}/channels/wecom/callback"

    def owns(self, consumer: str) -> bool:
        """Whether an inbox or outbox consumer name (``host:pid:token``) is this process's."""
        return consumer.split(":")[-2] == str(self.process.pid)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@dataclass
class Apps:
    """App processes started on demand; they share one Redis key prefix and one FakeWeCom."""

    folder: Path
    env: dict[str, str]
    started: list[App] = field(default_factory=list)

    def start(self, *names: str) -> list[App]:
        """Start the named processes side by side and wait until each is ready."""
        fresh = []
        for name in names:
            var = self.folder / name
            var.mkdir()
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", "triagebot.main:app", "--host", "127.0.0.1"]
            with (var / "server.log").open("wb") as log:
                process = subprocess.Popen(
                    [*command, "--port", str(port)],
                    cwd=ROOT,
                    env={**self.env, "TRIAGE_VAR_DIR": str(var), "TRIAGE_ROTA_FILE": str(var / "rota.yml")},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            fresh.append(App(name, f"http://127.0.0.1:{port}", process))
            self.started.append(fresh[-1])
        for app in fresh:
            wait_until_ready(app.url, app.process, timeout=90, log=self.folder / app.name / "server.log")
        return fresh

    def owner(self, consumer: str) -> App:
        return next(app for app in self.started if app.owns(consumer))

    def close(self) -> None:
        for app in self.started:
            if app.process.poll() is None:
                app.process.terminate()
                app.process.wait(10)


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    with FakeWeCom(corpid=CORP_ID, corpsecret=SECRET, agentid=AGENT_ID) as platform:
        yield platform


@pytest.fixture
def apps(
    tmp_path: Path, redis_url: str, redis_prefix: str, model_dir: Path, fake: FakeWeCom
) -> Iterator[Apps]:
    env = {
        **os.environ,
        "TRIAGE_REDIS_URL": redis_url,
        "TRIAGE_REDIS_PREFIX": redis_prefix,
        "TRIAGE_MODEL_DIR": str(model_dir.parent),
        "TRIAGE_DATA_DIR": str(DATA_DIR),
        "TRIAGE_KB_DIR": str(KB_DIR),
        "TRIAGE_ON_DUTY": "true",
        "TRIAGE_OUTBOX_LEASE_SECONDS": "2",
        "TRIAGE_OUTBOX_BACKOFF_SECONDS": "0.05",
        "TRIAGE_WECOM_TOKEN": TOKEN,
        "TRIAGE_WECOM_AES_KEY": AES_KEY,
        "TRIAGE_WECOM_CORP_ID": CORP_ID,
        "TRIAGE_WECOM_AGENT_ID": str(AGENT_ID),
        "TRIAGE_WECOM_SECRET": SECRET,
        "TRIAGE_WECOM_API_BASE": fake.url,
    }
    started = Apps(tmp_path, env)
    try:
        yield started
    finally:
        fake.release()
        started.close()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture
def db(redis_url: str) -> Iterator[Any]:
    connection = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


# ------------------------------------------------------------------------------- reading Redis
def cid_of(user: str) -> str:
    app = WeComApp(
        corp_id=CORP_ID,
        agent_id=AGENT_ID,
        token=SecretStr(TOKEN),
        aes_key=SecretStr(AES_KEY),
        secret=SecretStr(SECRET),
    )
    return conversation_id(app, user)


def transcript(db: Any, prefix: str, cid: str) -> list[dict[str, Any]]:
    return [
        json.loads(f["e"]) | {"seq": int(i.split("-")[0])}
        for i, f in db.xrange(Keys(prefix).events(cid))
        if f
    ]


def said(db: Any, prefix: str, cid: str, msg_id: str) -> list[dict[str, Any]]:
    """The transcript's copies of the member's text message ``msg_id``."""
    return [
        e
        for e in transcript(db, prefix, cid)
        if e.get("role") == "user" and e.get("type") == "message" and e.get("client_msg_id") == msg_id
    ]


def answer_to(db: Any, prefix: str, cid: str, msg_id: str) -> str:
    """The bot's first message after the member's text ``msg_id``."""
    events = transcript(db, prefix, cid)
    asked = next(e["seq"] for e in events if e.get("client_msg_id") == msg_id and e.get("role") == "user")
    return str(next(e["text"] for e in events if e["seq"] > asked and e.get("role") == "bot"))


def settled(db: Any, prefix: str, cid: str) -> bool:
    """Every inbox entry handled and deleted, and every event of ``cid`` read and acknowledged by the outbox:
    nothing more will be stored for the conversation or sent to the member."""
    keys = Keys(prefix)
    if db.xlen(keys.inbox) or db.xpending(keys.inbox, "inbox")["pending"]:
        return False
    seq = int(db.hget(keys.conversation(cid), "seq") or 0)
    try:
        groups = db.xinfo_groups(keys.events(cid))
    except sync_redis.ResponseError:  # no transcript yet
        return False
    group = next((g for g in groups if g["name"] == "outbox"), None)
    return (
        group is not None
        and int(group["pending"]) == 0
        and int(str(group["last-delivered-id"]).split("-")[0]) == seq
    )


def inbox_taken_by(db: Any, prefix: str) -> list[str]:
    """The consumer holding each pending inbox entry, in entry order."""
    pending = db.xpending_range(Keys(prefix).inbox, "inbox", min="-", max="+", count=100)
    return [str(p["consumer"]) for p in pending]


def assert_nothing_lost(db: Any, prefix: str, cid: str, fake: FakeWeCom, user: str) -> None:
    """Every reply the transcript holds for the member reached them, and no delivery was given up."""
    events = transcript(db, prefix, cid)
    assert not [e for e in events if e.get("type") == "delivery_failed"], events
    received = "\n".join(fake.texts_to(user))
    for event in events:
        if event.get("type") == "message" and event.get("role") in ("bot", "system"):
            assert event["text"] in received, (event["text"], received)


def warm_up(http: httpx.Client, fake: FakeWeCom, app: App) -> None:
    """Answer another member first: the access token is then in Redis, so the next request the stalled fake
    holds is the send or fetch itself, not a ``gettoken`` whose dead caller would keep the token lock."""
    WeComMember(http, "warmup", app.callback).say(QUESTION)
    fake.wait_for(lambda f: f.texts_to("warmup"), timeout=30)


# -------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("reached_wecom", [False, True], ids=["send-cut-off", "send-processed"])
def test_a_reply_in_flight_when_its_sender_is_killed_is_sent_by_the_survivor(
    apps: Apps, fake: FakeWeCom, http: httpx.Client, db: Any, redis_prefix: str, reached_wecom: bool
) -> None:
    """The process pushing the answer dies while WeCom holds its ``message/send``; the other one claims the
    outbox entry after the lease and sends it.

    WeCom's send API takes no idempotency key, so delivery is at least once on the wire. Cut off (the
    request dropped before WeCom processed it) the member gets the answer exactly once; processed (WeCom
    accepted the dead process's request, only the answer never came back) the member gets it twice."""
    first, second = apps.start("a", "b")
    warm_up(http, fake, first)
    fake.stall()
    user, msg_id = "inflight", uuid.uuid4().hex[:16]
    assert WeComMember(http, user, first.callback).say(QUESTION, msg_id=msg_id).status_code == 200
    cid = cid_of(user)
    fake.wait_for(
        lambda f: [r for r in f.requests_to(SEND) if r.status == 0 and r.request.json()["touser"] == user],
        timeout=30,
    )
    # Whichever process took the callback, the outbox lease names the one whose send is held.
    holder = fake.wait_for(lambda _: db.get(Keys(redis_prefix).outbox_lease(cid)))
    sender = apps.owner(holder)
    survivor = second if sender is first else first
    sender.kill()
    if not reached_wecom:
        fake.down()  # drops the held request unanswered and unprocessed
        fake.up()
    fake.release()

    answer = fake.wait_for(
        lambda _: said(db, redis_prefix, cid, msg_id) and answer_to(db, redis_prefix, cid, msg_id)
    )
    fake.wait_for(lambda f: any(answer in t for t in f.texts_to(user)), timeout=SETTLE_S)
    fake.wait_for(lambda _: settled(db, redis_prefix, cid), timeout=SETTLE_S)
    assert survivor.process.poll() is None
    assert len(said(db, redis_prefix, cid, msg_id)) == 1
    times = sum(answer in t for t in fake.texts_to(user))
    assert times == (2 if reached_wecom else 1), fake.texts_to(user)
    assert_nothing_lost(db, redis_prefix, cid, fake, user)


def _take_then_die(apps: Apps, fake: FakeWeCom, http: httpx.Client, db: Any, prefix: str) -> tuple[str, str]:
    """Only process A runs: the member sends a picture (A's ``media/get`` stalls) and then a text, which A
    acknowledges and takes but leaves queued behind the picture; A is killed. Returns (user, text msg_id)."""
    (first,) = apps.start("a")
    warm_up(http, fake, first)
    fake.add_media("SHOT-1", PICTURE, "image/png", "error.png")
    user, msg_id = "taken", uuid.uuid4().hex[:16]
    member = WeComMember(http, user, first.callback)
    fake.stall()
    assert member.send("image", PicUrl="http://example.invalid/p.png", MediaId="SHOT-1").status_code == 200
    fake.wait_for(lambda f: [r for r in f.requests_to(MEDIA) if r.status == 0], timeout=30)
    assert member.say(QUESTION, msg_id=msg_id).status_code == 200
    taken = fake.wait_for(lambda _: len(inbox_taken_by(db, prefix)) == 2 and inbox_taken_by(db, prefix))
    assert all(first.owns(consumer) for consumer in taken), taken
    first.kill()
    fake.release()  # the dead process's request is answered to nobody
    events = transcript(db, prefix, cid_of(user))
    assert not [e for e in events if e.get("role") in ("user", "bot")], events  # taken, not handled
    return user, msg_id


def test_a_message_taken_but_not_handled_is_answered_once_by_the_next_process(
    apps: Apps, fake: FakeWeCom, http: httpx.Client, db: Any, redis_prefix: str
) -> None:
    """B, started after A died, claims A's pending inbox entries after the lease and handles them in order."""
    user, msg_id = _take_then_die(apps, fake, http, db, redis_prefix)
    cid = cid_of(user)
    apps.start("b")
    fake.wait_for(lambda _: settled(db, redis_prefix, cid) and said(db, redis_prefix, cid, msg_id), SETTLE_S)
    assert len(said(db, redis_prefix, cid, msg_id)) == 1
    events = transcript(db, redis_prefix, cid)
    assert len([e for e in events if e.get("type") == "attachment"]) == 1
    answer = answer_to(db, redis_prefix, cid, msg_id)
    assert sum(answer in t for t in fake.texts_to(user)) == 1, fake.texts_to(user)
    assert_nothing_lost(db, redis_prefix, cid, fake, user)


def test_a_retried_callback_to_the_survivor_is_handled_once_overall(
    apps: Apps, fake: FakeWeCom, http: httpx.Client, db: Any, redis_prefix: str
) -> None:
    """WeCom retries the text (same MsgId) to B while A lies dead holding it: B acknowledges the retry
    without storing it again, and handles A's entry once."""
    user, msg_id = _take_then_die(apps, fake, http, db, redis_prefix)
    cid = cid_of(user)
    (second,) = apps.start("b")
    retry = WeComMember(http, user, second.callback)
    for _ in range(2):  # WeCom's second and third tries
        assert retry.say(QUESTION, msg_id=msg_id).status_code == 200
    fake.wait_for(lambda _: settled(db, redis_prefix, cid) and said(db, redis_prefix, cid, msg_id), SETTLE_S)
    assert len(said(db, redis_prefix, cid, msg_id)) == 1
    answer = answer_to(db, redis_prefix, cid, msg_id)
    assert sum(answer in t for t in fake.texts_to(user)) == 1, fake.texts_to(user)
    assert_nothing_lost(db, redis_prefix, cid, fake, user)
