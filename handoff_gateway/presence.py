"""Which presence a console asserts when it connects: the one the agent chose last, not "online".

The choice is a field of the agent's presence hash (``chosen``). The dispatcher's automatic "away" after
missed heartbeats changes ``status`` only, so an agent whose laptop slept is online again when the console
reconnects, while one who picked 离开 stays away through a reload. An agent who never chose is online on
connect (they signed in to take chats); a supervisor who never chose stays as they were (offline by
default) — opening the overview does not make anyone eligible for chats."""

from __future__ import annotations

from handoff_gateway.agents import Agent
from handoff_gateway.gateway import Gateway

CHOSEN = "chosen"


async def choose(gw: Gateway, agent: Agent, status: str) -> None:
    """The agent picked ``status`` (console or REST): set it and remember it as their choice."""
    await gw.set_presence(agent, status)
    await gw.desk.redis.hset(gw.desk.keys.presence(agent.id), CHOSEN, status)


async def on_connect(gw: Gateway, agent: Agent) -> str:
    """The status a newly connected console asserts (and sets, when it differs from the stored one)."""
    key = gw.desk.keys.presence(agent.id)
    chosen, stored = await gw.desk.redis.hmget(key, CHOSEN, "status")
    if chosen:
        status = str(chosen)
    elif agent.supervisor:
        status = str(stored or "offline")
    else:
        status = "online"
    if status != stored:
        await gw.set_presence(agent, status)
    return status
