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
    confidence: float = 0.97,
) -> Parse:
    names = ranking or [intent, "invoice_upload_failed", "invoice_duplicate"]
    return Parse(
        text=text,
        intent=Intent(intent, confidence),
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
        # Two unclear support messages in a row: offer a human (buttons), never a silent ticket.
        (
            parse("nlu_fallback", "阿巴"),
            ConversationView(fallback_count=1),
            None,
            "offer_human",
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


@pytest.mark.parametrize(
    ("text", "confidence", "action"),
    [
        ("发票", 0.52, "clarify"),  # a bare topic word the classifier leans on, not ambiguous: which problem?
        ("电子发票", 0.69, "clarify"),
        ("invoice", 0.5, "clarify"),
        ("invoice problem", 0.6, "clarify"),
        ("发票", 0.8, "answer"),  # sure enough of a bare word: answered
        ("发票查验失败怎么办", 0.52, "answer"),  # more than a topic word: answered at the same confidence
        ("my invoice check failed", 0.5, "answer"),
    ],
)
def test_a_bare_topic_word_below_bare_topic_asks_which_problem(
    text: str, confidence: float, action: str
) -> None:
    decision = decide(parse(text=text, confidence=confidence), ConversationView(), ANSWER)
    assert decision.action == action
    if action == "clarify":
        assert decision.options == (
            "invoice_verification_failed",
            "invoice_upload_failed",
            "invoice_duplicate",
        )


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


def scored(
    intent: str, text: str, confidence: float, ranking: list[tuple[str, float]] | None = None
) -> Parse:
    """A parse with the classifier's confidence and ranking spelled out."""
    return Parse(
        text=text,
        intent=Intent(intent, confidence),
        intent_ranking=tuple(Intent(n, c) for n, c in (ranking or [(intent, confidence)])),
    )


AFTER_ANSWER = ConversationView(last_answer_intent="login_failed", pending={"type": "helpful"})
OFFERED = ConversationView(
    pending={"type": "offer_human", "reason": "no_kb_answer", "intent": "export_failed"}
)


@pytest.mark.parametrize(
    ("p", "view", "action", "reason", "rule"),
    [
        # A human request wins over the support topic beside it.
        (
            scored("invoice_upload_failed", "转人工，发票一直上传失败", 0.97),
            ConversationView(),
            "handoff",
            "user_request",
            "human_request",
        ),
        (
            scored("invoice_upload_failed", "轉人工，發票一直上傳失敗", 0.97),
            ConversationView(),
            "handoff",
            "user_request",
            "human_request",
        ),
        (
            scored("login_failed", "put me through to a person, my login keeps failing", 0.7),
            ConversationView(),
            "handoff",
            "user_request",
            "human_request",
        ),
        (scored("request_human", "转人工", 0.99), OFFERED, "handoff", "no_kb_answer", "human_request"),
        (
            scored("invoice_upload_failed", "不用转人工，发票上传失败", 0.9),
            ConversationView(),
            "answer",
            None,
            "answer",
        ),
        # Vague frustration after an answer: the answer did not help.
        (scored("goodbye", "我这里搞不定", 0.23), AFTER_ANSWER, "offer_human", "not_helpful", "not_resolved"),
        (scored("affirm", "就是弄不好", 0.76), AFTER_ANSWER, "offer_human", "not_helpful", "not_resolved"),
        (scored("deny", "依然不行", 0.61), AFTER_ANSWER, "offer_human", "not_helpful", "not_resolved"),
        (
            scored("deny", "依然不行", 0.61),
            ConversationView(last_answer_intent="login_failed"),
            "offer_human",
            "not_helpful",
            "not_resolved",
        ),
        (
            scored("nlu_fallback", "still doesn't work", 0.13),
            AFTER_ANSWER,
            "offer_human",
            "not_helpful",
            "not_resolved",
        ),
        (scored("goodbye", "我這裡搞不定", 0.23), AFTER_ANSWER, "offer_human", "not_helpful", "not_resolved"),
        # a weak complaint that says the problem is still there is that verdict; a sure one is a complaint
        (
            scored("complaint", "I still have the problem", 0.58),
            AFTER_ANSWER,
            "offer_human",
            "not_helpful",
            "not_resolved",
        ),
        (scored("complaint", "还是有问题，我要投诉", 0.9), AFTER_ANSWER, "handoff", "complaint", "complaint"),
        # ... and without an answer before it, an unclear support message.
        (scored("goodbye", "我这里搞不定", 0.23), ConversationView(), "rephrase", None, "not_resolved"),
        # Yes and no only answer the bot's own question.
        (scored("affirm", "好的", 0.93), AFTER_ANSWER, "reply", None, "yes_no"),
        (scored("affirm", "好", 0.6), OFFERED, "handoff", "no_kb_answer", "yes_no"),
        (scored("affirm", "嗯嗯对", 0.4), OFFERED, "rephrase", None, "unclear"),
        (scored("affirm", "好的", 0.93), ConversationView(), "reply", None, "dialogue_act"),
        (scored("affirm", "就是", 0.5), ConversationView(), "rephrase", None, "unclear"),
        (scored("deny", "不是这样", 0.6), ConversationView(), "rephrase", None, "unclear"),
        # Greetings, thanks and goodbyes only at high confidence.
        (scored("greet", "你好", 0.99), ConversationView(), "reply", None, "dialogue_act"),
        (scored("thanks", "thanks", 0.99), ConversationView(), "reply", None, "dialogue_act"),
        (scored("goodbye", "怎么做红烧肉", 0.3), ConversationView(), "rephrase", None, "unclear"),
        # Chit-chat is answered politely, however many in a row; it never counts towards a handoff.
        (
            scored("nlu_fallback", "明天会下雨吗", 0.92, [("out_of_scope", 0.92)]),
            ConversationView(fallback_count=1),
            "reply",
            None,
            "chit_chat",
        ),
        (
            scored("nlu_fallback", "tell me a joke", 0.96, [("out_of_scope", 0.96)]),
            ConversationView(fallback_count=5),
            "reply",
            None,
            "chit_chat",
        ),
        (scored("out_of_scope", "說個笑話聽聽", 0.74), ConversationView(), "reply", None, "chit_chat"),
        # Unclear support messages: rephrase, then offer a human.
        (
            scored("nlu_fallback", "那个东西弄一下", 0.1, [("export_failed", 0.1)]),
            ConversationView(),
            "rephrase",
            None,
            "unclear",
        ),
        (
            scored("nlu_fallback", "那个东西弄一下", 0.1, [("export_failed", 0.1)]),
            ConversationView(fallback_count=1),
            "offer_human",
            "repeated_fallback",
            "unclear",
        ),
    ],
)
def test_decisions_in_context(
    p: Parse, view: ConversationView, action: str, reason: str | None, rule: str
) -> None:
    decision = decide(p, view, ANSWER)
    assert (decision.action, decision.reason) == (action, reason)
    assert decision.reasons[0] == f"rule:{rule}"


def test_chit_chat_resets_the_unclear_count() -> None:
    oos = scored("nlu_fallback", "明天会下雨吗", 0.92, [("out_of_scope", 0.92)])
    assert decide(oos, ConversationView(fallback_count=1), None).fallback_count == 0


@pytest.mark.parametrize(
    ("p", "intent"),
    [
        (scored("invoice_upload_failed", "转人工，发票一直上传失败", 0.97), "invoice_upload_failed"),
        # The classifier put the request first: the topic comes from the ranking.
        (
            scored("request_human", "转人工，登录不了", 0.6, [("request_human", 0.6), ("login_failed", 0.3)]),
            "login_failed",
        ),
        (scored("request_human", "转人工", 0.99, [("request_human", 0.99), ("greet", 0.01)]), None),
    ],
)
def test_a_handoff_keeps_the_support_topic_for_the_card(p: Parse, intent: str | None) -> None:
    assert decide(p, ConversationView(), None).intent == intent


def test_yes_to_an_offer_hands_off_with_the_offered_topic() -> None:
    decision = decide(scored("affirm", "好", 0.9), OFFERED, None)
    assert (decision.action, decision.intent) == ("handoff", "export_failed")


def test_every_decision_keeps_the_severity_reasons() -> None:
    p = Parse(
        text="全公司都登不上了",
        intent=Intent("login_failed", 0.9),
        severity=SeverityAssessment(Severity.URGENT, ("scope:全公司", "blocked:登不上")),
    )
    decision = decide(p, ConversationView(), ANSWER)
    assert decision.reasons == ("rule:urgent", "scope:全公司", "blocked:登不上")
    assert decision.intent == "login_failed"


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("仲係唔得", True),
        ("試過咗，都係唔得", True),
        ("依然唔work", True),
        ("我這邊張票上載咗好多次都唔得", False),  # 唔得 alone is the symptom ("doesn't work"), like 不行
        ("張發票上載唔得", False),
    ],
)
def test_cantonese_still_not_working_needs_still(text: str, verdict: bool) -> None:
    from bot.policy.cues import not_resolved

    assert not_resolved(text) is verdict
