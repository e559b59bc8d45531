"""Redis restarted under traffic with append-only persistence: every message acknowledged before the
restart is there after it, nothing is duplicated or reordered, and the agent's and the users' sockets carry
on without reconnecting. A restart (SIGTERM) at both fsync policies, and a crash (SIGKILL) at
``appendfsync always``: at ``everysec`` a crash can lose the last second of acknowledged writes (Redis
answers before its write reaches the file while a background fsync is running) — measured, not asserted,
by benchmarks/faults.py, and why docs/operations.md asks for ``always``."""

from __future__ import annotations

import pytest

from tests.faults.conftest import Apps
from tests.faults.scenarios import redis_restart

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(240)]


@pytest.mark.parametrize(
    ("own_redis", "crash"),
    [("everysec", False), ("always", False), ("always", True)],
    indirect=["own_redis"],
    ids=["everysec-restart", "always-restart", "always-crash"],
)
async def test_acknowledged_messages_survive_a_redis_restart_and_sockets_carry_on(
    apps: Apps, crash: bool
) -> None:
    [app] = apps.start(1, TRIAGE_ON_DUTY="true")
    figures = await redis_restart(app, apps.redis, apps.prefix, crash)
    assert figures["acknowledged_before_restart"] > 0
    assert figures["lost_acknowledged_before_restart"] == figures["lost"] == 0, figures
    assert figures["duplicated"] == figures["out_of_order"] == figures["missing_on_sockets"] == 0, figures
    assert figures["socket_reconnects"] == 0, figures
    assert figures["recovery_s"] < 15, figures
