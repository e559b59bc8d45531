"""``triage agents add|list`` and ``triage agents tokens list|issue|revoke``: accounts for agents and
supervisors and their API tokens, stored in Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from redis.exceptions import RedisError

from bot.errors import ConfigError, NotFound, TriageError
from bot.store.connection import connect_to
from bot.terminal import console, friendly_errors, settings
from handoff_gateway.agents import ROLES, Agent, AgentStore
from handoff_gateway.tokens import TokenInfo

app = typer.Typer(no_args_is_help=True)
tokens_app = typer.Typer(no_args_is_help=True)
app.add_typer(tokens_app, name="tokens", help="Agents' API tokens: list, issue, revoke.")
T = TypeVar("T")


async def _with_store(action: Callable[[AgentStore], Awaitable[T]]) -> T:
    s = settings()
    handle = connect_to(s, max_connections=10)
    try:
        return await action(
            AgentStore(handle.client, s.redis_prefix, s.agent_session_hours, token_days=s.agent_token_days)
        )
    finally:
        await handle.close()


def has_agents() -> bool | None:
    """Whether any agent or supervisor exists; None when Redis cannot be asked (the server will say why)."""

    async def run(store: AgentStore) -> bool:
        return bool(await store.all())

    try:
        return asyncio.run(_with_store(run))
    except (RedisError, OSError, TriageError):  # the server's own start-up reports these
        return None


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


async def _named(store: AgentStore, name: str) -> Agent:
    agent = await store.by_name(name)
    if agent is None:
        raise NotFound(f"no agent named {name!r}; `triage agents list` shows them")
    return agent


def _when(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@tokens_app.command("list")
def list_tokens(name: Annotated[str, typer.Argument(help="The agent's sign-in name.")]) -> None:
    """An agent's live API tokens: id, issued, expires (never the tokens themselves)."""

    async def run(store: AgentStore) -> list[TokenInfo]:
        return await store.tokens.list((await _named(store, name)).id)

    with friendly_errors():
        infos = asyncio.run(_with_store(run))
    for info in infos:
        console.print(f"{info.token_id}  issued {_when(info.created_at)}  expires {_when(info.expires_at)}")
    if not infos:
        console.print(f"{name} has no live API token")


@tokens_app.command("issue")
def issue_token(name: Annotated[str, typer.Argument(help="The agent's sign-in name.")]) -> None:
    """A new API token for an agent; printed once."""

    async def run(store: AgentStore) -> tuple[TokenInfo, str]:
        return await store.tokens.issue((await _named(store, name)).id)

    with friendly_errors():
        info, token = asyncio.run(_with_store(run))
    console.print(f"{info.token_id} for {name}, expires {_when(info.expires_at)}")
    console.print(f"API token (shown once): {token}")


@tokens_app.command("revoke")
def revoke_token(token_id: Annotated[str, typer.Argument(help="tok_… as `tokens list` shows it.")]) -> None:
    """Revoke an API token at once; consoles opened with it close."""

    async def run(store: AgentStore) -> TokenInfo:
        info = await store.tokens.find(token_id)
        if info is None:
            raise NotFound(f"no token {token_id!r}; `triage agents tokens list NAME` shows an agent's")
        await store.revoke_token(info)
        return info

    with friendly_errors():
        info = asyncio.run(_with_store(run))
    console.print(f"revoked {info.token_id}")
