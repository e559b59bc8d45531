"""WeCom (企业微信) callback encryption: the scheme of WeCom's WXBizMsgCrypt sample.

``msg_signature = sha1_hex("".join(sorted([token, timestamp, nonce, encrypt])))``; ``encrypt`` is base64 of
AES-256-CBC (key ``base64(EncodingAESKey + "=")``, iv ``key[:16]``) over
``random(16) || len(msg) as uint32 big-endian || msg || receive_id``, PKCS#7-padded to 32-byte blocks.
The signature is always checked before anything is decrypted. WeCom sets no freshness window on timestamps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import struct
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import DefusedXmlException

from bot.errors import AuthError, ConfigError, Forbidden, MalformedPayload, TriageError

BLOCK_SIZE = 32
RANDOM_BYTES = 16
MAX_XML_BYTES = 128 * 1024

_HEADER = RANDOM_BYTES + 4
_KEY = re.compile(r"[A-Za-z0-9]{43}")
_TIMESTAMP = re.compile(r"[0-9]{1,20}")
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class WeComCryptoError(TriageError):
    """A WeCom callback that failed verification or decoding. ``code`` is the sample's error code."""

    code = 0


class InvalidEncodingAESKey(WeComCryptoError, ConfigError):
    """The configured EncodingAESKey cannot be a WeCom key (-40004)."""

    code = -40004


class BadSignature(WeComCryptoError, AuthError):
    """``msg_signature`` does not match the token, timestamp, nonce and ciphertext (-40001)."""

    code = -40001


class BadCiphertext(WeComCryptoError, MalformedPayload):
    """Not base64, not whole AES blocks, bad padding, a length field past the end, or not UTF-8 (-40007)."""

    code = -40007


class WrongReceiver(WeComCryptoError, Forbidden):
    """Correctly signed, but encrypted for another CorpID / receive id (-40005)."""

    code = -40005


class BadXml(WeComCryptoError, MalformedPayload):
    """Malformed, oversized or hostile (DTD, entities) XML, or an envelope without ``<Encrypt>`` (-40002)."""

    code = -40002


def pkcs7_pad(data: bytes) -> bytes:
    """Pad to a multiple of 32 bytes with 1..32 bytes of the pad length (a whole block when aligned)."""
    amount = BLOCK_SIZE - len(data) % BLOCK_SIZE
    return data + bytes([amount]) * amount


def pkcs7_unpad(data: bytes) -> bytes:
    """Strip the padding :func:`pkcs7_pad` added; raises :class:`BadCiphertext` on a malformed one."""
    amount = data[-1] if data else 0
    if not 1 <= amount <= min(BLOCK_SIZE, len(data)):
        raise BadCiphertext(f"bad padding: the last byte is {amount}, not 1..{min(BLOCK_SIZE, len(data))}")
    if data[-amount:] != bytes([amount]) * amount:
        raise BadCiphertext(f"bad padding: the last {amount} bytes are not all {amount}")
    return data[:-amount]


def cdata(text: str) -> str:
    """``text`` as CDATA; characters XML 1.0 forbids are dropped and ``]]>`` is split across two sections."""
    text = _XML_INVALID.sub("", text)
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def parse_xml(body: bytes | str, max_bytes: int = MAX_XML_BYTES) -> dict[str, str]:
    """The text of each child of the ``<xml>`` root, by tag; a child with children of its own maps to "".

    Parsed with defusedxml with DTDs, entities and external references forbidden. Raises :class:`BadXml`
    on a body over ``max_bytes``, malformed or hostile XML, another root, or a repeated child tag.
    """
    data = body.encode("utf-8") if isinstance(body, str) else body
    if len(data) > max_bytes:
        raise BadXml(f"the XML is {len(data):,} bytes; the limit is {max_bytes:,}")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise BadXml(f"refused XML with a DTD, entity or external reference ({type(exc).__name__})") from exc
    except ParseError as exc:
        raise BadXml(f"malformed XML: {exc}") from exc
    if root.tag != "xml":
        raise BadXml(f"the root element is <{root.tag}>, not <xml>")
    fields: dict[str, str] = {}
    for child in root:
        if child.tag in fields:
            raise BadXml(f"<{child.tag}> appears more than once")
        fields[child.tag] = "" if len(child) else (child.text or "")
    return fields


def text_reply_xml(to_user: str, from_corp: str, content: str, create_time: int) -> str:
    """The plaintext of a passive text reply, to pass to :meth:`WeComCrypto.reply`."""
    return (
        f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_corp)}</FromUserName>"
        f"<CreateTime>{int(create_time)}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{cdata(content)}</Content></xml>"
    )


