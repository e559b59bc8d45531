"""WeCom callback encryption against WeCom's own published example and vectors computed with openssl."""

from __future__ import annotations

import base64
import hmac
import shutil
import struct
import subprocess
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.app.errors import classify
from bot.channels import wecom_crypto
from bot.channels.wecom_crypto import (
    BadCiphertext,
    BadSignature,
    BadXml,
    InvalidEncodingAESKey,
    WeComCrypto,
    WeComCryptoError,
    WrongReceiver,
    cdata,
    parse_xml,
    pkcs7_pad,
    pkcs7_unpad,
    text_reply_xml,
)
from bot.errors import AuthError, ConfigError, Forbidden, MalformedPayload

# ------------------------------------------------------------------ WeCom's published example
# From WeCom's 加解密方案说明 (https://developer.work.weixin.qq.com/document/path/90968) and the official
# samples: github.com/sbzhu/weworkapi_python callback_python3/Sample.py (the URL check, URL-encoded as sent)
# and Tencent's C# Sample.cs (the POST body). The 16-byte random prefixes were read back by decrypting.
WX_TOKEN = "QDG6eK"
WX_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
WX_CORP = "wx5823bf96d3bd56c7"
WX_URL_QUERY = (
    "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780"
    "&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D"
)
WX_ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
WX_ECHO_PLAIN = "1616140317555161061"
WX_ECHO_RANDOM = b"c41b64491c2468d0"
WX_MSG_SIGNATURE = "477715d11cdb4164915debcba66cb864d751f3e6"
WX_MSG_TIMESTAMP = "1409659813"
WX_MSG_NONCE = "1372623149"
WX_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJT"
    "s3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5"
    "gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQ"
    "Uax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyP"
    "IGHBZZIs2pDBS8R07+qN+E7Q=="
)
WX_BODY = (
    f"<xml><ToUserName><![CDATA[{WX_CORP}]]></ToUserName><Encrypt><![CDATA[{WX_ENCRYPT}]]></Encrypt>"
    "<AgentID><![CDATA[218]]></AgentID></xml>"
).encode()
WX_MSG_PLAIN = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
    "<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    "<CreateTime>1409659813</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[hello]]></Content>\n"
    "<MsgId>4561255354251345929</MsgId>\n"
    "<AgentID>218</AgentID>\n"
    "</xml>"
)
WX_MSG_RANDOM = b"0960688932c47ef1"

# ------------------------------------------------------------------ vectors computed with openssl
# KEYHEX=$(printf '%s' 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG=' | base64 -d | xxd -p -c 64)
#   = 69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051; iv = its first 16 bytes:
# printf '0123456789abcdef\x00\x00\x00\x12%s%s' '发票查验失败' 'ww1234567890abcdef' > p1   # 56 bytes
# printf '\x08\x08\x08\x08\x08\x08\x08\x08' >> p1
# openssl enc -aes-256-cbc -K $KEYHEX -iv 69b71d79f8218a39259a7a29aabb2dba -nopad -in p1 | base64 -w0
# printf '0123456789abcdef\x00\x00\x00\x1a%s%s' 'hello, WeCom crypto test!!' 'ww1234567890abcdef' > p2  # 64
# printf '\x20%.0s' $(seq 32) >> p2   # aligned: a whole block of 32 x 0x20
# openssl enc -aes-256-cbc -K $KEYHEX -iv 69b71d79f8218a39259a7a29aabb2dba -nopad -in p2 | base64 -w0
# printf '%s' "1700000000${CT1}nonce42triage-token" | openssl dgst -sha1   # the four values sorted (C locale)
TOKEN = "triage-token"
KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
KEY_HEX = "69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051"
CORP = "ww1234567890abcdef"
RANDOM = b"0123456789abcdef"
MSG_ZH = "发票查验失败"
CT_ZH = "Q3stYC6hdFzMh9T8HCvyDBZnqz1FH5ml0boZ3wylAUoloK58/fitoHEznvUdA6NPrYeTUenhvRgJ9Rj65diHuA=="
MSG_ALIGNED = "hello, WeCom crypto test!!"
CT_ALIGNED = (
    "Q3stYC6hdFzMh9T8HCvyDHhSUo7AYPXtsk2Fxcv4hOxkRyjURDNDDzeEazwmVreqGpPq+531yg1hXPpkibw1LiMiIaHzYwECvZ16hmeFHZi3"
    "vI2vhOmxF/k+CTuQ6kL7"
)
SIG_ZH = "498ed1294f6ac4a8a4662d8991cb0ae23a47fc85"  # timestamp 1700000000, nonce nonce42, over CT_ZH


