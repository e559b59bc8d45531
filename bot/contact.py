"""How to reach a user when no agent is on duty: an e-mail address or a phone number they leave on their
ticket (``PUT /api/v1/conversations/{id}/contact``).

The ticket keeps it twice: masked (``w***@acme.com``, ``*******5678``) for every list and card, and sealed —
Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) — for the agent who answers. Nothing raw rests in
Redis or its AOF. The key is ``TRIAGE_CONTACT_KEY``; without one, a key is made once under ``var/`` (0600) —
enough for one machine; several machines must share one key (README, "Security").
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from bot.errors import ConfigError, InputError
from bot.privacy import mask_email, mask_value

_EMAIL = re.compile(
    r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}$"
)
_MOBILE_CN = re.compile(r"^(?:\+?86)?1[3-9]\d{9}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
KEY_FILE = "contact.key"


@dataclass(frozen=True)
class Contact:
    kind: str  # email | phone
    value: str

    @property
    def masked(self) -> str:
        return mask_email(self.value) if self.kind == "email" else mask_value("phone", self.value)


def parse_contact(email: str | None, phone: str | None) -> Contact:
    """The one contact given, checked and normalised; anything else is an :class:`InputError` saying what a
    valid one looks like."""
    if (email is None) == (phone is None):
        raise InputError("give exactly one of 'email' or 'phone'")
    if email is not None:
        value = email.strip()
        if not _EMAIL.match(value):
            raise InputError("'email' is not an e-mail address (name@example.com)")
        return Contact("email", value.lower())
    value = re.sub(r"[\s\-()]", "", phone or "")
    if not (_MOBILE_CN.match(value) or _E164.match(value)):
        raise InputError("'phone' is not a mobile number (13812345678, or +<country code><number>)")
    return Contact("phone", value)


class Seal:
    def __init__(self, key: bytes) -> None:
        self.fernet = Fernet(key)

    def seal(self, value: str) -> str:
        return self.fernet.encrypt(value.encode()).decode()

    def open(self, sealed: str) -> str | None:
        """The value, or None when the key has changed since it was sealed."""
        try:
            return self.fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None


@functools.lru_cache(maxsize=4)
def contact_seal(key: str, var_dir: Path) -> Seal:
    """The seal for ``TRIAGE_CONTACT_KEY`` (``key``), or for the key kept under ``var_dir`` (made once)."""
    if key:
        try:
            return Seal(key.encode())
        except ValueError as exc:
            raise ConfigError(
                "TRIAGE_CONTACT_KEY must be a Fernet key: 32 url-safe base64-encoded bytes; make one with "
                '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`'
            ) from exc
    path = var_dir / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key())
        try:  # a link is created whole or not at all: of two processes starting together, one key wins
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return Seal(path.read_bytes().strip())
