"""Every Redis key and pub/sub channel this deployment uses, with how long each lives — in one place.

Redis Cluster hash tags keep every multi-key script and transaction inside one slot:

* ``{<conversation id>}`` — the conversation's own keys (record, transcript, idempotency records, outbox
  lease). The append script and the idempotency claim touch only these.
* ``{desk}`` — the human desk: who owns each handed-off conversation, the queues, offers, agents' open
  conversations, tickets, customers' histories, the audit stream. Every ownership transition is one script
  over these keys only. (One slot for the desk bounds its throughput to one shard; handoffs are a small
  share of the traffic — messages, which are the bulk, stay spread over the conversations' slots.)
* ``{inbox}`` — platform messages taken from WeCom and DingTalk and the ids already seen.
* ``{analytics}`` — the rollup's cursors, daily counters and the knowledge-gap log.

Keys outside a tag are only ever written one at a time (or in pipelines the client splits by slot).

``KEYS`` at the bottom is the table docs/redis.md shows: each key either expires (its ``ttl``) or is bounded
(its ``bound``); tests/store/test_keys.py checks that every key a full desk scenario writes matches a row and
that only bounded ones live without a TTL.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

DAY = 86400


@dataclass(frozen=True)
class Keys:
    """Key names under one deployment's prefix (``TRIAGE_REDIS_PREFIX``)."""

    prefix: str = "triage:"

    # ------------------------------------------------------------ one conversation ({cid} slot)
    def conversation(self, cid: str) -> str:
        return f"{self.prefix}conv:{{{cid}}}"

    def events(self, cid: str) -> str:
        return f"{self.prefix}conv:{{{cid}}}:events"

    def idempotency(self, cid: str, client_msg_id: str) -> str:
        """By a digest of the client's message id: its length (and whatever a client put in it) never
        reaches a key."""
        digest = hashlib.sha256(client_msg_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"{self.prefix}conv:{{{cid}}}:idem:{digest}"

    def outbox_lease(self, cid: str) -> str:
        return f"{self.prefix}conv:{{{cid}}}:outbox"

    def message_rate(self, cid: str) -> str:
        """The conversation's message token bucket (bot/store/rates.py)."""
        return f"{self.prefix}conv:{{{cid}}}:rate"

    # ------------------------------------------------------------------ the desk ({desk} slot)
    @property
    def desk(self) -> str:
        return f"{self.prefix}{{desk}}"

    def handoff(self, cid: str) -> str:
        """Ownership of one conversation: state, owner, the handoff, its ticket, SLA marks."""
        return f"{self.desk}:conv:{cid}"

    def skipped(self, cid: str) -> str:
        return f"{self.desk}:conv:{cid}:skipped"

    def prefer(self, cid: str) -> str:
        return f"{self.desk}:conv:{cid}:prefer"

    def queue(self, group: str) -> str:
        return f"{self.desk}:queue:{group}"

    @property
    def offers(self) -> str:
        return f"{self.desk}:offers"

    def agent_open(self, agent_id: str) -> str:
        return f"{self.desk}:agent:{agent_id}:open"

    def ticket(self, ticket_id: str) -> str:
        return f"{self.desk}:ticket:{ticket_id.upper()}"

    def tickets(self, status: str) -> str:
        """Ticket ids by status: ``open`` (scored by first-response due time) or ``resolved`` (by time)."""
        return f"{self.desk}:tickets:{status}"

    def ticket_seq(self, day: str) -> str:
        return f"{self.desk}:tickets:seq:{day}"

    def customer(self, customer_key: str, kind: str) -> str:
        """A verified customer's earlier ``tickets`` or ``conversations`` (anonymous users have none)."""
        return f"{self.desk}:customer:{customer_key}:{kind}"

    @property
    def audit(self) -> str:
        return f"{self.desk}:audit"

    @property
    def breaches(self) -> str:
        return f"{self.desk}:breaches"

    @property
    def handle_times(self) -> str:
        return f"{self.desk}:handle_times"

    @property
    def dispatch_lock(self) -> str:
        return f"{self.desk}:dispatch:lock"

    # ------------------------------------------------------------------------ everything else
    @property
    def conversations(self) -> str:
        return f"{self.prefix}conversations"

    @property
    def push_conversations(self) -> str:
        """Conversations on push channels (Rasa callback, WeCom, DingTalk) the outbox follows."""
        return f"{self.prefix}outbox:conversations"

    @property
    def agents(self) -> str:
        return f"{self.prefix}agents"

    @property
    def agents_by_name(self) -> str:
        return f"{self.prefix}agents:by_name"

    def agent(self, agent_id: str) -> str:
        return f"{self.prefix}agent:{agent_id}"

    def agent_tokens(self, agent_id: str) -> str:
        """An agent's API tokens: token id → digest, created and expiry times (handoff_gateway/tokens.py)."""
        return f"{self.prefix}agent:{agent_id}:tokens"

    def session(self, token_digest: str) -> str:
        return f"{self.prefix}session:{token_digest}"

    def api_token(self, token_digest: str) -> str:
        return f"{self.prefix}apitoken:{token_digest}"

    def login_failures(self, who: str) -> str:
        return f"{self.prefix}login:failures:{who}"

    def presence(self, agent_id: str) -> str:
        return f"{self.prefix}presence:{agent_id}"

    @property
    def saved_replies(self) -> str:
        """The team's saved replies for the console (handoff_gateway/replies.py): id → JSON."""
        return f"{self.prefix}replies"

    # ------------------------------------------------------- chat platforms (WeCom, DingTalk)
    @property
    def inbox(self) -> str:
        """Inbound platform messages acknowledged to the platform but not yet handled (bot/inbox.py). In the
        ``{inbox}`` slot with the ``seen`` marks: one script takes a message id and queues its message."""
        return f"{self.prefix}{{inbox}}"

    def seen(self, channel: str, app: str, message_id: str) -> str:
        """A platform message id already taken (WeCom MsgId, DingTalk msgId): retries are handled once."""
        return f"{self.prefix}{{inbox}}:seen:{channel}:{app}:{message_id}"

    def platform_token(self, channel: str, app: str) -> str:
        """A platform API access token, shared by every process until shortly before it expires."""
        return f"{self.prefix}token:{channel}:{app}"

    def platform_token_lock(self, channel: str, app: str) -> str:
        """Held by the one process refreshing ``platform_token``."""
        return f"{self.prefix}token:{channel}:{app}:lock"

    def pace(self, channel: str, app: str, user: str) -> str:
        """Messages sent to one platform user in the current minute (the platform's per-member limit)."""
        return f"{self.prefix}pace:{channel}:{app}:{user}"

    def inbox_lease(self, cid: str) -> str:
        """Held by the process handling one of the conversation's platform messages (bot/inbox.py)."""
        return f"{self.prefix}conv:{{{cid}}}:inbox"

    def sent_part(self, cid: str, digest: str) -> str:
        """One part of a split or merged platform delivery that reached the platform (retries skip it)."""
        return f"{self.prefix}conv:{{{cid}}}:sent:{digest}"

    def attachment(self, cid: str, attachment_id: str) -> str:
        """The metadata of a file, image or voice message a user attached or sent from a chat platform."""
        return f"{self.prefix}conv:{{{cid}}}:file:{attachment_id}"

    def creation_rate(self, address: str) -> str:
        """One client address's token bucket for new conversations (bot/store/rates.py)."""
        return f"{self.prefix}rate:conversations:{address}"

    def alert_rate(self, robot: str) -> str:
        """Alerts posted to one group robot in the current minute (robots take 20 a minute)."""
        return f"{self.prefix}alerts:rate:{robot}"

    # ------------------------------------------------------------ analytics ({analytics} slot)
    @property
    def analytics(self) -> str:
        return f"{self.prefix}{{analytics}}"

    @property
    def analytics_cursors(self) -> str:
        """How far the rollup has read each conversation's stream, with what it remembers of it
        (bot/analytics/rollup.py)."""
        return f"{self.analytics}:conv"

    @property
    def analytics_lease(self) -> str:
        """Which process is rolling up now: one at a time, the others skip the pass."""
        return f"{self.analytics}:lease"

    def analytics_day(self, day: str) -> str:
        """One day's counters (deployment time zone): ``metric|channel|language|…`` → count."""
        return f"{self.analytics}:day:{day}"

    def analytics_times(self, day: str) -> str:
        """First-response and resolution times of the handoffs that started on ``day``."""
        return f"{self.analytics}:day:{day}:times"

    def analytics_fallbacks(self, day: str) -> str:
        """The day's fallback messages (masked) by how often they came."""
        return f"{self.analytics}:day:{day}:fallbacks"

    @property
    def gaps(self) -> str:
        """The knowledge-gap log: fallbacks, "not helpful", handoffs answered without the KB, replies
        marked for an article (``triage gaps`` reads it)."""
        return f"{self.analytics}:gaps"

    # -------------------------------------------------------------------- pub/sub channels
    @property
    def events_channel(self) -> str:
        """The append script publishes ``{"c": cid, "s": seq}`` here: every process's hub wakes on it."""
        return f"{self.prefix}events"

    @property
    def typing_channel(self) -> str:
        """Ephemeral typing signals ``{"c": cid, "role": "user"|"agent"}``: never stored."""
        return f"{self.prefix}typing"

    @property
    def desk_channel(self) -> str:
        return f"{self.prefix}desk"

    def agent_channel(self, agent_id: str) -> str:
        """One agent's consoles, in every process: offers, and ``signed_out`` (a session ended or a token
        was revoked: the consoles it opened close with 4401)."""
        return f"{self.prefix}desk:agent:{agent_id}"


@dataclass(frozen=True)
class KeySpec:
    pattern: str  # after the prefix; <...> is a variable part
    kind: str
    what: str
    ttl: str = ""  # how long it lives, when it expires
    bound: str = ""  # why it stays small, when it does not expire

    def regex(self, prefix: str) -> re.Pattern[str]:
        parts = re.split(r"(<[a-z_]+>)", self.pattern)
        body = "".join(".+?" if p.startswith("<") else re.escape(p) for p in parts)
        return re.compile(re.escape(prefix) + body + "$")


RETENTION = "TRIAGE_TRANSCRIPT_RETENTION_DAYS (90 d), refreshed on every event"
ANALYTICS_RETENTION = "TRIAGE_ANALYTICS_RETENTION_DAYS (400 d), refreshed on every write"
KEYS: tuple[KeySpec, ...] = (
    KeySpec(
        "conv:{<cid>}", "hash", "the conversation: channel, customer, language, bot state, seq", RETENTION
    ),
    KeySpec("conv:{<cid>}:events", "stream", "the transcript; entry id `{seq}-0`", RETENTION),
    KeySpec(
        "conv:{<cid>}:idem:<digest>",
        "string",
        "a processed message's response (a retry gets it back), by a digest of its client_msg_id",
        "30 s while in flight (a dead process's claim lapses); the response: 1 d",
    ),
    KeySpec("conv:{<cid>}:outbox", "string", "the push outbox's delivery lease", "30 s lease"),
    KeySpec(
        "conv:{<cid>}:rate",
        "hash",
        "the conversation's message token bucket (TRIAGE_MESSAGES_PER_MINUTE)",
        "60 s after the last message (a full bucket)",
    ),
    KeySpec("{desk}:conv:<cid>", "hash", "ownership: state, owner, handoff, ticket id, SLA marks", RETENTION),
    KeySpec("{desk}:conv:<cid>:skipped", "set", "agents who declined or let an offer expire", "1 d"),
    KeySpec("{desk}:conv:<cid>:prefer", "string", "the agent a transfer named", "1 d"),
    KeySpec(
        "{desk}:queue:<group>",
        "sorted set",
        "waiting conversations and tickets",
        bound="members leave on every transition out of queued/waiting",
    ),
    KeySpec(
        "{desk}:offers",
        "hash",
        "open offers: conversation → agent, expiry",
        bound="one per queued conversation; removed on accept and expiry",
    ),
    KeySpec(
        "{desk}:agent:<agent_id>:open",
        "set",
        "an agent's open conversations",
        bound="the agent's capacity (a supervisor's leave on resolve, transfer and hand back)",
    ),
    KeySpec("{desk}:ticket:<ticket_id>", "hash", "a ticket: status, severity, SLA, customer", RETENTION),
    KeySpec(
        "{desk}:tickets:<status>",
        "sorted set",
        "ticket ids by status (open, resolved)",
        bound="open: a ticket leaves when resolved or cancelled; resolved: trimmed to the retention window",
    ),
    KeySpec("{desk}:tickets:seq:<day>", "string", "the day's ticket counter", "2 d"),
    KeySpec(
        "{desk}:customer:<customer>:<kind>",
        "sorted set",
        "a verified customer's tickets and conversations",
        RETENTION + "; 50 newest kept",
    ),
    KeySpec("{desk}:audit", "stream", "every ownership change", bound="MAXLEN ~100,000"),
    KeySpec("{desk}:breaches", "sorted set", "SLA breaches", bound="trimmed to the retention window"),
    KeySpec("{desk}:handle_times", "list", "recent handling times (queue ETA)", bound="50 newest"),
    KeySpec("{desk}:dispatch:lock", "string", "which process dispatches", "2 s, renewed"),
    KeySpec(
        "conversations",
        "sorted set",
        "conversations by creation time",
        bound="trimmed to the retention window",
    ),
    KeySpec(
        "outbox:conversations",
        "sorted set",
        "push-channel conversations the outbox follows",
        bound="trimmed to the retention window",
    ),
    KeySpec("agents", "set", "agent ids", bound="one per agent account"),
    KeySpec("agents:by_name", "hash", "agent name → id", bound="one per agent account"),
    KeySpec("agent:<agent_id>", "hash", "an agent account", bound="one per agent account"),
    KeySpec("session:<digest>", "string", "a console sign-in", "TRIAGE_AGENT_SESSION_HOURS (12 h)"),
    KeySpec(
        "agent:<agent_id>:tokens",
        "hash",
        "an agent's API tokens: token id → digest, created, expires",
        bound="one per live token; expired and revoked ones are dropped when listed",
    ),
    KeySpec("apitoken:<digest>", "string", "an agent's API token", "TRIAGE_AGENT_TOKEN_DAYS (90 d)"),
    KeySpec(
        "login:failures:<who>",
        "string",
        "failed sign-ins per name and per client address (lockout)",
        "the lockout window (5 min)",
    ),
    KeySpec(
        "presence:<agent_id>",
        "hash",
        "online/away/offline, last heartbeat, and the status the agent chose",
        bound="one per agent account",
    ),
    KeySpec(
        "replies", "hash", "the team's saved replies: id → title, text", bound="500 replies (409 past that)"
    ),
    KeySpec(
        "{inbox}",
        "stream",
        "platform messages taken but not yet handled",
        bound="handled entries deleted; ≤ 100,000 (then 503)",
    ),
    KeySpec(
        "{inbox}:seen:<channel>:<app>:<message_id>", "string", "a platform message id already taken", "2 d"
    ),
    KeySpec("token:<channel>:<app>", "string", "a platform API access token", "its lifetime less 5 min"),
    KeySpec("token:<channel>:<app>:lock", "string", "the process refreshing that token", "10 s"),
    KeySpec("pace:<channel>:<app>:<user>", "sorted set", "sends to a user in the last minute", "60 s"),
    KeySpec("conv:{<cid>}:sent:<digest>", "string", "a delivered part of a split message", "10 min"),
    KeySpec("conv:{<cid>}:inbox", "string", "the process handling the conversation's message", "30 s lease"),
    KeySpec(
        "conv:{<cid>}:file:<attachment_id>",
        "hash",
        "an attachment's metadata (its bytes: var/attachments or TRIAGE_ATTACHMENTS_URL)",
        RETENTION,
    ),
    KeySpec("alerts:rate:<robot>", "string", "alerts posted to a robot this minute", "60 s"),
    KeySpec(
        "{analytics}:conv",
        "hash",
        "the analytics rollup's cursor per conversation: last seq read, what it remembers of it",
        bound="one per conversation; conversations past the transcript retention are dropped",
    ),
    KeySpec(
        "{analytics}:lease",
        "string",
        "the process rolling analytics up now",
        "a pass's length, at most 5 min",
    ),
    KeySpec("{analytics}:day:<day>", "hash", "a day's analytics counters", ANALYTICS_RETENTION),
    KeySpec(
        "{analytics}:day:<day>:times",
        "list",
        "first-response and resolution times of a day's handoffs",
        ANALYTICS_RETENTION,
    ),
    KeySpec(
        "{analytics}:day:<day>:fallbacks",
        "sorted set",
        "a day's fallback messages (masked) by count",
        ANALYTICS_RETENTION,
    ),
    KeySpec("{analytics}:gaps", "stream", "the knowledge-gap log (`triage gaps`)", bound="MAXLEN ~100,000"),
    KeySpec(
        "rate:conversations:<address>",
        "hash",
        "a client address's token bucket for new conversations (TRIAGE_CONVERSATIONS_PER_MINUTE)",
        "60 s after the last creation (a full bucket)",
    ),
)


def spec_for(prefix: str, key: str) -> KeySpec | None:
    """The row of ``KEYS`` a concrete key belongs to (most specific pattern first)."""
    for spec in sorted(KEYS, key=lambda s: -len(s.pattern)):
        if spec.regex(prefix).match(key):
            return spec
    return None


def markdown_table() -> str:
    """``KEYS`` as the Markdown table of docs/redis.md."""
    rows = ["| key (after the prefix) | type | what | expires / bound |", "|---|---|---|---|"]
    for spec in KEYS:
        lives = f"expires: {spec.ttl}" if spec.ttl else f"no TTL; bounded: {spec.bound}"
        rows.append(f"| `{spec.pattern}` | {spec.kind} | {spec.what} | {lives} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m bot.store.keys > the table in docs/redis.md
    import sys

    sys.stdout.write(markdown_table())
