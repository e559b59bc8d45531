"""The decision table, one row per rule (bot/policy/decide.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.contracts.parse import Intent, Parse, Sentiment, SeverityAssessment
from bot.kb.answer import LOW_CONFIDENCE, Answer, NoAnswer
from bot.policy.decide import ConversationView, decide, ticket_query
from bot.vocabulary import Severity

ANSWER = Answer("zh-x", "标题", "zh", ["第一步"], "/kb/zh-x", 0.8, "…")
NO_ANSWER = NoAnswer(LOW_CONFIDENCE, "too little")


def parse(
    intent: str = "invoice_verification_failed",
    text: str = "发票查验失败",
    *,
    severity: str = "normal",
    sentiment: str = "neutral",
    ambiguous: bool = False,
    ranking: list[str] | None = None,
) -> Parse:
    names = ranking or [intent, "invoice_upload_failed", "invoice_duplicate"]
    return Parse(
        text=text,
        intent=Intent(intent, 0.9),
        ambiguous=ambiguous,
        severity=SeverityAssessment(Severity(severity)),
        sentiment=Sentiment(sentiment),
        intent_ranking=tuple(Intent(n, 0.3) for n in names),
    )


@pytest.mark.parametrize(
    ("p", "view", "kb", "action", "reason"),
    [
        (parse(text="查询工单 T-20261123-0001"), ConversationView(), None, "ticket_status", None),
        (parse("affirm", "好的"), ConversationView(pending={"type": "helpful"}), None, "reply", None),
        (
            parse("deny", "没用"),
            ConversationView(pending={"type": "helpful"}),
            None,
            "offer_human",
            "not_helpful",
        ),
        (
            parse("affirm", "好"),
            ConversationView(pending={"type": "offer_human", "reason": "no_kb_answer"}),
            None,
            "handoff",
            "no_kb_answer",
        ),
        (parse("deny", "不用"), ConversationView(pending={"type": "offer_human"}), None, "reply", None),
        (parse("request_human", "转人工"), ConversationView(), None, "handoff", "user_request"),
        (parse(severity="urgent"), ConversationView(), ANSWER, "handoff", "urgent"),
        (parse("complaint", "我要投诉"), ConversationView(), None, "handoff", "complaint"),
        (parse(sentiment="negative"), ConversationView(), ANSWER, "handoff", "negative_sentiment"),
        (parse("nlu_fallback", "阿巴"), ConversationView(), None, "rephrase", None),
        (
            parse("nlu_fallback", "阿巴"),
            ConversationView(fallback_count=1),
            None,
            "handoff",
            "repeated_fallback",
        ),
        (parse(ambiguous=True), ConversationView(), ANSWER, "clarify", None),
        (parse("greet", "你好"), ConversationView(), None, "reply", None),
        (parse("affirm", "好的"), ConversationView(), None, "reply", None),
        (
            parse(),
            ConversationView(last_answer_intent="invoice_verification_failed"),
            ANSWER,
            "handoff",
            "repeat_after_answer",
        ),
        (parse(), ConversationView(), ANSWER, "answer", None),
        (parse(), ConversationView(), NO_ANSWER, "offer_human", "no_kb_answer"),
    ],
)
def test_decision_table(p: Parse, view: ConversationView, kb: Any, action: str, reason: str | None) -> None:
    decision = decide(p, view, kb)
    assert (decision.action, decision.reason) == (action, reason)


def test_buttons_are_payloads() -> None:
    assert decide(parse("nlu_fallback", "/helpful"), ConversationView(), None).text_key == "glad"
    assert decide(parse("nlu_fallback", "/not_helpful"), ConversationView(), None).action == "offer_human"
    assert decide(parse("nlu_fallback", "/no_human"), ConversationView(), None).text_key == "ok_not_now"


def test_clarify_offers_support_intents_only() -> None:
    p = parse(
        ambiguous=True,
        ranking=[
            "invoice_verification_failed",
            "greet",
            "out_of_scope",
            "invoice_upload_failed",
            "export_failed",
            "login_failed",
        ],
    )
    decision = decide(p, ConversationView(), ANSWER)
    assert decision.options == ("invoice_verification_failed", "invoice_upload_failed", "export_failed")
    assert decision.pending == {"type": "clarify", "text": "发票查验失败"}


def test_fallback_counter_resets_on_anything_else() -> None:
    assert decide(parse("greet", "hi"), ConversationView(fallback_count=1), None).fallback_count == 0


@pytest.mark.parametrize(
    ("text", "ticket"),
    [
        ("查询工单 T-20261123-0001", "T-20261123-0001"),
        ("ticket status t-20261123-0001", "T-20261123-0001"),
        ("T-20261123-0001", "T-20261123-0001"),
        ("上次那个 T-20261123-0001 的问题又出现了，发票查验失败一直报错", None),
        ("发票查验失败", None),
    ],
)
def test_ticket_query(text: str, ticket: str | None) -> None:
    assert ticket_query(text) == ticket
