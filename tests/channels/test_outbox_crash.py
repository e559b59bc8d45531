"""Two real app processes share one Redis; the one delivering a reply is killed (SIGKILL) while the
callback server holds its POST open; the other takes the pending entry over and delivers it.

On the wire this is at least once: the dead process's POST had reached the server, so the server sees the
message twice. By idempotency key (``metadata.message_id`` / ``Idempotency-Key``) it is exactly once —
receivers deduplicate on that key (docs/channels.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis

from bot.channels.rasa import conversation_id
from bot.store.keys import Keys
from tests.channels.conftest import CallbackServer
from tests.conftest import DATA_DIR, KB_DIR, ROOT
from tests.live import free_port, wait_until_ready
from tests.rasa_token import TOKEN as RASA_TOKEN

pytestmark = [pytest.mark.slow, pytest.mark.faults]  # processes killed: make test-faults


class App:
    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url, self.process = url, process


@pytest.fixture
def apps(
    tmp_path: Path, redis_url: str, model_dir: Path, callback_server: CallbackServer
) -> Iterator[tuple[str, list[App]]]:
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    started: list[App] = []
    logs = []
    try:
        for i in range(2):
            var = tmp_path / f"var{i}"
            var.mkdir()
            env = {
                **os.environ,
                "TRIAGE_REDIS_URL": redis_url,
                "TRIAGE_REDIS_PREFIX": prefix,
                "TRIAGE_MODEL_DIR": str(model_dir.parent),
                "TRIAGE_DATA_DIR": str(DATA_DIR),
                "TRIAGE_KB_DIR": str(KB_DIR),
                "TRIAGE_VAR_DIR": str(var),
                "TRIAGE_ROTA_FILE": str(var / "rota.yml"),
                "TRIAGE_RASA_CALLBACK_URL": callback_server.url,
                "TRIAGE_RASA_WEBHOOK_TOKEN": RASA_TOKEN,
                "TRIAGE_OUTBOX_LEASE_SECONDS": "2",
                "TRIAGE_OUTBOX_BACKOFF_SECONDS": "0.05",
            }
            port = free_port()
            log = (var / "server.log").open("wb")
            logs.append(log)
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "triagebot.main:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            started.append(App(f"http://127.0.0.1:{port}", process))
            wait_until_ready(started[-1].url, process, timeout=90, log=var / "server.log")
        yield prefix, started
    finally:
        for app in started:
            if app.process.poll() is None:
                app.process.terminate()
                app.process.wait(10)
        for log in logs:
            log.close()
        client = sync_redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def test_a_killed_process_delivery_is_taken_over_by_the_other(
    apps: tuple[str, list[App]], redis_url: str, callback_server: CallbackServer
) -> None:
    prefix, (first, second) = apps
    callback_server.stall_first = True
    response = httpx.post(
        f"{first.url}/webhooks/callback/webhook",
        params={"token": RASA_TOKEN},
        json={"sender": "k1", "message": "你好"},
        timeout=30,
    )
    assert response.status_code == 200 and response.text == "success"
    cid = conversation_id("callback", "k1")
    stalled = callback_server.wait_for(lambda s: s.received[:1])[0]

    # The lease names the delivering consumer ("host:pid:token"): kill that process, mid-POST.
    client: Any = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        holder = client.get(Keys(prefix).outbox_lease(cid))
        assert holder, "the delivering process holds the conversation's lease"
        pid = int(holder.split(":")[-2])
        dying = next(app for app in (first, second) if app.process.pid == pid)
        survivor = second if dying is first else first
        os.kill(pid, signal.SIGKILL)
        dying.process.wait(10)

        # The survivor's recovery pass claims the entry (pending longer than the lease) and delivers it,
        # then the replies after it, in order.
        events = [
            json.loads(f["e"]) | {"seq": int(i.split("-")[0])}
            for i, f in client.xrange(Keys(prefix).events(cid))
        ]
        replies = [f"{cid}:{e['seq']}" for e in events if e.get("role") == "bot"]
        assert replies[0] == stalled.message_id
        callback_server.wait_for(lambda s: len(s.delivered) == len(replies), timeout=30)
        assert survivor.process.poll() is None
        assert [r.message_id for r in callback_server.delivered] == replies
        assert callback_server.delivered[0].body == stalled.body
        # Exactly once by idempotency key; at least once on the wire: the dead process's POST, then the
        # survivor's.
        assert callback_server.message_ids() == set(replies)
        assert len(callback_server.received) == len(replies) + 1
        callback_server.wait_for(
            lambda s: client.xpending(Keys(prefix).events(cid), "outbox")["pending"] == 0
        )
    finally:
        client.close()