@pytest.fixture
def crypto() -> WeComCrypto:
    return WeComCrypto(TOKEN, KEY, CORP)


@pytest.fixture
def official() -> WeComCrypto:
    return WeComCrypto(WX_TOKEN, WX_KEY, WX_CORP)


def raw_encrypt(plaintext: bytes, key_hex: str = KEY_HEX) -> str:
    """Encrypt already-padded bytes, for ciphertexts the module would never produce."""
    key = bytes.fromhex(key_hex)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plaintext) + encryptor.finalize()).decode()


def body(encrypt: str) -> bytes:
    return f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()


def signed(
    crypto: WeComCrypto, plaintext: str, timestamp: str = "1700000000", nonce: str = "n1"
) -> tuple[str, str, str, bytes]:
    encrypt = crypto.encrypt(plaintext)
    return crypto.signature(timestamp, nonce, encrypt), timestamp, nonce, body(encrypt)


# ------------------------------------------------------------------ the official example
def test_official_signatures(official: WeComCrypto) -> None:
    assert (
        official.signature("1409659589", "263014780", WX_ECHOSTR)
        == "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
    )
    assert official.signature(WX_MSG_TIMESTAMP, WX_MSG_NONCE, WX_ENCRYPT) == WX_MSG_SIGNATURE


def test_official_url_check_from_the_encoded_query(official: WeComCrypto) -> None:
    query = {name: values[0] for name, values in parse_qs(WX_URL_QUERY, strict_parsing=True).items()}
    assert query["echostr"] == WX_ECHOSTR
    assert urlencode(query) == WX_URL_QUERY  # how WeCom encodes it: %2B, %2F, %3D
    assert official.verify_url(**query) == WX_ECHO_PLAIN


def test_a_plus_decoded_as_a_space_fails_the_signature(official: WeComCrypto) -> None:
    """Callers must pass echostr percent-decoded with '+' kept; a raw '+' read as a form space is refused."""
    raw_plus = WX_URL_QUERY.replace("%2B", "+")
    query = {name: values[0] for name, values in parse_qs(raw_plus).items()}
    assert " " in query["echostr"]
    with pytest.raises(BadSignature):
        official.verify_url(**query)


def test_official_message(official: WeComCrypto) -> None:
    fields = official.decrypt_message(WX_MSG_SIGNATURE, WX_MSG_TIMESTAMP, WX_MSG_NONCE, WX_BODY)
    assert fields == {
        "ToUserName": WX_CORP,
        "FromUserName": "mycreate",
        "CreateTime": "1409659813",
        "MsgType": "text",
        "Content": "hello",
        "MsgId": "4561255354251345929",
        "AgentID": "218",
    }


@pytest.mark.parametrize(
    ("plaintext", "random", "ciphertext"),
    [(WX_ECHO_PLAIN, WX_ECHO_RANDOM, WX_ECHOSTR), (WX_MSG_PLAIN, WX_MSG_RANDOM, WX_ENCRYPT)],
    ids=["echostr", "message"],
)
def test_encrypt_reproduces_the_official_ciphertexts(
    official: WeComCrypto, plaintext: str, random: bytes, ciphertext: str
) -> None:
    assert official.decrypt(ciphertext) == plaintext
    assert official.encrypt(plaintext, random=random) == ciphertext


# ------------------------------------------------------------------ openssl vectors
@pytest.mark.parametrize(
    ("msg", "ciphertext"), [(MSG_ZH, CT_ZH), (MSG_ALIGNED, CT_ALIGNED)], ids=["zh", "aligned"]
)
def test_openssl_vectors(crypto: WeComCrypto, msg: str, ciphertext: str) -> None:
    assert crypto.encrypt(msg, random=RANDOM) == ciphertext
    assert crypto.decrypt(ciphertext) == msg


