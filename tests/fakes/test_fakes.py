"""The fake WeCom and DingTalk servers, driven over real HTTP with httpx."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest

from tests.fakes import FakePlatform
from tests.fakes.dingtalk import FakeDingTalk, sign
from tests.fakes.wecom import FakeWeCom


@pytest.fixture
def wecom() -> Iterator[FakeWeCom]:
    with FakeWeCom(users=["zhangsan", "lisi"]) as fake:
        yield fake


@pytest.fixture
def dingtalk() -> Iterator[FakeDingTalk]:
    with FakeDingTalk() as fake:
        yield fake


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


class Clock:
    """A settable ``clock`` for the fakes."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def send_text(http: httpx.Client, fake: FakeWeCom, token: str, user: str, content: str) -> dict[str, Any]:
    body = {"touser": user, "msgtype": "text", "agentid": fake.agentid, "text": {"content": content}}
    response = http.post(f"{fake.url}/cgi-bin/message/send", params={"access_token": token}, json=body)
    assert response.status_code == 200
    return dict(response.json())


# ------------------------------------------------------------------ WeCom
@pytest.mark.parametrize(
    ("corpid", "secret", "errcode"),
    [
        ("wwfakecorp00000001", "fake-corp-secret", 0),
        ("wwsomebodyelse", "fake-corp-secret", 40013),
        ("wwfakecorp00000001", "wrong", 40001),
        ("", "fake-corp-secret", 41002),
    ],
)
def test_wecom_gettoken(http: httpx.Client, wecom: FakeWeCom, corpid: str, secret: str, errcode: int) -> None:
    answer = http.get(f"{wecom.url}/cgi-bin/gettoken", params={"corpid": corpid, "corpsecret": secret}).json()
    assert answer["errcode"] == errcode
    if errcode == 0:
        assert answer["errmsg"] == "ok" and answer["expires_in"] == 7200 and answer["access_token"]
    else:
        assert f"devtool/query?e={errcode}" in answer["errmsg"]
    assert wecom.token_fetches == (1 if errcode == 0 else 0)


def test_wecom_send_records_the_message(http: httpx.Client, wecom: FakeWeCom) -> None:
    answer = send_text(http, wecom, wecom.token(), "zhangsan|nobody", "发票查验失败怎么办")
    assert answer["errcode"] == 0 and answer["invaliduser"] == "nobody" and answer["msgid"]
    assert wecom.texts_to("zhangsan") == ["发票查验失败怎么办"]
    assert [(m.touser, m.agentid, m.msgtype) for m in wecom.sent] == [("zhangsan", 1000002, "text")]
    assert send_text(http, wecom, wecom.token(), "nobody", "x")["errcode"] == 81013


@pytest.mark.parametrize(
    ("token", "errcode"),
    [("", 41001), ("not-a-token", 40014), ("expired", 42001)],
)
def test_wecom_refuses_bad_tokens(http: httpx.Client, wecom: FakeWeCom, token: str, errcode: int) -> None:
    if token == "expired":
        token = wecom.token()
        wecom.expire_tokens()
    assert send_text(http, wecom, token, "zhangsan", "hi")["errcode"] == errcode
    assert wecom.sent == []


