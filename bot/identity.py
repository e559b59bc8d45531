"""Who the end user is, as the host SaaS vouches for it: an HS256 identity token (JWT) signed with
``TRIAGE_IDENTITY_SECRET``.

The host page asks its own backend for a short-lived token and hands it to the widget; the API verifies it
when a conversation is created. VIP tier, tenant and user id come only from a verified token — never from an
unsigned request body — and a user without a token is anonymous (no history, no VIP tier).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import jwt

from bot.errors import AuthError
from bot.vocabulary import MAX_VIP_TIER

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
CLAIMS = ("sub", "exp", "tenant", "name", "email", "phone", "vip", "locale")
_FIX = "ask the host page for a fresh one"


class IdentityError(AuthError):
    """An identity token that cannot be trusted; the message says what is wrong and what to do."""


class IdentityNotConfigured(IdentityError):
    def __init__(self) -> None:
        super().__init__(
            "identity tokens are not accepted: this deployment has no TRIAGE_IDENTITY_SECRET; "
            "start the conversation without identity_token, or set the secret shared with the host SaaS"
        )


class IdentityExpired(IdentityError):
    def __init__(self) -> None:
        super().__init__(f"identity token expired: {_FIX}")


class IdentityInvalid(IdentityError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"identity token invalid: {reason}; {_FIX}")
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    """The end user of a conversation: verified by the host's signature, or anonymous."""

    verified: bool
    user: str = ""
    tenant: str = ""
    name: str = ""
    email: str = ""
    phone: str = ""
    vip_tier: int = 0
    locale: str = ""

    @classmethod
    def anonymous(cls) -> Identity:
        return cls(verified=False)

    @property
    def customer_key(self) -> str | None:
        """A stable opaque id for a verified customer (same on every channel); None when anonymous.

        Tickets and conversations are indexed under it, so an agent sees this customer's history and
        nobody else's. Hashed so the id in key names reveals neither the tenant nor the user id."""
        if not self.verified:
            return None
        return hashlib.sha256(f"{self.tenant}\x00{self.user}".encode()).hexdigest()[:24]

    def record_fields(self) -> dict[str, str]:
        """The conversation record's customer fields (Redis hash values are strings)."""
        return {
            "verified": "1" if self.verified else "0",
            "tenant": self.tenant,
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "vip": str(self.vip_tier),
            "locale": self.locale,
            "customer_key": self.customer_key or "",
        }


def _text(claims: dict[str, Any], name: str, limit: int = 256) -> str:
    value = claims.get(name)
    if value is None:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise IdentityInvalid(f"claim {name!r} must be a string")
    text = str(value).strip()
    if len(text) > limit:
        raise IdentityInvalid(f"claim {name!r} is longer than {limit} characters")
    return text


def _vip(claims: dict[str, Any]) -> int:
    value = claims.get("vip", 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VIP_TIER:
        raise IdentityInvalid(f"claim 'vip' must be an integer from 0 to {MAX_VIP_TIER}, got {value!r}")
    return value


def verify_identity_token(token: str, secret: str | None, leeway: float = 0) -> Identity:
    """Verify an HS256 identity token and return the identity it vouches for.

    Raises an :class:`IdentityError` (HTTP 401) for a token sent while no secret is configured, a bad
    signature, any algorithm but HS256 (``none``, HS512, RS256 …), an expired token, a missing ``sub`` or
    ``exp``, or a claim of the wrong shape (``vip`` outside 0–3)."""
    if not secret:
        raise IdentityNotConfigured()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp"]},
            leeway=leeway,
        )
    except jwt.ExpiredSignatureError as exc:
        raise IdentityExpired() from exc
    except jwt.MissingRequiredClaimError as exc:
        raise IdentityInvalid(f"claim {exc.claim!r} is required") from exc
    except jwt.InvalidAlgorithmError as exc:
        raise IdentityInvalid(f"it must be signed with {ALGORITHM}") from exc
    except jwt.InvalidSignatureError as exc:
        raise IdentityInvalid("the signature does not match TRIAGE_IDENTITY_SECRET") from exc
    except jwt.DecodeError as exc:
        raise IdentityInvalid("it is not a well-formed JWT") from exc
    except jwt.InvalidTokenError as exc:
        raise IdentityInvalid(str(exc) or type(exc).__name__) from exc
    user = _text(claims, "sub", 128)
    if not user:
        raise IdentityInvalid("claim 'sub' (the user id) is empty")
    return Identity(
        verified=True,
        user=user,
        tenant=_text(claims, "tenant", 128),
        name=_text(claims, "name"),
        email=_text(claims, "email"),
        phone=_text(claims, "phone", 64),
        vip_tier=_vip(claims),
        locale=_text(claims, "locale", 35),
    )