class WeComCrypto:
    """Signs, encrypts and decrypts one WeCom app's callbacks.

    ``receive_id`` is the CorpID for a self-built app ("" for the AI bot). Raises
    :class:`InvalidEncodingAESKey` (a :class:`~bot.errors.ConfigError`) on an unusable key or an empty token.
    """

    __slots__ = ("_key", "_receive_id", "_token")

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not token:
            raise InvalidEncodingAESKey("the WeCom Token is empty; copy it from the app's 接收消息 settings")
        if len(encoding_aes_key) != 43:
            raise InvalidEncodingAESKey(
                f"the WeCom EncodingAESKey must be 43 characters; it is {len(encoding_aes_key)}. "
                "Copy it from the app's 接收消息 settings"
            )
        if not _KEY.fullmatch(encoding_aes_key):
            raise InvalidEncodingAESKey(
                "the WeCom EncodingAESKey may contain only letters A-Z, a-z and digits 0-9; "
                "copy it from the app's 接收消息 settings"
            )
        self._token = token
        self._key = base64.b64decode(encoding_aes_key + "=")
        self._receive_id = receive_id.encode("utf-8")

    def __repr__(self) -> str:
        return f"WeComCrypto(receive_id={self._receive_id.decode()!r})"

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        """The ``msg_signature`` WeCom computes over these values: lowercase hex SHA-1."""
        joined = "".join(sorted([self._token, timestamp, nonce, encrypt]))
        return hashlib.sha1(joined.encode("utf-8", "surrogatepass")).hexdigest()

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The plaintext to answer WeCom's URL check with.

        Pass the query values URL-decoded (``%2B`` -> ``+``); a ``+`` that became a space fails the signature.
        """
        self._check(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)

    def decrypt_message(
        self, msg_signature: str, timestamp: str, nonce: str, body: bytes, max_bytes: int = MAX_XML_BYTES
    ) -> dict[str, str]:
        """Verify and decrypt a callback POST body; the decrypted message's fields (see :func:`parse_xml`)."""
        encrypt = parse_xml(body, max_bytes).get("Encrypt")
        if not encrypt:
            raise BadXml("the callback body has no <Encrypt> element")
        self._check(msg_signature, timestamp, nonce, encrypt)
        return parse_xml(self.decrypt(encrypt), max_bytes)

    def encrypt(self, plaintext: str, random: bytes | None = None) -> str:
        """Base64 ciphertext of ``plaintext`` for this receive id; ``random`` fixes the 16-byte prefix."""
        prefix = os.urandom(RANDOM_BYTES) if random is None else random
        if len(prefix) != RANDOM_BYTES:
            raise ValueError(f"the random prefix must be {RANDOM_BYTES} bytes, not {len(prefix)}")
        msg = plaintext.encode("utf-8")
        padded = pkcs7_pad(prefix + struct.pack(">I", len(msg)) + msg + self._receive_id)
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypt: str) -> str:
        """The message inside a base64 ciphertext; no signature check (use the methods above for callbacks)."""
        if len(encrypt) > MAX_XML_BYTES:
            raise BadCiphertext(
                f"the ciphertext is {len(encrypt):,} characters; the limit is {MAX_XML_BYTES:,}"
            )
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except ValueError as exc:
            raise BadCiphertext("the ciphertext is not base64 (was a '+' turned into a space?)") from exc
        if not raw or len(raw) % 16:
            raise BadCiphertext(f"the ciphertext is {len(raw)} bytes, not a positive multiple of 16")
        decryptor = self._cipher().decryptor()
        plain = pkcs7_unpad(decryptor.update(raw) + decryptor.finalize())
        if len(plain) < _HEADER:
            raise BadCiphertext(
                f"the plaintext is {len(plain)} bytes, shorter than its {_HEADER}-byte header"
            )
        (length,) = struct.unpack(">I", plain[RANDOM_BYTES:_HEADER])
        if length > len(plain) - _HEADER:
            raise BadCiphertext(f"the length field says {length} bytes; only {len(plain) - _HEADER} follow")
        msg, receiver = plain[_HEADER : _HEADER + length], plain[_HEADER + length :]
        if receiver != self._receive_id:
            got = receiver.decode("utf-8", "replace")[:64]
            raise WrongReceiver(
                f"the message is for receive id {got!r}, not {self._receive_id.decode()!r}; check the CorpID"
            )
        try:
            return msg.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadCiphertext("the decrypted message is not UTF-8") from exc

    def reply(self, plaintext_xml: str, timestamp: str, nonce: str, random: bytes | None = None) -> str:
        """The encrypted, signed XML body of a passive reply (see :func:`text_reply_xml`)."""
        if not _TIMESTAMP.fullmatch(timestamp):
            raise ValueError(f"the timestamp must be decimal digits, not {timestamp!r}")
        if _XML_INVALID.search(nonce):
            raise ValueError("the nonce contains characters XML cannot carry")
        encrypt = self.encrypt(plaintext_xml, random)
        return (
            f"<xml><Encrypt>{cdata(encrypt)}</Encrypt>"
            f"<MsgSignature>{cdata(self.signature(timestamp, nonce, encrypt))}</MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{cdata(nonce)}</Nonce></xml>"
        )

    def _check(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = self.signature(timestamp, nonce, encrypt).encode("ascii")
        if not hmac.compare_digest(expected, msg_signature.encode("utf-8", "replace")):
            raise BadSignature("msg_signature does not match; check the WeCom Token")

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))
