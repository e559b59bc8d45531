"""Request dependencies: the services, and the conversation a bearer token opens."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from bot.engine import Engine, Services
from bot.errors import AuthError


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def engine(request: Request) -> Engine:
    eng: Engine = request.app.state.engine
    return eng


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("send the conversation's token as 'Authorization: Bearer <token>'")
    return token.strip()


def check_token(conversation: dict[str, str], token: str) -> None:
    """Constant-time comparison of the token's hash with the conversation's."""
    expected = conversation.get("token_hash", "")
    if not expected or not hmac.compare_digest(expected, token_hash(token)):
        raise AuthError("this token does not open this conversation")
