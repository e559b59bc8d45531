"""A WeCom member, as WeCom's servers deliver them: encrypted, signed callbacks to our app."""

from __future__ import annotations

import itertools
import secrets
import time
from typing import Any

from bot.channels.wecom_crypto import WeComCrypto, cdata, parse_xml

TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wwfakecorp00000001"
AGENT_ID = 1000002
SECRET = "fake-corp-secret"
_ids = itertools.count(int(time.time() * 1000))


def plaintext(user: str, msg_type: str, msg_id: str | None, **fields: str) -> str:
    parts = [
        f"<ToUserName>{cdata(CORP_ID)}</ToUserName>",
        f"<FromUserName>{cdata(user)}</FromUserName>",
        f"<CreateTime>{int(time.time())}</CreateTime>",
        f"<MsgType>{cdata(msg_type)}</MsgType>",
        *(f"<{k}>{cdata(v)}</{k}>" for k, v in fields.items()),
        f"<AgentID>{AGENT_ID}</AgentID>",
    ]
    if msg_id is not None:
        parts.append(f"<MsgId>{msg_id}</MsgId>")
    return "<xml>" + "".join(parts) + "</xml>"


def envelope(encrypt: str, corp_id: str = CORP_ID, agent_id: int = AGENT_ID) -> bytes:
    return (
        f"<xml><ToUserName>{cdata(corp_id)}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt>"
        f"<AgentID>{cdata(str(agent_id))}</AgentID></xml>"
    ).encode()


class WeComMember:
    """``say("发票查验失败")`` POSTs what WeCom would for that member's text message."""

    def __init__(self, client: Any, user: str, path: str = "/channels/wecom/callback") -> None:
        self.client, self.user, self.path = client, user, path
        self.crypto = WeComCrypto(TOKEN, AES_KEY, CORP_ID)

    def post_plain(self, xml: str, *, signature: str | None = None, crypto: WeComCrypto | None = None) -> Any:
        crypto = crypto or self.crypto
        encrypt = crypto.encrypt(xml)
        timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
        params = {
            "msg_signature": signature or crypto.signature(timestamp, nonce, encrypt),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        return self.client.post(self.path, params=params, content=envelope(encrypt))

    def say(self, text: str, msg_id: str | None = None) -> Any:
        return self.post_plain(plaintext(self.user, "text", msg_id or str(next(_ids)), Content=text))

    def send(self, msg_type: str, msg_id: str | None = None, **fields: str) -> Any:
        return self.post_plain(plaintext(self.user, msg_type, msg_id or str(next(_ids)), **fields))

    def event(self, event: str) -> Any:
        return self.post_plain(plaintext(self.user, "event", None, Event=event))

    def passive(self, response: Any) -> dict[str, str]:
        """The decrypted passive reply in ``response`` (its signature checked)."""
        outer = parse_xml(response.content)
        self.crypto.signature(outer["TimeStamp"], outer["Nonce"], outer["Encrypt"])
        assert outer["MsgSignature"] == self.crypto.signature(
            outer["TimeStamp"], outer["Nonce"], outer["Encrypt"]
        )
        return parse_xml(self.crypto.decrypt(outer["Encrypt"]))