def test_openssl_signature_vector(crypto: WeComCrypto) -> None:
    assert crypto.signature("1700000000", "nonce42", CT_ZH) == SIG_ZH


def test_the_aligned_plaintext_carries_a_whole_block_of_padding() -> None:
    key = bytes.fromhex(KEY_HEX)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(base64.b64decode(CT_ALIGNED)) + decryptor.finalize()
    assert len(plain) == 96
    assert plain[-32:] == b"\x20" * 32
    assert plain[:20] == RANDOM + struct.pack(">I", 26)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command line")
def test_against_openssl_now(crypto: WeComCrypto) -> None:
    msg = "<xml><Content><![CDATA[报销单 #42 被退回了]]></Content></xml>"
    encoded = msg.encode()
    plain = RANDOM + struct.pack(">I", len(encoded)) + encoded + CORP.encode()
    plain += bytes([32 - len(plain) % 32]) * (32 - len(plain) % 32)
    args = ["openssl", "enc", "-aes-256-cbc", "-K", KEY_HEX, "-iv", KEY_HEX[:32], "-nopad"]
    ours = crypto.encrypt(msg, random=RANDOM)
    theirs = subprocess.run(args, input=plain, capture_output=True, check=True, timeout=30).stdout
    assert base64.b64decode(ours) == theirs
    decrypted = subprocess.run(
        [*args, "-d"], input=theirs, capture_output=True, check=True, timeout=30
    ).stdout
    assert decrypted == plain
    joined = "".join(sorted([TOKEN, "1700000001", "nonce", ours])).encode()
    digest = subprocess.run(["openssl", "dgst", "-sha1", "-r"], input=joined, capture_output=True, check=True)
    assert digest.stdout.split()[0].decode() == crypto.signature("1700000001", "nonce", ours)


# ------------------------------------------------------------------ round trips and padding
@pytest.mark.parametrize(
    "msg",
    ["", "a", "x" * 11, "x" * 12, "x" * 13, "y" * 44, "发票查验失败，提示不一致", "emoji 🧾 ok", "z" * 5000],
)
@pytest.mark.parametrize("receive_id", [CORP, ""], ids=["corp", "ai-bot"])
def test_round_trip(msg: str, receive_id: str) -> None:
    crypto = WeComCrypto(TOKEN, KEY, receive_id)
    encrypt = crypto.encrypt(msg)
    assert len(base64.b64decode(encrypt)) % 32 == 0
    assert crypto.decrypt(encrypt) == msg


def test_the_random_prefix_differs_each_time(crypto: WeComCrypto) -> None:
    assert crypto.encrypt("same") != crypto.encrypt("same")


@pytest.mark.parametrize(
    ("size", "padded"), [(0, 32), (1, 32), (31, 32), (32, 64), (33, 64), (63, 64), (64, 96)]
)
def test_pkcs7_pads_to_32(size: int, padded: int) -> None:
    out = pkcs7_pad(b"a" * size)
    assert len(out) == padded
    assert out[size:] == bytes([padded - size]) * (padded - size)
    assert pkcs7_unpad(out) == b"a" * size


@pytest.mark.parametrize(
    "data",
    [b"", b"a" * 31 + b"\x00", b"a" * 31 + b"\x21", b"a" * 28 + b"\x04\x04\x03\x04", b"\x05\x05"],
    ids=["empty", "zero", "over-32", "unequal", "longer-than-data"],
)
def test_bad_padding_is_refused(data: bytes) -> None:
    with pytest.raises(BadCiphertext, match="padding"):
        pkcs7_unpad(data)


def test_bad_padding_inside_a_ciphertext_is_refused(crypto: WeComCrypto) -> None:
    plain = RANDOM + struct.pack(">I", 3) + b"abc" + CORP.encode()
    plain += b"\x01" * (31 - len(plain) % 32) + b"\x07"
    with pytest.raises(BadCiphertext, match="padding"):
        crypto.decrypt(raw_encrypt(plain))


def test_a_length_field_past_the_end_is_refused(crypto: WeComCrypto) -> None:
    plain = pkcs7_pad(RANDOM + struct.pack(">I", 0xFFFFFFFF) + b"abc" + CORP.encode())
    with pytest.raises(BadCiphertext, match="length field"):
        crypto.decrypt(raw_encrypt(plain))


