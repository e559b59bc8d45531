"""``POST/GET /api/v1/conversations/{id}/attachments``: the widget's uploads, sniffed, bounded, private."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from typing import Any

import boto3
import pytest
import redis as sync_redis
from fastapi.testclient import TestClient

from bot.filetypes import NotAllowed, safe_filename, sniff
from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from bot.store.blobs import blob_name
from bot.store.keys import Keys
from tests.app.conftest import Chat
from triagebot.app import create_app

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(20)
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF\n"
XML = '<?xml version="1.0" encoding="UTF-8"?>\n<发票><号码>12345678</号码></发票>\n'.encode()
LOG = "2026-11-26 10:00:01 ERROR 发票查验失败: code=E1023\n".encode()


def ofd() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("OFD.xml", "<ofd:OFD/>")
        archive.writestr("Doc_0/Document.xml", "<ofd:Document/>")
    return out.getvalue()


def upload(chat: Chat, name: str, content: bytes, token: str | None = None, **form: str) -> Any:
    return chat.client.post(
        f"/api/v1/conversations/{chat.id}/attachments",
        headers={"Authorization": f"Bearer {token or chat.token}"},
        files={"file": (name, content, "application/octet-stream")},
        data=form,
    )


@pytest.mark.parametrize(
    ("name", "content", "content_type", "kept_as"),
    [
        ("screen.png", PNG, "image/png", "screen.png"),
        ("photo.JPG", JPEG, "image/jpeg", "photo.JPG"),
        ("invoice.pdf", PDF, "application/pdf", "invoice.pdf"),
        ("invoice.ofd", ofd(), "application/ofd", "invoice.ofd"),
        ("invoice.xml", XML, "application/xml", "invoice.xml"),
        ("app.log", LOG, "text/plain; charset=utf-8", "app.log"),
        ("notes.txt", LOG, "text/plain; charset=utf-8", "notes.txt"),
        ("report.png", PDF, "application/pdf", "report.png.pdf"),  # the content decides, not the name
        ("../../etc/passwd.txt", LOG, "text/plain; charset=utf-8", "passwd.txt"),
    ],
)
def test_an_allowed_file_is_kept_and_announced_in_the_stream(
    chat: Chat, name: str, content: bytes, content_type: str, kept_as: str
) -> None:
    response = upload(chat, name, content, client_msg_id="up-1")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"attachment_id", "url", "content_type", "size"}
    assert (body["content_type"], body["size"]) == (content_type, len(content))
    assert body["url"] == f"/api/v1/conversations/{chat.id}/attachments/{body['attachment_id']}"
    event = [e for e in chat.events() if e["type"] == "attachment"][-1]
    assert event["attachment_id"] == body["attachment_id"] and event["url"] == body["url"]
    assert (event["filename"], event["client_msg_id"], event["role"]) == (kept_as, "up-1", "user")

    served = chat.client.get(body["url"], headers=chat.headers)
    assert served.status_code == 200 and served.content == content
    assert served.headers["content-type"] == content_type
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]
    disposition = served.headers["content-disposition"]
    assert disposition.startswith("inline" if content_type.startswith("image/") else "attachment")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("screen.png", b"<!doctype html><html><script>alert(1)</script></html>"),
        ("notes.txt", b"  <html><body onload=alert(1)>hi</body></html>"),
        (
            "page.xml",
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>',
        ),
        ("app.log", "发票".encode("gbk")),  # text must be UTF-8
        ("archive.ofd", b"PK\x03\x04" + bytes(40)),  # a ZIP without OFD.xml (here not even a valid one)
        ("program.exe", b"MZ\x90\x00\x03" + bytes(60)),
        ("empty.txt", b""),
    ],
)
def test_content_that_is_not_an_allowed_type_is_415(chat: Chat, name: str, content: bytes) -> None:
    response = upload(chat, name, content)
    assert response.status_code == 415, response.text
    assert response.json()["error"] == "UnsupportedMediaType"
    assert not [e for e in chat.events() if e["type"] == "attachment"]


def test_only_the_conversations_token_reads_or_writes_its_files(client: TestClient) -> None:
    alice, mallory = Chat(client), Chat(client)
    url = upload(alice, "screen.png", PNG).json()["url"]
    assert upload(alice, "x.png", PNG, token=mallory.token).status_code == 401
    assert client.get(url).status_code == 401  # no token
    assert client.get(url, headers=mallory.headers).status_code == 401  # another conversation's token
    assert client.get(url.replace(alice.id, mallory.id), headers=mallory.headers).status_code == 404
    assert client.get(url[:-4] + "zzzz", headers=alice.headers).status_code == 404
    assert client.get(url, headers=alice.headers).status_code == 200


def test_a_missing_file_field_is_422(chat: Chat) -> None:
    response = chat.client.post(
        f"/api/v1/conversations/{chat.id}/attachments", headers=chat.headers, data={"other": "x"}
    )
    assert response.status_code == 422, response.text


def test_the_upload_has_its_own_size_limit_above_the_body_limit(
    settings: Settings, nlu: Any, knowledge_base: Any
) -> None:
    settings = settings.model_copy(update={"max_body_bytes": 4096, "max_attachment_bytes": 64 * 1024})
    with TestClient(create_app(settings, nlu=nlu, kb=knowledge_base)) as client:
        chat = Chat(client)
        big_log = b"x" * (32 * 1024)  # over the general body limit, under the attachment limit
        assert upload(chat, "big.log", big_log).status_code == 201
        too_big = upload(chat, "huge.log", b"y" * (80 * 1024))
        assert too_big.status_code == 413, too_big.text
        # Everything else keeps the general limit.
        posted = client.post(
            f"/api/v1/conversations/{chat.id}/messages",
            headers=chat.headers,
            json={"text": "z" * 5000, "client_msg_id": "m1"},
        )
        assert posted.status_code == 413


@pytest.mark.parametrize(
    ("content", "name", "problem"),
    [(b"\x00\x01binary", "a.txt", "binary"), (b"<html>", "a.txt", "HTML"), (b"not xml", "a.xml", "XML")],
)
def test_sniff_says_why(content: bytes, name: str, problem: str) -> None:
    with pytest.raises(NotAllowed, match=problem):
        sniff(content, name)


def test_safe_filename_strips_paths_and_control_characters() -> None:
    assert safe_filename("C:\\Users\\me\\发票\x07.pdf", sniff(PDF)) == "发票_.pdf"
    assert safe_filename("", sniff(PNG)) == "attachment.png"


def test_agents_open_the_same_url_through_the_desk(client: TestClient) -> None:
    """The user's token is served here; an agent's is handed to the desk's route for the same path."""
    from tests.gateway.conftest import Agent

    chat = Chat(client)
    url = upload(chat, "screen.png", PNG).json()["url"]
    supervisor = Agent(client, "attach-sup", role="supervisor")
    agent = Agent(client, "attach-agent")
    served = client.get(url, headers=supervisor.headers)
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["x-content-type-options"] == "nosniff"
    assert client.get(url, headers=agent.headers).status_code == 403  # not one of this agent's conversations
    assert client.get(url, headers={"Authorization": "Bearer agt_nonsense"}).status_code == 401


