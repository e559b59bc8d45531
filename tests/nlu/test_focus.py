"""The request's focus: a message that opens by denying one topic is classified from what follows."""

from __future__ import annotations

import pytest

from bot.nlu.focus import request_focus
from bot.nlu.pipeline import NLUPipeline
from tests.conftest import TODAY


@pytest.mark.parametrize(
    ("text", "focused"),
    [
        ("不是登录的问题，是提交不了", "提交不了"),
        ("不是上传的问题，传上去了，是查验不通过", "查验不通过"),
        ("我不是要改密码，是根本登不进去", "根本登不进去"),
        ("不是密碼的問題，是帳號被鎖了", "帳號被鎖了"),
        ("唔係登入問題，係個掣撳唔到", "個掣撳唔到"),
        ("并不是导出的问题，而是审批一直卡着", "审批一直卡着"),
        ("it's not the login, I just can't submit anything", "I just can't submit anything"),
        ("not the export, the import fails", "the import fails"),
        ("This isn't about my password but the approval never arrives", "the approval never arrives"),
    ],
)
def test_the_part_after_the_contrast_is_the_request(text: str, focused: str) -> None:
    assert text[request_focus(text) :] == focused


@pytest.mark.parametrize(
    "text",
    [
        "发票查验失败",
        "不是",
        "我不是很懂",
        "不是吧",
        "not working",
        "is the export not ready?",
        "登录不了，不是密码错",
    ],
)
def test_everything_else_is_read_whole(text: str) -> None:
    assert request_focus(text) == 0


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("不是登录的问题，是报销单提交不了", "reimbursement_submit_failed"),
        ("我不是要改密码，是根本登不进去", "login_failed"),
        ("it's not the login, I'm in, I just can't submit my expense report", "reimbursement_submit_failed"),
    ],
)
def test_the_denied_topic_is_not_the_intent(nlu: NLUPipeline, text: str, intent: str) -> None:
    parse = nlu.parse(text, TODAY)
    assert parse["intent"]["name"] == intent
    assert parse["text"] == text  # entities, severity and sentiment still read the whole message
