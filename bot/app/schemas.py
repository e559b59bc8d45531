"""Every request and response body of the HTTP API (so the OpenAPI schema is complete)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

State = Literal["bot", "queued", "assigned", "resolved"]


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


class ParseSummary(BaseModel):
    intent: str
    confidence: float
    severity: dict[str, Any]
    sentiment: dict[str, Any]
    language: str
    ambiguous: bool
    entities: list[dict[str, Any]]


class CreateConversationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str = Field("web", max_length=32)
    user: str = Field("", max_length=128, description="The end user's id in the client's own system")
    tenant: str = Field("", max_length=128)
    vip: int = Field(
        0, ge=0, le=9, description="Customer VIP tier (0 none … 9 highest): queued ahead within a severity"
    )


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
        max_length=128,
        description="Unique per message; a retry with the same id is stored and answered once",
    )
    channel: str | None = Field(None, max_length=32)
    user: str | None = Field(None, max_length=128)


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


class RasaMessageIn(BaseModel):
    sender: str = Field(min_length=1, max_length=128)
    message: str
    metadata: dict[str, Any] | None = None


class RasaReplyOut(BaseModel):
    recipient_id: str
    text: str
    buttons: list[ButtonOut] | None = None


class ParseIn(BaseModel):
    text: str


class ErrorOut(BaseModel):
    error: str
    detail: str
    retryable: bool = False