def test_wecom_token_expires_after_expires_in_and_is_renewed(http: httpx.Client) -> None:
    clock = Clock()
    with FakeWeCom(token_expires_in=60) as wecom:
        wecom.clock = clock
        params = {"corpid": wecom.corpid, "corpsecret": wecom.corpsecret}
        first = http.get(f"{wecom.url}/cgi-bin/gettoken", params=params).json()
        assert first["expires_in"] == 60
        assert (
            http.get(f"{wecom.url}/cgi-bin/gettoken", params=params).json()["access_token"]
            == first["access_token"]
        )
        clock.now += 61
        assert send_text(http, wecom, first["access_token"], "zhangsan", "hi")["errcode"] == 42001
        second = http.get(f"{wecom.url}/cgi-bin/gettoken", params=params).json()["access_token"]
        assert second != first["access_token"] and wecom.token_fetches == 3
        assert send_text(http, wecom, second, "zhangsan", "hi")["errcode"] == 0


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"msgtype": "text", "agentid": 1, "text": {"content": "x"}}, 40056),
        ({"msgtype": "news", "agentid": 1000002, "news": {}}, 40008),
        ({"msgtype": "text", "agentid": 1000002, "text": {"content": ""}}, 44004),
        ({"msgtype": "markdown", "agentid": 1000002, "markdown": {"content": "**好**"}}, 0),
        (
            {
                "msgtype": "textcard",
                "agentid": 1000002,
                "textcard": {"title": "t", "description": "d", "url": "u"},
            },
            0,
        ),
        ({"msgtype": "file", "agentid": 1000002, "file": {"media_id": "MEDIA"}}, 0),
    ],
)
def test_wecom_message_validation(
    http: httpx.Client, wecom: FakeWeCom, body: dict[str, Any], errcode: int
) -> None:
    url = f"{wecom.url}/cgi-bin/message/send"
    answer = http.post(url, params={"access_token": wecom.token()}, json={"touser": "lisi", **body}).json()
    assert answer["errcode"] == errcode
    assert len(wecom.sent) == (1 if errcode == 0 else 0)


def test_wecom_long_text_is_truncated_or_rejected(http: httpx.Client, wecom: FakeWeCom) -> None:
    long = "票" * 1000  # 3000 bytes
    assert send_text(http, wecom, wecom.token(), "lisi", long)["errcode"] == 0
    (message,) = wecom.sent
    assert message.truncated and len(message.content.encode()) <= 2048 and long.startswith(message.content)
    wecom.oversize = "reject"
    assert send_text(http, wecom, wecom.token(), "lisi", long)["errcode"] == 45002
    assert len(wecom.sent) == 1


def test_wecom_over_the_pace_is_dropped_silently(http: httpx.Client, wecom: FakeWeCom) -> None:
    clock = Clock()
    wecom.clock = clock
    token = wecom.token()
    answers = [send_text(http, wecom, token, "zhangsan", f"m{i}")["errcode"] for i in range(31)]
    assert answers == [0] * 31
    assert len(wecom.texts_to("zhangsan")) == 30 and [m.content for m in wecom.dropped] == ["m30"]
    assert send_text(http, wecom, token, "lisi", "other member")["errcode"] == 0
    assert wecom.texts_to("lisi") == ["other member"]
    clock.now += 61
    send_text(http, wecom, token, "zhangsan", "next minute")
    assert wecom.texts_to("zhangsan")[-1] == "next minute"


def test_wecom_media_download(http: httpx.Client, wecom: FakeWeCom) -> None:
    wecom.add_media("MEDIA_ID", b"\x89PNG-bytes", "image/png", "receipt.png")
    params = {"access_token": wecom.token(), "media_id": "MEDIA_ID"}
    response = http.get(f"{wecom.url}/cgi-bin/media/get", params=params)
    assert response.content == b"\x89PNG-bytes"
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == 'attachment; filename="receipt.png"'
    missing = http.get(f"{wecom.url}/cgi-bin/media/get", params={**params, "media_id": "nope"})
    assert missing.status_code == 200 and missing.json()["errcode"] == 40007


def test_wecom_group_robot(http: httpx.Client, wecom: FakeWeCom) -> None:
    url = wecom.add_robot("KEY1")
    markdown = {"msgtype": "markdown", "markdown": {"content": "**P1** 发票服务不可用"}}
    answers = [http.post(url, json=markdown).json()["errcode"] for _ in range(21)]
    assert answers == [0] * 20 + [45009]
    assert len(wecom.robot_messages) == 20 and wecom.robot_messages[0].content == "**P1** 发票服务不可用"
    too_long = {"msgtype": "markdown", "markdown": {"content": "x" * 4097}}
    assert http.post(wecom.add_robot("KEY2"), json=too_long).json()["errcode"] == 40058
    unknown = http.post(f"{wecom.url}/cgi-bin/webhook/send", params={"key": "nope"}, json=markdown)
    assert unknown.json()["errcode"] == 93000


