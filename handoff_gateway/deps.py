"""What the desk's REST routes depend on: the gateway, the signed-in agent, and the errors they document."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from bot.contracts.http import ErrorOut, bearer
from handoff_gateway.agents import Agent
from handoff_gateway.gateway import Gateway

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Wrong or expired token"},
    403: {"model": ErrorOut, "description": "Not your conversation"},
    404: {"model": ErrorOut, "description": "Unknown conversation"},
    409: {"model": ErrorOut, "description": "Already taken, or at capacity"},
}


async def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def current_agent(
    gw: Annotated[Gateway, Depends(gateway)], token: Annotated[str, Depends(bearer)]
) -> Agent:
    return await gw.agents.authenticate(token)


AgentDep = Annotated[Agent, Depends(current_agent)]
GatewayDep = Annotated[Gateway, Depends(gateway)]