def test_a_plaintext_shorter_than_its_header_is_refused(crypto: WeComCrypto) -> None:
    with pytest.raises(BadCiphertext, match="header"):
        crypto.decrypt(raw_encrypt(pkcs7_pad(b"short")))


def test_a_message_that_is_not_utf8_is_refused(crypto: WeComCrypto) -> None:
    plain = pkcs7_pad(RANDOM + struct.pack(">I", 2) + b"\xff\xfe" + CORP.encode())
    with pytest.raises(BadCiphertext, match="UTF-8"):
        crypto.decrypt(raw_encrypt(plain))


@pytest.mark.parametrize(
    "encrypt",
    [
        "not base64!",
        CT_ZH[:-2],
        CT_ALIGNED.replace("+", " "),
        base64.b64encode(b"x" * 15).decode(),
        "",
        "é" * 8,
    ],
    ids=["junk", "truncated", "plus-as-space", "not-whole-blocks", "empty", "non-ascii"],
)
def test_undecodable_ciphertext_is_refused(crypto: WeComCrypto, encrypt: str) -> None:
    with pytest.raises(BadCiphertext):
        crypto.decrypt(encrypt)


def test_an_oversized_ciphertext_is_refused_before_decoding(crypto: WeComCrypto) -> None:
    with pytest.raises(BadCiphertext, match="limit"):
        crypto.decrypt("A" * (wecom_crypto.MAX_XML_BYTES + 4))


def test_a_message_for_another_corp_is_refused() -> None:
    encrypt = WeComCrypto(TOKEN, KEY, "ww-other-corp").encrypt("<xml/>")
    crypto = WeComCrypto(TOKEN, KEY, CORP)
    with pytest.raises(WrongReceiver, match="ww-other-corp"):
        crypto.decrypt(encrypt)
    with pytest.raises(WrongReceiver):
        crypto.verify_url(crypto.signature("1", "2", encrypt), "1", "2", encrypt)


# ------------------------------------------------------------------ signatures
@pytest.mark.parametrize(
    "change",
    [
        lambda s, t, n, b: ("0" * 40, t, n, b),
        lambda s, t, n, b: (s.upper(), t, n, b),
        lambda s, t, n, b: (s, str(int(t) + 1), n, b),
        lambda s, t, n, b: (s, t, n + "x", b),
        lambda s, t, n, b: ("", t, n, b),
        lambda s, t, n, b: ("签名", t, n, b),
    ],
    ids=["zeros", "uppercase", "timestamp", "nonce", "empty", "non-ascii"],
)
def test_a_wrong_signature_is_refused(crypto: WeComCrypto, change: Callable[..., tuple]) -> None:
    with pytest.raises(BadSignature):
        crypto.decrypt_message(*change(*signed(crypto, "<xml><Content>hi</Content></xml>")))


def test_the_signature_is_checked_before_decrypting(crypto: WeComCrypto) -> None:
    with pytest.raises(BadSignature):
        crypto.decrypt_message("0" * 40, "1", "2", body("not base64!"))
    with pytest.raises(BadSignature):
        crypto.verify_url("0" * 40, "1", "2", "not base64!")


def test_another_token_fails_the_signature() -> None:
    sender = WeComCrypto("another-token", KEY, CORP)
    encrypt = sender.encrypt("hi")
    with pytest.raises(BadSignature):
        WeComCrypto(TOKEN, KEY, CORP).verify_url(sender.signature("1", "2", encrypt), "1", "2", encrypt)


