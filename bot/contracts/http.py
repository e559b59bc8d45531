"""What every HTTP route shares, the bot's and the desk's: the error body and the bearer credential."""

from __future__ import annotations

from fastapi import Request
from pydantic import BaseModel

from bot.errors import AuthError


class ErrorOut(BaseModel):
    error: str
    detail: str
    retryable: bool = False


async def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("send the conversation's token as 'Authorization: Bearer <token>'")
    return token.strip()
