"""The domain vocabulary, defined once: severity tiers, scripts and skill groups, channels, product areas.

Every other module imports these names instead of spelling the strings itself.
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    URGENT = "urgent"
    IMPORTANT = "important"
    NORMAL = "normal"

    @property
    def rank(self) -> int:
        """0 for the most severe: the order queues and tickets are served in."""
        return SEVERITY_RANK[self]

    @classmethod
    def parse(cls, value: str | None) -> Severity:
        """A stored or sent severity; anything unknown counts as normal."""
        try:
            return cls(value or cls.NORMAL)
        except ValueError:
            return cls.NORMAL

    @classmethod
    def highest(cls, *levels: str | None) -> Severity:
        return min((cls.parse(level) for level in levels), key=lambda s: s.rank, default=cls.NORMAL)


SEVERITY_RANK = {Severity.URGENT: 0, Severity.IMPORTANT: 1, Severity.NORMAL: 2}


class Script(StrEnum):
    """The writing system a user writes in; replies follow it."""

    HANS = "Hans"  # Simplified Chinese
    HANT = "Hant"  # Traditional Chinese
    LATN = "Latn"  # English


class Group(StrEnum):
    """A skill group: the language an agent must read to take a conversation (one queue each)."""

    ZH = "zh"
    EN = "en"


GROUPS: tuple[Group, ...] = (Group.ZH, Group.EN)


def group_for(script: str | None) -> Group:
    """The skill group (and the knowledge-base language) of a script."""
    return Group.EN if script == Script.LATN else Group.ZH


class Channel(StrEnum):
    WEB = "web"  # the widget: websocket, REST and long-poll
    REST = "rest"  # Rasa's REST channel (optionally with a callback URL)
    CALLBACK = "callback"  # Rasa's callback channel: every reply is POSTed to the callback URL
    WECOM = "wecom"
    DINGTALK = "dingtalk"


# The product area of a handed-off intent: agents with that area among their skills are offered it first.
INTENT_AREA: dict[str, str] = {
    "invoice_verification_failed": "invoice",
    "invoice_recognition_failed": "invoice",
    "invoice_upload_failed": "invoice",
    "invoice_duplicate": "invoice",
    "invoice_title_mismatch": "invoice",
    "invoice_archive": "invoice",
    "login_failed": "account",
    "password_reset": "account",
    "account_permission": "account",
    "reimbursement_submit_failed": "expense",
    "approval_flow_issue": "approval",
    "payment_status": "payment",
    "export_failed": "export",
    "api_integration": "integration",
    "data_missing": "platform",
    "system_outage": "platform",
    "policy_question": "policy",
}

MAX_VIP_TIER = 3  # verified identity tokens carry a VIP tier from 0 (none) to 3
