"""Every request and response body of the HTTP API (so the OpenAPI schema is complete)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.contracts.http import ErrorOut as ErrorOut  # the routes' error body, shared with the desk

State = Literal["bot", "queued", "waiting", "assigned", "resolved"]
MAX_SEQ = 2**63 - 1  # sequence numbers are Redis integers (and the first half of stream ids)
ID_CHARS = 128  # a client's ids (message ids, senders) become Redis keys or parts of them: bounded


class ButtonOut(BaseModel):
    title: str
    payload: str


class ReplyOut(BaseModel):
    seq: int = Field(description="Sequence number of this event in the conversation")
    text: str
    buttons: list[ButtonOut] = []


class SLAOut(BaseModel):
    tier: str
    first_response_seconds: int
    resolution_seconds: int
    first_response_due: str
    resolution_due: str
    started_at: str
    scheduled_from: str | None = Field(
        None, description="Nobody was on duty: the clock runs from the next shift's start"
    )


class HandoffOut(BaseModel):
    reason: str = Field(
        description="user_request, urgent, complaint, negative_sentiment, repeat_after_answer, "
        "repeated_fallback, not_helpful or no_kb_answer"
    )
    severity: Literal["urgent", "important", "normal"]
    position: int | None = Field(description="1-based place in the queue (null when a ticket was opened)")
    eta_seconds: int | None = Field(description="Expected wait for an agent")
    sla: SLAOut
    ticket_id: str | None = None
    intent: str | None = Field(None, description="The intent the bot had understood")
    group: str | None = Field(None, description="The skill group (language) whose queue it joined")
    reasons: list[str] = Field(
        default_factory=list,
        description='Why: the rule that decided ("rule:human_request"), then the severity\'s reasons',
    )


class ParseSummary(BaseModel):
    intent: str
    confidence: float
    severity: dict[str, Any]
    sentiment: dict[str, Any]
    language: str
    ambiguous: bool
    entities: list[dict[str, Any]]


# Who the user is comes only from a signed identity token: an unsigned body must not name it.
IDENTITY_FIELDS = ("user", "tenant", "vip")


def _refuse_unsigned_identity(data: Any, fields: tuple[str, ...]) -> Any:
    if isinstance(data, dict):
        sent = [f for f in fields if f in data]
        if sent:
            raise ValueError(
                f"{', '.join(sent)} cannot be set in the request body: the user's id, tenant and VIP tier "
                "come only from a signed identity_token (see docs/api.md)"
            )
    return data


class CreateConversationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str = Field("web", max_length=32)
    identity_token: str | None = Field(
        None,
        max_length=8192,
        description="HS256 JWT from the host SaaS (sub, exp; optional tenant, name, email, phone, vip 0-3, "
        "locale), signed with TRIAGE_IDENTITY_SECRET. Without it the user is anonymous.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_unsigned_identity(cls, data: Any) -> Any:
        return _refuse_unsigned_identity(data, IDENTITY_FIELDS)


class CreateConversationOut(BaseModel):
    conversation_id: str
    token: str = Field(
        description="Send as `Authorization: Bearer <token>` to post to and read this conversation"
    )


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="The user's message (limit: TRIAGE_MAX_MESSAGE_CHARS)")
    client_msg_id: str = Field(
        min_length=1,
        max_length=ID_CHARS,
        description="Unique per message; a retry with the same id is stored and answered once",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_sender(cls, data: Any) -> Any:
        # The sender of a message is the conversation's (verified or anonymous) user.
        return _refuse_unsigned_identity(data, IDENTITY_FIELDS)


class MessageOut(BaseModel):
    conversation_id: str
    state: State
    replies: list[ReplyOut]
    parse: ParseSummary
    handoff: HandoffOut | None
    ticket_id: str | None


class EventOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    seq: int
    type: str
    ts: int


class EventsOut(BaseModel):
    conversation_id: str
    state: State
    events: list[EventOut]
    last_seq: int


class TicketOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    ticket_id: str
    conversation_id: str
    status: str
    severity: str
    reason: str
    sla: SLAOut
    created_at: str


class RasaMetadata(BaseModel):
    """Rasa's free-form metadata; ``message_id`` makes a retry idempotent."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)
    message_id: str | None = Field(None, min_length=1, max_length=ID_CHARS)


class RasaMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sender: str = Field(min_length=1, max_length=ID_CHARS)
    message: str
    metadata: RasaMetadata | None = None
    input_channel: str | None = Field(
        None, max_length=64, description="Sent by some Rasa clients; ignored (the endpoint is the channel)"
    )


class RasaReplyOut(BaseModel):
    recipient_id: str
    text: str
    buttons: list[ButtonOut] | None = None


class ParseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    message_id: str | None = Field(
        None, max_length=ID_CHARS, description="Accepted from Rasa clients; unused"
    )