# ------------------------------------------------------------------ DingTalk
@pytest.mark.parametrize(
    ("app_secret", "status"),
    [("fake-app-secret", 200), ("wrong", 400)],
)
def test_dingtalk_access_token(
    http: httpx.Client, dingtalk: FakeDingTalk, app_secret: str, status: int
) -> None:
    body = {"appKey": dingtalk.app_key, "appSecret": app_secret}
    response = http.post(f"{dingtalk.url}/v1.0/oauth2/accessToken", json=body)
    assert response.status_code == status
    if status == 200:
        assert response.json()["expireIn"] == 7200 and response.json()["accessToken"]
    else:
        answer = response.json()
        assert answer["code"] == "invalidClientIdOrSecret" and answer["message"] and answer["requestid"]


def test_dingtalk_openapi_sends(http: httpx.Client) -> None:
    with FakeDingTalk(staff_ids=["manager4242", "staff0099"]) as dingtalk:
        headers = {"x-acs-dingtalk-access-token": dingtalk.token()}
        oto = {
            "robotCode": dingtalk.robot_code,
            "userIds": ["manager4242", "ghost"],
            "msgKey": "sampleText",
            "msgParam": json.dumps({"content": "您的报销单已通过"}),
        }
        answer = http.post(
            f"{dingtalk.url}/v1.0/robot/oToMessages/batchSend", headers=headers, json=oto
        ).json()
        assert answer["processQueryKey"] and answer["invalidStaffIdList"] == ["ghost"]
        assert answer["flowControlledStaffIdList"] == []
        group = {
            "robotCode": dingtalk.robot_code,
            "openConversationId": "cidGroup==",
            "msgKey": "sampleMarkdown",
            "msgParam": json.dumps({"title": "通知", "text": "**已处理**"}),
        }
        answer = http.post(
            f"{dingtalk.url}/v1.0/robot/groupMessages/send", headers=headers, json=group
        ).json()
        assert set(answer) == {"processQueryKey"}
        assert dingtalk.texts_to("manager4242") == ["您的报销单已通过"]
        assert [(m.route, m.title, m.content) for m in dingtalk.sent][1] == ("group", "通知", "**已处理**")


@pytest.mark.parametrize("token", ["", "bogus", "expired"])
def test_dingtalk_openapi_refuses_bad_tokens(http: httpx.Client, dingtalk: FakeDingTalk, token: str) -> None:
    if token == "expired":
        token = dingtalk.token()
        dingtalk.expire_tokens()
    body = {"robotCode": "x", "userIds": ["u"], "msgKey": "sampleText", "msgParam": '{"content":"hi"}'}
    headers = {"x-acs-dingtalk-access-token": token}
    response = http.post(f"{dingtalk.url}/v1.0/robot/oToMessages/batchSend", headers=headers, json=body)
    assert response.status_code == 400 and response.json()["code"] == "InvalidAuthentication"
    assert dingtalk.sent == []


def test_dingtalk_session_webhook(http: httpx.Client, dingtalk: FakeDingTalk) -> None:
    clock = Clock()
    dingtalk.clock = clock
    url, expires_ms = dingtalk.session_webhook("cidP2P==", 60, user_id="manager4242")
    assert expires_ms == int((clock.now + 60) * 1000)
    text = {"msgtype": "text", "text": {"content": "您好"}, "at": {"atUserIds": ["manager4242"]}}
    assert http.post(url, json=text).json() == {"errcode": 0, "errmsg": "ok"}
    markdown = {"msgtype": "markdown", "markdown": {"title": "t", "text": "**好**"}}
    assert http.post(url, json=markdown).json()["errcode"] == 0
    assert dingtalk.texts_to("manager4242") == ["您好", "**好**"]
    assert dingtalk.sent[0].at_user_ids == ("manager4242",) and dingtalk.sent[0].route == "session_webhook"
    clock.now += 61
    assert http.post(url, json=text).json() == {"errcode": 300001, "errmsg": "session 不存在"}
    assert len(dingtalk.sent) == 2


