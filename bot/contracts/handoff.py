"""The handoff: why a conversation went to a human, how urgent it is, and the SLA clock it started."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from bot.errors import InputError
from bot.vocabulary import Group, Severity


@dataclass(frozen=True)
class SLAClock:
    """The targets of a severity tier and the due times they give from ``started_at`` (ISO, with offset)."""

    tier: Severity
    first_response_seconds: int
    resolution_seconds: int
    first_response_due: str
    resolution_due: str
    started_at: str
    # Set when nobody was on duty: the first response is promised from the next shift, not from now.
    scheduled_from: str | None = None

    def first_due_ts(self) -> float:
        return dt.datetime.fromisoformat(self.first_response_due).timestamp()

    def started_ts(self) -> float:
        return dt.datetime.fromisoformat(self.started_at).timestamp()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tier"] = self.tier.value
        if out["scheduled_from"] is None:
            del out["scheduled_from"]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SLAClock:
        try:
            return cls(
                Severity.parse(raw.get("tier")),
                int(raw["first_response_seconds"]),
                int(raw["resolution_seconds"]),
                str(raw["first_response_due"]),
                str(raw["resolution_due"]),
                str(raw["started_at"]),
                raw.get("scheduled_from"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed SLA clock: {exc!r}") from exc


@dataclass(frozen=True)
class Handoff:
    reason: str  # user_request, urgent, complaint, negative_sentiment, repeated_fallback, ...
    severity: Severity
    sla: SLAClock
    group: Group
    intent: str | None = None  # what the bot had understood when it handed off
    trigger: str = ""  # the user's words that triggered it (masked)
    ticket_id: str | None = None
    position: int | None = None
    eta_seconds: int | None = None
    reasons: tuple[str, ...] = ()  # why: "rule:human_request", then the severity's "scope:全公司", ...

    def with_queue(self, position: int, eta_seconds: int) -> Handoff:
        return replace(self, position=position, eta_seconds=eta_seconds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "severity": self.severity.value,
            "sla": self.sla.to_dict(),
            "group": self.group.value,
            "intent": self.intent,
            "trigger": self.trigger,
            "ticket_id": self.ticket_id,
            "position": self.position,
            "eta_seconds": self.eta_seconds,
            "reasons": list(self.reasons),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | None) -> Handoff | None:
        """The stored handoff, or None for a conversation that never left the bot."""
        if not raw:
            return None
        data = json.loads(raw)
        if not data:
            return None
        return cls(
            reason=str(data.get("reason") or "user_request"),
            severity=Severity.parse(data.get("severity")),
            sla=SLAClock.from_dict(data["sla"]),
            group=Group(data.get("group") or Group.ZH),
            intent=data.get("intent"),
            trigger=data.get("trigger") or "",
            ticket_id=data.get("ticket_id"),
            position=data.get("position"),
            eta_seconds=data.get("eta_seconds"),
            reasons=tuple(str(r) for r in data.get("reasons") or ()),
        )