def test_signatures_are_compared_in_constant_time(
    crypto: WeComCrypto, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(wecom_crypto.hmac, "compare_digest", recording)
    msg_signature, timestamp, nonce, data = signed(crypto, "<xml><Content>hi</Content></xml>")
    crypto.decrypt_message(msg_signature, timestamp, nonce, data)
    assert calls == [(msg_signature.encode(), msg_signature.encode())]


def test_a_very_old_timestamp_is_accepted(crypto: WeComCrypto) -> None:
    """WeCom sets no freshness window; replays are stopped by MsgId deduplication instead."""
    fields = crypto.decrypt_message(*signed(crypto, "<xml><Content>old</Content></xml>", timestamp="1"))
    assert fields == {"Content": "old"}


# ------------------------------------------------------------------ XML
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b"<xml><Encrypt>&lol3;</Encrypt></xml>"
)
EXTERNAL_ENTITY = b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Encrypt>&xxe;</Encrypt></xml>'
PARAMETER_ENTITY = (
    b'<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><xml><Encrypt>a</Encrypt></xml>'
)
HOSTILE = {
    "billion-laughs": BILLION_LAUGHS,
    "external-entity": EXTERNAL_ENTITY,
    "parameter-entity": PARAMETER_ENTITY,
    "bare-doctype": b"<!DOCTYPE xml><xml><Encrypt>a</Encrypt></xml>",
    "malformed": b"<xml><Encrypt>abc</Encrypt>",
    "not-xml": b"Encrypt=abc",
    "empty": b"",
    "other-root": b"<root><Encrypt>abc</Encrypt></root>",
    "missing-encrypt": b"<xml><ToUserName>ww1</ToUserName></xml>",
    "empty-encrypt": b"<xml><Encrypt><![CDATA[]]></Encrypt></xml>",
    "two-encrypts": b"<xml><Encrypt>abc</Encrypt><Encrypt>def</Encrypt></xml>",
    "oversized": b"<xml><Encrypt>" + b"A" * wecom_crypto.MAX_XML_BYTES + b"</Encrypt></xml>",
}


@pytest.mark.parametrize("data", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_or_broken_envelopes_are_bad_xml(crypto: WeComCrypto, data: bytes) -> None:
    with pytest.raises(BadXml):
        crypto.decrypt_message("0" * 40, "1", "2", data)


@pytest.mark.parametrize(
    "inner", [BILLION_LAUGHS, EXTERNAL_ENTITY, b"<xml><a>"], ids=["laughs", "xxe", "malformed"]
)
def test_hostile_xml_inside_a_signed_message_is_bad_xml(crypto: WeComCrypto, inner: bytes) -> None:
    with pytest.raises(BadXml):
        crypto.decrypt_message(*signed(crypto, inner.decode()))


def test_parse_xml_takes_the_top_level_fields() -> None:
    data = (
        "<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>"
        "<CreateTime>1348831860</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[click]]></Event>"
        "<EventKey><![CDATA[menu_1]]></EventKey><Empty></Empty><SendLocationInfo><Location_X>23.1</Location_X>"
        "</SendLocationInfo><AgentID>1</AgentID></xml>"
    )
    assert parse_xml(data.encode()) == {
        "ToUserName": "ww1",
        "FromUserName": "zhangsan",
        "CreateTime": "1348831860",
        "MsgType": "event",
        "Event": "click",
        "EventKey": "menu_1",
        "Empty": "",
        "SendLocationInfo": "",
        "AgentID": "1",
    }


def test_parse_xml_keeps_content_exactly() -> None:
    data = "<xml><Content><![CDATA[  报销 <b>&amp; 发票\n第二行 ]]></Content></xml>"
    assert parse_xml(data)["Content"] == "  报销 <b>&amp; 发票\n第二行 "


def test_parse_xml_size_limit() -> None:
    data = b"<xml><Content>" + b"a" * 100 + b"</Content></xml>"
    assert parse_xml(data, max_bytes=len(data))["Content"] == "a" * 100
    with pytest.raises(BadXml, match="limit"):
        parse_xml(data, max_bytes=len(data) - 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "<![CDATA[plain]]>"),
        ("a]]>b", "<![CDATA[a]]]]><![CDATA[>b]]>"),
        ("]]>]]>", "<![CDATA[]]]]><![CDATA[>]]]]><![CDATA[>]]>"),
        ("bell\x07 nul\x00", "<![CDATA[bell nul]]>"),
    ],
)
def test_cdata(text: str, expected: str) -> None:
    assert cdata(text) == expected


# ------------------------------------------------------------------ passive replies
def test_text_reply_xml_layout() -> None:
    assert text_reply_xml("zhangsan", CORP, "好的", 1700000000) == (
        "<xml><ToUserName><![CDATA[zhangsan]]></ToUserName><FromUserName><![CDATA[ww1234567890abcdef]]></FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[好的]]></Content></xml>"
    )


