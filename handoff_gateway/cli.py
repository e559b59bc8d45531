"""``triage agents add|list``: accounts for agents and supervisors, stored in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from bot.cli.console import console, friendly_errors, settings
from bot.errors import ConfigError
from bot.store.connection import connect
from handoff_gateway.agents import ROLES, AgentStore

app = typer.Typer(no_args_is_help=True)
T = TypeVar("T")


async def _with_store(action: Callable[[AgentStore], Awaitable[T]]) -> T:
    s = settings()
    handle = connect(s.redis_url, s.var_dir, max_connections=10)
    try:
        return await action(AgentStore(handle.client, s.redis_prefix, s.agent_session_hours))
    finally:
        await handle.close()


@app.command()
def add(
    name: Annotated[str, typer.Option(help="Sign-in name.")],
    password: Annotated[str, typer.Option(help="At least 8 characters (stored as an scrypt hash).")],
    role: Annotated[str, typer.Option(help="agent or supervisor.")] = "agent",
    skills: Annotated[
        str, typer.Option(help="Comma-separated: languages (zh,en) and product areas.")
    ] = "zh,en",
    capacity: Annotated[int, typer.Option(min=1, help="Concurrent conversations.")] = 3,
    display_name: Annotated[str, typer.Option(help="Shown to users, e.g. 客服小王.")] = "",
) -> None:
    """Create an agent; prints its API token once."""
    with friendly_errors():
        if role not in ROLES:
            raise ConfigError(f"--role must be one of {', '.join(ROLES)}")
        skill_list = tuple(s.strip() for s in skills.split(",") if s.strip())
        agent, token = asyncio.run(
            _with_store(lambda store: store.add(name, password, role, skill_list, capacity, display_name))
        )
    console.print(
        f"added {agent.role} {agent.name} ({agent.id}), skills {', '.join(agent.skills)}, "
        f"capacity {agent.capacity}"
    )
    console.print(f"API token (shown once): {token}")


@app.command("list")
def list_agents() -> None:
    """Agents and supervisors with their presence."""

    async def run(store: AgentStore) -> list[tuple[str, str, str, str]]:
        rows = []
        for agent in await store.all():
            presence = await store.presence(agent.id)
            rows.append((agent.name, agent.role, ",".join(agent.skills), presence["status"]))
        return rows

    with friendly_errors():
        rows = asyncio.run(_with_store(run))
    for row in rows:
        console.print("  ".join(row))