def test_the_bytes_live_on_disk_under_var_and_redis_keeps_only_metadata(
    chat: Chat, settings: Settings
) -> None:
    content = PNG + bytes(200_000)
    body = upload(chat, "big.png", content).json()
    redis = sync_redis.Redis.from_url(settings.redis_url, decode_responses=True)
    record = redis.hgetall(Keys(settings.redis_prefix).attachment(chat.id, body["attachment_id"]))
    assert "content" not in record and int(record["size"]) == len(content)
    assert record["sha256"] == hashlib.sha256(content).hexdigest()
    assert redis.pttl(Keys(settings.redis_prefix).attachment(chat.id, body["attachment_id"])) > 0
    assert (settings.var_dir / "attachments" / record["blob"]).read_bytes() == content
    assert max(len(v) for v in record.values()) < 200  # no bytes, no base64 of them


def test_a_record_written_before_the_blob_store_is_still_served(chat: Chat, settings: Settings) -> None:
    keys = Keys(settings.redis_prefix)
    redis = sync_redis.Redis.from_url(settings.redis_url, decode_responses=True)
    redis.hset(
        keys.attachment(chat.id, "0123abcd"),
        mapping={
            "content": base64.b64encode(PDF).decode(),
            "content_type": "application/pdf",
            "filename": "x.pdf",
        },
    )
    served = chat.client.get(f"/api/v1/conversations/{chat.id}/attachments/0123abcd", headers=chat.headers)
    assert served.status_code == 200 and served.content == PDF


def test_bytes_gone_from_the_store_are_404_not_500(chat: Chat, settings: Settings) -> None:
    body = upload(chat, "screen.png", PNG).json()
    for path in (settings.var_dir / "attachments").rglob("*"):
        if path.is_file():
            path.unlink()
    gone = chat.client.get(body["url"], headers=chat.headers)
    assert gone.status_code == 404 and gone.json()["error"] == "NotFound"


def test_with_an_s3_bucket_configured_uploads_go_to_the_bucket(
    settings: Settings,
    nlu: NLUPipeline,
    knowledge_base: KnowledgeBase,
    s3_endpoint: str,
    s3_env: None,
) -> None:
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="triage-uploads")
    on_s3 = settings.model_copy(
        update={"attachments_url": "s3://triage-uploads/prod", "s3_endpoint_url": s3_endpoint}
    )
    with TestClient(create_app(on_s3, nlu=nlu, kb=knowledge_base)) as client:
        chat = Chat(client)
        body = upload(chat, "invoice.pdf", PDF).json()
        served = client.get(body["url"], headers=chat.headers)
    assert served.status_code == 200 and served.content == PDF
    listed = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket="triage-uploads")
    assert [o["Key"] for o in listed["Contents"]] == [f"prod/{blob_name(chat.id, body['attachment_id'])}"]
    assert not (settings.var_dir / "attachments").exists()