@pytest.mark.parametrize("content", ["已转人工，请稍候", "tricky ]]> content <xml>", "two\nlines"])
def test_passive_reply_decrypts_and_verifies(crypto: WeComCrypto, content: str) -> None:
    plaintext = text_reply_xml("zhangsan", CORP, content, 1700000000)
    reply = crypto.reply(plaintext, "1700000002", "nonce-7")
    envelope = parse_xml(reply.encode())
    assert list(envelope) == ["Encrypt", "MsgSignature", "TimeStamp", "Nonce"]
    assert envelope["TimeStamp"] == "1700000002"
    assert envelope["Nonce"] == "nonce-7"
    assert envelope["MsgSignature"] == crypto.signature("1700000002", "nonce-7", envelope["Encrypt"])
    assert crypto.decrypt(envelope["Encrypt"]) == plaintext
    fields = crypto.decrypt_message(envelope["MsgSignature"], "1700000002", "nonce-7", reply.encode())
    assert fields == {
        "ToUserName": "zhangsan",
        "FromUserName": CORP,
        "CreateTime": "1700000000",
        "MsgType": "text",
        "Content": content,
    }


def test_passive_reply_is_deterministic_with_a_fixed_prefix(crypto: WeComCrypto) -> None:
    reply = crypto.reply(MSG_ZH, "1700000000", "nonce42", random=RANDOM)
    assert reply == (
        f"<xml><Encrypt><![CDATA[{CT_ZH}]]></Encrypt><MsgSignature><![CDATA[{SIG_ZH}]]></MsgSignature>"
        "<TimeStamp>1700000000</TimeStamp><Nonce><![CDATA[nonce42]]></Nonce></xml>"
    )


@pytest.mark.parametrize(("timestamp", "nonce"), [("17e8", "n"), ("", "n"), ("1<x>", "n"), ("1", "a\x00")])
def test_reply_refuses_values_xml_cannot_carry(crypto: WeComCrypto, timestamp: str, nonce: str) -> None:
    with pytest.raises(ValueError):
        crypto.reply("<xml/>", timestamp, nonce)


@pytest.mark.parametrize("random", [b"", b"x" * 15, b"x" * 17])
def test_the_random_prefix_must_be_16_bytes(crypto: WeComCrypto, random: bytes) -> None:
    with pytest.raises(ValueError, match="16"):
        crypto.encrypt("hi", random=random)


# ------------------------------------------------------------------ configuration and errors
@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (KEY[:-1], "43 characters; it is 42"),
        (KEY + "A", "43 characters; it is 44"),
        ("", "43 characters; it is 0"),
        (KEY[:-1] + "+", "letters"),
        (KEY[:-1] + "=", "letters"),
        (KEY[:-1] + "é", "letters"),
        (KEY[:-1] + " ", "letters"),
    ],
)
def test_a_bad_encoding_aes_key_is_a_config_error(key: str, reason: str) -> None:
    with pytest.raises(InvalidEncodingAESKey, match=reason) as caught:
        WeComCrypto(TOKEN, key, CORP)
    assert isinstance(caught.value, ConfigError)
    assert KEY[:20] not in str(caught.value)


def test_an_empty_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Token"):
        WeComCrypto("", KEY, CORP)


def test_repr_shows_no_secrets(crypto: WeComCrypto) -> None:
    assert repr(crypto) == f"WeComCrypto(receive_id={CORP!r})"
    assert TOKEN not in repr(crypto) and KEY not in repr(crypto)


@pytest.mark.parametrize(
    ("error", "base", "status", "code"),
    [
        (BadSignature, AuthError, 401, -40001),
        (WrongReceiver, Forbidden, 403, -40005),
        (BadCiphertext, MalformedPayload, 400, -40007),
        (BadXml, MalformedPayload, 400, -40002),
        (InvalidEncodingAESKey, ConfigError, 500, -40004),
    ],
)
def test_errors_map_to_http_statuses(
    error: type[WeComCryptoError], base: type, status: int, code: int
) -> None:
    exc = error("x")
    assert isinstance(exc, WeComCryptoError) and isinstance(exc, base)
    assert classify(exc)[0] == status
    assert exc.code == code
    assert not exc.retryable