def test_dingtalk_custom_robot(http: httpx.Client, dingtalk: FakeDingTalk) -> None:
    url = dingtalk.add_custom_robot("ROBOT_TOKEN", "SECabc123")
    message = {"msgtype": "text", "text": {"content": "告警"}}

    def post(timestamp: int, secret: str = "SECabc123") -> int:
        signed = f"{url}&timestamp={timestamp}&sign={quote_plus(sign(secret, timestamp))}"
        return int(http.post(signed, json=message).json()["errcode"])

    now = int(time.time() * 1000)
    assert post(now, "wrong-secret") == 310000
    assert post(now - 2 * 3600 * 1000) == 310000
    assert [post(now) for _ in range(21)] == [0] * 20 + [130101]
    assert len(dingtalk.robot_posts) == 20 and dingtalk.robot_posts[0].content == "告警"
    unknown = http.post(f"{dingtalk.url}/robot/send", params={"access_token": "nope"}, json=message)
    assert unknown.json()["errcode"] == 300005


@pytest.mark.parametrize("conversation_type", ["1", "2"])
def test_dingtalk_callback_message(
    http: httpx.Client, dingtalk: FakeDingTalk, conversation_type: str
) -> None:
    headers, body = dingtalk.callback_message(
        "发票查验失败",
        sender_staff_id="manager4242",
        conversation_type="2" if conversation_type == "2" else "1",
        msg_id="msgFIXED",
    )
    assert headers["sign"] == sign(dingtalk.app_secret, headers["timestamp"])
    expected = {
        "msgtype", "text", "msgId", "createAt", "conversationType", "conversationId", "senderId", "senderNick",
        "senderCorpId", "senderStaffId", "chatbotCorpId", "chatbotUserId", "robotCode", "isAdmin", "isInAtList",
        "atUsers", "sessionWebhook", "sessionWebhookExpiredTime",
    }  # fmt: skip
    group = conversation_type == "2"
    assert set(body) == expected | ({"conversationTitle"} if group else set())
    assert body["text"]["content"] == (" 发票查验失败" if group else "发票查验失败")
    assert body["msgId"] == "msgFIXED" and body["senderStaffId"] == "manager4242"
    reply = {"msgtype": "text", "text": {"content": "已收到"}}
    assert http.post(body["sessionWebhook"], json=reply).json()["errcode"] == 0
    assert dingtalk.texts_in(body["conversationId"]) == ["已收到"]
    assert dingtalk.texts_to("manager4242") == ([] if group else ["已收到"])


def test_dingtalk_injected_errors_reach_their_kind_of_endpoint(
    http: httpx.Client, dingtalk: FakeDingTalk
) -> None:
    dingtalk.errcode_next(1, -1, "系统繁忙")
    dingtalk.api_error_next(1, 500, "system.error", "未知的系统错误")
    body = {"appKey": dingtalk.app_key, "appSecret": dingtalk.app_secret}
    refused = http.post(f"{dingtalk.url}/v1.0/oauth2/accessToken", json=body)
    assert refused.status_code == 500 and refused.json()["code"] == "system.error"
    assert http.post(f"{dingtalk.url}/v1.0/oauth2/accessToken", json=body).status_code == 200
    url, _ = dingtalk.session_webhook("cid==")
    text = {"msgtype": "text", "text": {"content": "x"}}
    assert http.post(url, json=text).json() == {"errcode": -1, "errmsg": "系统繁忙"}
    assert http.post(url, json=text).json()["errcode"] == 0


# ------------------------------------------------------------------ faults shared by both fakes
Probe = Callable[[httpx.Client, FakePlatform], httpx.Response]


def probe_wecom(http: httpx.Client, fake: FakePlatform) -> httpx.Response:
    assert isinstance(fake, FakeWeCom)
    return http.get(
        f"{fake.url}/cgi-bin/gettoken", params={"corpid": fake.corpid, "corpsecret": fake.corpsecret}
    )


