"""Redis behind Sentinel (a primary, a replica, three sentinels, all real processes): the app finds the
primary through the sentinels (``TRIAGE_REDIS_SENTINELS``; its ``TRIAGE_REDIS_URL`` points nowhere), and when
the primary is killed and the replica promoted it keeps working — open sockets carry on, messages resent
until acknowledged are stored once, in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.sentinel import Sentinel as SentinelClient

from tests.faults.clients import User, ready_again, settled_audit
from tests.faults.conftest import UNLIMITED, new_conversations
from tests.live import AppProcess, RedisServer, Sentinel, app_env, wait_in_sync

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(240)]

SERVICE = "triage"
NOWHERE = "redis://127.0.0.1:1/0"


class Replicated:
    def __init__(self, folder: Path) -> None:
        self.primary = RedisServer(folder / "primary").start()
        self.replica = RedisServer(
            folder / "replica", None, "everysec", "--replicaof", "127.0.0.1", str(self.primary.port)
        ).start()
        self.sentinels = [
            Sentinel(folder / f"sentinel{i}", SERVICE, self.primary.port).start() for i in range(3)
        ]
        # what the test writes must be on the replica when the primary is killed
        wait_in_sync(self.replica.port, time.monotonic() + 30, "the replica never synced with the primary")

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def primary_port(self) -> int:
        client = SentinelClient([("127.0.0.1", s.port) for s in self.sentinels], socket_timeout=1)
        return int(client.discover_master(SERVICE)[1])

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        self.replica.kill()
        self.primary.kill()


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[Replicated]:
    servers = Replicated(tmp_path)
    yield servers
    servers.stop()


async def test_the_app_keeps_working_through_a_sentinel_failover(
    replicated: Replicated, tmp_path: Path, indexed_models: Path
) -> None:
    prefix = "sentinel:"
    env = app_env(
        NOWHERE,
        prefix,
        tmp_path / "var",
        indexed_models,
        TRIAGE_REDIS_SENTINELS=replicated.addresses,
        TRIAGE_REDIS_SENTINEL_SERVICE=SERVICE,
        **UNLIMITED,
    )
    app = AppProcess(env, tmp_path / "app.log").start(timeout=120)
    try:
        users = [User(conv, [app.ws_url]) for conv in await new_conversations(app.url, 4)]
        await asyncio.gather(*(user.connect() for user in users))
        talking = asyncio.gather(*(user.talk(15) for user in users))
        for user in users:
            assert await user.until(lambda user=user: len(user.acked) >= 3, 30)

        replicated.primary.kill()
        failed_over = time.monotonic()
        await talking
        assert replicated.primary_port() == replicated.replica.port  # the replica was promoted

        await ready_again(app.url, failed_over)
        ledger = await settled_audit(users, replicated.replica.url, prefix)
        assert ledger.acknowledged == 4 * 15
        assert ledger.duplicated == ledger.out_of_order == 0, ledger
        assert all(user.reconnects == 0 for user in users)
        await asyncio.gather(*(user.close() for user in users))
    finally:
        app.stop()
