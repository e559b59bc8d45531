"""What the bot says, in Simplified Chinese and English; Traditional Chinese is converted from Simplified,
so every text exists once per language and 繁體 users still read 繁體.

The conversion follows the region the user writes like: OpenCC's generic ``s2t`` gives forms nobody writes
(爲, 覈, 裏), so Traditional readers get the Hong Kong phrasing (``s2hk``) where they write Cantonese
(唔, 冇, 咗, 嘅, 係 …) and the Taiwan phrasing (``s2twp``: 資訊, 軟體) otherwise. The region travels inside
the conversation's script as ``Hant-HK`` / ``Hant-TW`` (BCP 47 order); a bare ``Hant`` reads as Taiwan.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from bot.vocabulary import Script, group_for

TEXTS: dict[str, dict[str, str]] = {
    "greet": {
        "zh": "您好，我是报销与发票助手。请直接描述遇到的问题，例如“发票查验失败”或“收不到验证码”。",
        "en": 'Hi, I\'m the expense and e-invoice assistant. Tell me what went wrong, e.g. "invoice verification failed" or "I can\'t get the SMS code".',
    },
    "thanks": {"zh": "不客气！还有其他问题随时告诉我。", "en": "You're welcome! Ask me anytime."},
    "goodbye": {"zh": "好的，再见！有问题随时回来找我。", "en": "Goodbye! Come back anytime."},
    "affirm_nothing_pending": {"zh": "好的。还有什么可以帮您？", "en": "OK. What else can I help with?"},
    "deny_nothing_pending": {
        "zh": "好的。请描述您遇到的问题。",
        "en": "OK. Please describe the problem you're having.",
    },
    "answer_intro": {"zh": "关于「{title}」，可以这样处理：", "en": 'About "{title}", here is what to do:'},
    "answer_other_language": {
        "zh": "（这篇文章目前只有英文版）",
        "en": "(this article is only available in Chinese)",
    },
    "answer_more": {"zh": "详细说明：{link}", "en": "Full article: {link}"},
    "was_it_helpful": {"zh": "这个回答有帮助吗？", "en": "Did this help?"},
    "helpful": {"zh": "有帮助", "en": "Helpful"},
    "not_helpful": {"zh": "没帮助", "en": "Not helpful"},
    "glad": {
        "zh": "太好了！还有其他问题随时问我。",
        "en": "Great! Ask me anytime if something else comes up.",
    },
    "offer_human": {
        "zh": "抱歉没能解决。需要为您转接人工客服吗？",
        "en": "Sorry that didn't solve it. Shall I connect you with a support agent?",
    },
    "no_kb_answer": {
        "zh": "这个问题我没有把握回答好。需要为您转接人工客服吗？",
        "en": "I'm not confident I can answer this one well. Shall I connect you with a support agent?",
    },
    "unclear_offer_human": {
        "zh": "抱歉，我还是没能理解您的问题。需要为您转接人工客服吗？",
        "en": "Sorry, I still couldn't understand the question. Shall I connect you with a support agent?",
    },
    "chit_chat": {
        "zh": "这个我可帮不上忙 😊 我是报销与发票助手，可以帮您处理例如：{examples}。",
        "en": "I'm afraid I can't help with that 😊 I'm the expense and e-invoice assistant; I can help with things like: {examples}.",
    },
    "yes_human": {"zh": "转人工客服", "en": "Talk to an agent"},
    "no_thanks": {"zh": "先不用", "en": "Not now"},
    "ok_not_now": {
        "zh": "好的。您可以换个说法再问我，或随时输入“转人工”。",
        "en": 'OK. Try asking another way, or type "human" anytime.',
    },
    "clarify": {"zh": "您是想问：", "en": "Did you mean:"},
    "rephrase": {
        "zh": "抱歉，我没太理解。可以换个说法吗？我能帮您处理例如：{examples}。",
        "en": "Sorry, I didn't quite get that. Could you put it another way? I can help with things like: {examples}.",
    },
    "handoff_queued": {
        "zh": "已为您转接人工客服（{reason}）。您前面还有 {ahead} 位，预计等待约 {wait}。请稍候，客服接入后会直接在这里回复您。",
        "en": "I've passed you to a support agent ({reason}). {ahead} ahead of you, expected wait about {wait}. An agent will reply right here.",
    },
    "handoff_ticket": {
        "zh": "现在暂无人工客服在线，已为您创建工单 {ticket}（{reason}）。我们会在 {due} 前首次回复您（{tier}问题承诺 {first}内响应），回复会显示在这里。等待期间您仍可以继续问我其他问题；发送“查询工单 {ticket}”查看进度，发送“取消转人工”撤销。",
        "en": 'No agent is online right now, so I\'ve opened ticket {ticket} ({reason}). You\'ll get a first response here by {due} ({tier} issues: within {first}). Meanwhile you can keep asking me other questions; send "ticket status {ticket}" to check on it, or "cancel" to withdraw it.',
    },
    "handoff_ticket_scheduled": {
        "zh": "现在不在人工客服值班时间，已为您创建工单 {ticket}（{reason}）。值班客服 {shift} 上班，我们会在 {due} 前首次回复您，回复会显示在这里。等待期间您仍可以继续问我其他问题；发送“查询工单 {ticket}”查看进度，发送“取消转人工”撤销。",
        "en": 'Our agents are off duty right now, so I\'ve opened ticket {ticket} ({reason}). The next shift starts {shift}; you\'ll get a first response here by {due}. Meanwhile you can keep asking me other questions; send "ticket status {ticket}" to check on it, or "cancel" to withdraw it.',
    },
    "ticket_pending": {
        "zh": "您的工单 {ticket} 已在人工客服队列中，我们会在 {due} 前首次回复您。这期间我也可以先帮您看看其他问题。",
        "en": "Your ticket {ticket} is already waiting for an agent; you'll get a first response by {due}. Meanwhile I can help with anything else.",
    },
    "handoff_cancelled": {
        "zh": "好的，已取消转人工{ticket_note}。有问题可以继续问我，或随时输入“转人工”。",
        "en": 'OK, I\'ve withdrawn your request for an agent{ticket_note}. Ask me anything, or type "human" anytime.',
    },
    "still_queued": {
        "zh": "您已在人工客服队列中，前面还有 {ahead} 位，预计等待约 {wait}。",
        "en": "You're in the queue for a support agent: {ahead} ahead of you, expected wait about {wait}.",
    },
    "ticket_status": {
        "zh": "工单 {ticket}：状态「{status}」，严重程度「{tier}」，首次响应截止 {due}。",
        "en": 'Ticket {ticket}: status "{status}", severity "{tier}", first response due {due}.',
    },
    "ticket_unknown": {
        "zh": "没有找到工单 {ticket}，请核对编号（格式 T-年月日-序号）。",
        "en": "I couldn't find ticket {ticket}. Please check the number (format T-YYYYMMDD-NNNN).",
    },
    "resolved_reopen": {"zh": "您好，有新的问题吗？请直接描述。", "en": "Hello again! What can I help with?"},
}

REASONS: dict[str, dict[str, str]] = {
    "user_request": {"zh": "您要求人工服务", "en": "you asked for a person"},
    "urgent": {"zh": "问题紧急", "en": "the problem is urgent"},
    "negative_sentiment": {"zh": "您对服务不满意", "en": "you're unhappy with the help so far"},
    "complaint": {"zh": "投诉", "en": "a complaint"},
    "repeat_after_answer": {"zh": "问题没有解决", "en": "the problem isn't solved"},
    "repeated_fallback": {"zh": "我没能理解您的问题", "en": "I couldn't understand the question"},
    "not_helpful": {"zh": "回答没有帮助", "en": "my answer didn't help"},
    "no_kb_answer": {"zh": "知识库没有把握回答", "en": "I had no confident answer"},
}

TICKET_STATUS = {
    "open": {"zh": "待处理", "en": "waiting for an agent"},
    "assigned": {"zh": "处理中", "en": "in progress"},
    "resolved": {"zh": "已解决", "en": "resolved"},
    "cancelled": {"zh": "已取消", "en": "cancelled"},
}

TIERS = {
    "urgent": {"zh": "紧急", "en": "urgent"},
    "important": {"zh": "重要", "en": "important"},
    "normal": {"zh": "一般", "en": "normal"},
}

INTENT_LABELS: dict[str, dict[str, str]] = {
    "invoice_verification_failed": {"zh": "发票查验失败", "en": "Invoice verification failed"},
    "invoice_recognition_failed": {"zh": "发票识别错误", "en": "Invoice OCR errors"},
    "invoice_upload_failed": {"zh": "发票上传失败", "en": "Invoice upload failed"},
    "invoice_duplicate": {"zh": "发票重复/已被报销", "en": "Duplicate / already used invoice"},
    "invoice_title_mismatch": {"zh": "发票抬头或税号不符", "en": "Buyer name or tax ID mismatch"},
    "invoice_archive": {"zh": "电子发票下载与归档", "en": "Finding and archiving e-invoices"},
    "login_failed": {"zh": "无法登录", "en": "Can't log in"},
    "password_reset": {"zh": "重置密码", "en": "Reset password"},
    "account_permission": {"zh": "账号权限与角色", "en": "Permissions and roles"},
    "reimbursement_submit_failed": {"zh": "报销单提交失败", "en": "Expense report won't submit"},
    "approval_flow_issue": {"zh": "审批流程问题", "en": "Approval flow problems"},
    "payment_status": {"zh": "报销款到账", "en": "Reimbursement payment status"},
    "export_failed": {"zh": "导出失败", "en": "Export failed"},
    "api_integration": {"zh": "API 与系统对接", "en": "API integration"},
    "data_missing": {"zh": "数据丢失", "en": "Missing data"},
    "system_outage": {"zh": "系统无法访问", "en": "System unavailable"},
    "policy_question": {"zh": "发票与报销政策", "en": "Invoice and expense policy"},
    "request_human": {"zh": "转人工客服", "en": "Talk to an agent"},
    "complaint": {"zh": "投诉与反馈", "en": "Complaints and feedback"},
}

FALLBACK_EXAMPLES = {
    "zh": "发票查验失败、发票识别错误、收不到验证码、审批卡住、导出失败",
    "en": "invoice verification failed, OCR errors, SMS code not received, approval stuck, export failed",
}


HANT_HK, HANT_TW = f"{Script.HANT}-HK", f"{Script.HANT}-TW"
OPENCC_CONFIG = {HANT_HK: "s2hk", HANT_TW: "s2twp"}
# Written Cantonese: characters standard written Chinese does not use (係 only outside 關係/聯係).
CANTONESE = re.compile(r"[唔冇咗嘅喺啲嘢睇佢哋嚟咩噉㗎嘞啱揾搵]|(?<![關关聯联])係")


def is_traditional(script: str) -> bool:
    return str(script).startswith(Script.HANT)


def regional(script: str, text: str, previous: str = "") -> str:
    """The script to reply in with its region: for Traditional Chinese, ``Hant-HK`` where ``text`` is
    written Cantonese, else the conversation's ``previous`` region, else ``Hant-TW``; others unchanged."""
    if not is_traditional(script):
        return script
    if CANTONESE.search(text):
        return HANT_HK
    return previous if previous in OPENCC_CONFIG else HANT_TW


@functools.lru_cache(maxsize=4)
def _converter(config: str) -> Any:
    import opencc

    return opencc.OpenCC(config)


def base_language(script: str) -> str:
    return group_for(script).value


def localize(text: str, script: str) -> str:
    """Convert Simplified Chinese to Traditional (in the script's regional phrasing) for Hant readers;
    anything else as is."""
    if not is_traditional(script):
        return text
    return _converter(OPENCC_CONFIG.get(script, "s2twp")).convert(text)


def say(key: str, script: str, **params: Any) -> str:
    return localize(TEXTS[key][base_language(script)].format(**params), script)


def label(table: dict[str, dict[str, str]], key: str, script: str) -> str:
    entry = table.get(key)
    return localize(entry[base_language(script)], script) if entry else key


def duration(seconds: int, script: str) -> str:
    lang = base_language(script)
    if seconds < 60:
        return localize(f"{max(seconds, 1)} 秒", script) if lang == "zh" else f"{max(seconds, 1)} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return localize(f"{minutes} 分钟", script) if lang == "zh" else f"{minutes} min"
    hours = round(minutes / 60)
    return localize(f"{hours} 小时", script) if lang == "zh" else f"{hours} h"
