"""Identity tokens as a host SaaS would mint them (HS256 with the secret the test settings share)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt

SECRET = "test-identity-secret-shared-with-the-host-saas-0123456789abcdefgh"  # 64 bytes: PyJWT warns on short HMAC keys


def identity_token(
    sub: str | None = "alice",
    *,
    secret: str = SECRET,
    algorithm: str = "HS256",
    expires_in: float | None = 600,
    **claims: Any,
) -> str:
    """A signed token; ``sub=None`` or ``expires_in=None`` leave that claim out, a negative
    ``expires_in`` makes it expired."""
    payload: dict[str, Any] = dict(claims)
    if sub is not None:
        payload["sub"] = sub
    if expires_in is not None:
        payload["exp"] = int(time.time() + expires_in)
    return jwt.encode(payload, secret, algorithm=algorithm)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned_token(**claims: Any) -> str:
    """``alg: none``, crafted by hand (header.payload. with an empty signature)."""
    payload = {"sub": "mallory", "exp": int(time.time()) + 600, **claims}
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."


def tampered_token(**changes: Any) -> str:
    """A validly signed token whose payload was edited afterwards (vip raised, say)."""
    header, payload, signature = identity_token("alice", vip=0).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{_b64({**claims, **changes})}.{signature}"


def foreign_alg_token(alg: str) -> str:
    """A token claiming another algorithm (RS256, ES256 …) with a plausible-looking signature: the
    verifier must refuse it for its header alone."""
    payload = {"sub": "mallory", "exp": int(time.time()) + 600}
    signature = base64.urlsafe_b64encode(b"\x01" * 256).rstrip(b"=").decode()
    return f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(payload)}.{signature}"
