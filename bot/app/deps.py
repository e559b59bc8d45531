"""Request dependencies: the services, and the conversation a bearer token opens.

Dependencies are ``async def`` even where they do not await: FastAPI runs a plain ``def`` one in its
thread pool, a hop there and back on every request (tests/app/test_thread_hops.py)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from fastapi import Request
from starlette.requests import HTTPConnection

from bot.channels.base import Channel
from bot.contracts.http import bearer as bearer  # shared with the desk
from bot.engine import Engine, Services
from bot.errors import AuthError
from bot.message import Message
from bot.store.rates import RateLimits
from bot.vocabulary import Channel as ChannelName


async def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def engine(request: Request) -> Engine:
    eng: Engine = request.app.state.engine
    return eng


async def limits(connection: HTTPConnection) -> RateLimits:
    found: RateLimits = connection.app.state.limits
    return found


def client_address(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_token(conversation: dict[str, str], token: str) -> None:
    """Constant-time comparison of the token's hash with the conversation's."""
    expected = conversation.get("token_hash", "")
    if not expected or not hmac.compare_digest(expected, token_hash(token)):
        raise AuthError("this token does not open this conversation")


def web_message(
    connection: HTTPConnection, conversation: Mapping[str, str], text: str, client_msg_id: str
) -> Message:
    """The widget's message (REST or websocket) through the web channel. The sender is the conversation's
    user (verified at creation, or anonymous) — never what a request body says."""
    web: Channel = connection.app.state.channels[ChannelName.WEB]
    return web.receive(
        {
            "conversation_id": conversation["conversation_id"],
            "channel": conversation.get("channel") or ChannelName.WEB,
            "user": conversation.get("user", ""),
            "text": text,
            "client_msg_id": client_msg_id,
        }
    )