def probe_dingtalk(http: httpx.Client, fake: FakePlatform) -> httpx.Response:
    assert isinstance(fake, FakeDingTalk)
    body = {"appKey": fake.app_key, "appSecret": fake.app_secret}
    return http.post(f"{fake.url}/v1.0/oauth2/accessToken", json=body)


PLATFORMS = [
    pytest.param((FakeWeCom, probe_wecom), id="wecom"),
    pytest.param((FakeDingTalk, probe_dingtalk), id="dingtalk"),
]


@pytest.fixture(params=PLATFORMS)
def platform(request: pytest.FixtureRequest) -> Iterator[tuple[FakePlatform, Probe]]:
    factory, probe = request.param
    with factory() as fake:
        yield fake, probe


def test_fail_next_then_recovers(http: httpx.Client, platform: tuple[FakePlatform, Probe]) -> None:
    fake, probe = platform
    fake.fail_next(2, 503)
    assert [probe(http, fake).status_code for _ in range(3)] == [503, 503, 200]
    assert [item.status for item in fake.requests] == [503, 503, 200]


def test_errcode_next(http: httpx.Client, wecom: FakeWeCom) -> None:
    wecom.errcode_next(1, 45009, "api freq out of limit", path="/cgi-bin/message/send")
    assert probe_wecom(http, wecom).json()["errcode"] == 0  # another path: untouched
    assert send_text(http, wecom, wecom.token(), "lisi", "x")["errcode"] == 45009
    assert send_text(http, wecom, wecom.token(), "lisi", "x")["errcode"] == 0


def test_delay(http: httpx.Client, platform: tuple[FakePlatform, Probe]) -> None:
    fake, probe = platform
    fake.delay = 0.2
    started = time.monotonic()
    assert probe(http, fake).status_code == 200
    assert time.monotonic() - started >= 0.2
    with pytest.raises(httpx.ReadTimeout):
        http.get(f"{fake.url}/anything", timeout=0.1)


def test_stall_holds_until_released(http: httpx.Client, platform: tuple[FakePlatform, Probe]) -> None:
    fake, probe = platform
    fake.stall()
    result: list[int] = []
    sender = threading.Thread(target=lambda: result.append(probe(http, fake).status_code))
    sender.start()
    fake.wait_for(lambda f: f.held == 1, timeout=5)
    assert result == [] and fake.requests[0].status == 0
    fake.release()
    sender.join(5)
    assert result == [200] and fake.held == 0


def test_down_refuses_connections_and_up_reuses_the_port(
    http: httpx.Client, platform: tuple[FakePlatform, Probe]
) -> None:
    fake, probe = platform
    port = fake.port
    fake.down()
    with pytest.raises(httpx.ConnectError):
        probe(http, fake)
    fake.up()
    assert fake.port == port and probe(http, fake).status_code == 200


def test_down_drops_held_requests_unanswered(
    http: httpx.Client, platform: tuple[FakePlatform, Probe]
) -> None:
    fake, probe = platform
    fake.stall()
    errors: list[Exception] = []

    def send() -> None:
        try:
            probe(http, fake)
        except httpx.TransportError as error:
            errors.append(error)

    sender = threading.Thread(target=send)
    sender.start()
    fake.wait_for(lambda f: f.held == 1, timeout=5)
    fake.down()
    sender.join(5)
    assert len(errors) == 1 and fake.requests[0].status == 0


def test_bodies_are_bounded(http: httpx.Client, wecom: FakeWeCom) -> None:
    wecom.max_body = 1024
    response = http.post(
        wecom.add_robot("K"), content=b"x" * 2048, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and wecom.robot_messages == []


def test_wait_for_fails_with_what_was_received(http: httpx.Client, wecom: FakeWeCom) -> None:
    probe_wecom(http, wecom)
    with pytest.raises(AssertionError, match="GET /cgi-bin/gettoken -> 200"):
        wecom.wait_for(lambda f: f.sent, timeout=0.1)
