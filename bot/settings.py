"""The one settings object. No other module reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class SLATarget(BaseModel):
    first_response_seconds: int = Field(gt=0)
    resolution_seconds: int | None = Field(None, gt=0)  # None: resolution_working_days instead
    resolution_working_days: int = Field(0, ge=0)


class UrgentSLA(SLATarget):
    first_response_seconds: int = 300
    resolution_seconds: int | None = 3600


class ImportantSLA(SLATarget):
    first_response_seconds: int = 900
    resolution_seconds: int | None = 4 * 3600


class NormalSLA(SLATarget):
    first_response_seconds: int = 1800
    resolution_working_days: int = 1


class SLATargets(BaseModel):
    """Targets per severity tier; each can be overridden alone, e.g. TRIAGE_SLA__URGENT__FIRST_RESPONSE_SECONDS."""

    urgent: UrgentSLA = UrgentSLA()
    important: ImportantSLA = ImportantSLA()
    normal: NormalSLA = NormalSLA()

    def tier(self, severity: str) -> SLATarget:
        target: SLATarget = getattr(self, severity, self.normal)
        return target


class Settings(BaseSettings):
    """Deployment settings, read from ``TRIAGE_*`` environment variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(
        env_prefix="TRIAGE_", env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    data_dir: Path = Field(Path("nlu_data"), description="Rasa-format NLU training data and config.yml.")
    model_dir: Path = Field(
        Path("models"), description="Where trained NLU models and KB indexes are written."
    )
    kb_dir: Path = Field(Path("kb_index"), description="Knowledge-base articles and evaluation queries.")
    var_dir: Path = Field(Path("var"), description="Local state (embedded Redis data, logs).")
    timezone: str = Field("Asia/Shanghai", description="Time zone for relative dates and the on-call rota.")
    log_level: str = Field("INFO", description="Python logging level.")

    # server
    host: str = Field("127.0.0.1", description="Address `triage serve` listens on.")
    port: int = Field(8000, description="Port `triage serve` listens on.")
    redis_url: str | None = Field(
        None, description="redis:// URL; unset = an embedded Redis under var/redis."
    )
    redis_sentinels: str = Field(
        "",
        description="Comma-separated host:port of Redis Sentinels; set: the primary named "
        "TRIAGE_REDIS_SENTINEL_SERVICE is found through them, again after every failover, and "
        "TRIAGE_REDIS_URL is not used.",
    )
    redis_sentinel_service: str = Field("triage", description="The Sentinel service (master name) to use.")
    redis_cluster_nodes: str = Field(
        "",
        description="Comma-separated host:port of any nodes of a Redis Cluster; set: the client learns the "
        "rest of the cluster from them and follows slot moves and failovers (docs/operations.md), and "
        "TRIAGE_REDIS_URL and TRIAGE_REDIS_SENTINELS are not used.",
    )
    redis_prefix: str = Field("triage:", description="Prefix of every Redis key this deployment writes.")
    redis_max_connections: int = Field(
        128,
        ge=4,
        description="Pool size per process: the event hub holds one connection of its own; the pool serves "
        "short commands (websockets hold none).",
    )
    redis_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="A Redis command unanswered this long fails (503, retryable): a frozen or overloaded Redis "
        "costs a request at most this, and /readyz says so within a second.",
    )
    max_message_chars: int = Field(4000, ge=1, description="Longer messages are refused with 413.")
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Request bodies over this are refused with 413 (a declared Content-Length before reading).",
    )
    conversations_per_minute: int = Field(
        120,
        ge=0,
        description="New conversations per client address per minute (a burst of as many); more get 429. "
        "A client company's staff often share one egress address, so this is per office, not per person. "
        "0: no limit.",
    )
    messages_per_minute: int = Field(
        60,
        ge=0,
        description="Messages per conversation per minute, REST, websocket and Rasa together (a burst of as "
        "many); more get 429 or an error frame. 0: no limit.",
    )
    transcript_retention_days: int = Field(
        90, ge=1, description="Transcripts and idempotency records expire."
    )
    analytics_retention_days: int = Field(
        400, ge=1, description="The analytics rollup's daily counters and times expire (bot/analytics)."
    )
    analytics_interval_seconds: float = Field(
        15.0, gt=0, description="How often each process rolls new conversation events up into analytics."
    )
    on_duty: bool | None = Field(
        None,
        description="unset: agents online and on the rota count as on duty; true/false overrides that.",
    )
    rota_file: Path = Field(Path("rota.yml"), description="The on-call rota (handoff_gateway/rota.py).")
    alert_webhook: str | None = Field(
        None,
        description="Older single alert URL: a WeCom group robot or DingTalk robot, told apart by its host.",
    )
    alert_wecom_webhook: str | None = Field(
        None,
        description="WeCom group robot for on-call alerts: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY.",
    )
    alert_dingtalk_webhook: str | None = Field(
        None,
        description="DingTalk custom robot for on-call alerts: https://oapi.dingtalk.com/robot/send?access_token=T.",
    )
    alert_dingtalk_secret: SecretStr | None = Field(
        None, description="The DingTalk robot's 加签 secret (SEC…); unset = the robot is not signed."
    )
    alert_per_minute: int = Field(
        20, ge=1, description="Alerts posted per robot per minute, across all processes (robots take 20)."
    )
    offer_timeout_seconds: float = Field(30.0, gt=0, description="An agent has this long to accept an offer.")
    presence_grace_seconds: float = Field(
        30.0, gt=0, description="A console silent this long marks its agent away."
    )
    agent_session_hours: float = Field(12.0, gt=0, description="Agent sign-in sessions expire after this.")
    agent_token_days: int = Field(
        90, ge=1, description="Agents' API tokens (agt_…) expire this many days after they are issued."
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses (or *) of reverse proxies whose X-Forwarded-For/-Proto "
        "`triage serve` believes; empty: none, the client address is the connecting peer's.",
    )
    average_handle_seconds: int = Field(
        300, ge=1, description="Expected handling time per queued conversation."
    )
    fallbacks_before_handoff: int = Field(
        2, ge=1, description="nlu_fallback replies in a row before a handoff."
    )
    heartbeat_seconds: float = Field(15.0, gt=0, description="Websocket heartbeat interval.")
    ws_compression: bool = Field(
        False,
        description="permessage-deflate on websockets. Off by default: chat frames are a few hundred bytes, "
        "and each compressed socket costs a zlib context of its own in memory and CPU on every frame "
        "(docs/benchmarks.md, the load figures).",
    )
    rasa_webhook_token: SecretStr | None = Field(
        None,
        description="Shared secret of the Rasa endpoints (/webhooks/rest, /webhooks/callback, /model/parse), "
        "sent as ?token= or Authorization: Bearer; unset = those endpoints are off (404).",
    )
    rasa_callback_url: str | None = Field(
        None,
        description="Rasa callback URL: agent and later bot messages are POSTed to it (docs/channels.md).",
    )
    outbox_lease_seconds: float = Field(
        30.0, gt=0, description="Push outbox: a dead process's deliveries are taken over after this."
    )
    outbox_max_attempts: int = Field(5, ge=1, description="Push outbox: tries per event before giving up.")
    outbox_backoff_seconds: float = Field(
        0.5, gt=0, description="Push outbox: base of the exponential backoff between tries."
    )
    identity_secret: SecretStr | None = Field(
        None,
        description="HS256 secret shared with the host SaaS for identity tokens; unset = all users anonymous.",
    )
    identity_leeway_seconds: float = Field(
        10.0, ge=0, le=300, description="Clock skew allowed when checking an identity token's exp."
    )
    nlu_backend: Literal["native", "rasa"] = Field(
        "native", description="Who classifies intents: our pipeline, or a Rasa server (docs/rasa.md)."
    )
    rasa_url: str = Field("http://127.0.0.1:5005", description="The Rasa server of the rasa NLU backend.")
    rasa_token: SecretStr | None = Field(
        None, description="The Rasa server's --auth-token (sent as ?token=); unset = no token."
    )
    rasa_timeout_seconds: float = Field(
        2.0, gt=0, description="A Rasa parse slower than this is answered by the native pipeline."
    )
    gc_freeze: bool = Field(
        True,
        description="Freeze what start-up loaded (models, dictionaries, the KB index) out of the garbage "
        "collector's full passes, which otherwise walk it again on every one (bot/gcpause.py).",
    )
    gc_thresholds: str = Field(
        "700,10,100",
        description="gc.set_threshold for the app process: allocations before a young collection, young "
        "collections per middle one, middle ones before a full one is considered. CPython's 700,10,10 "
        "walks the whole heap — every open socket's objects — far more often (bot/gcpause.py).",
        pattern=r"^\d+,\d+,\d+$",
    )
    cpu_workers: int = Field(
        4,
        ge=1,
        description="Threads for NLU parses, KB searches and rebuilds and sign-ins (off the event loop).",
    )
    sla: SLATargets = Field(
        default_factory=SLATargets, description="First-response/resolution targets per tier."
    )

    # chat platforms (bot/channels/wecom.py, bot/channels/dingtalk.py); several apps: channels_file
    wecom_token: SecretStr | None = Field(None, description="WeCom app callback Token (signatures).")
    wecom_aes_key: SecretStr | None = Field(None, description="WeCom app EncodingAESKey (43 characters).")
    wecom_corp_id: str | None = Field(None, description="WeCom CorpID (the callback's receive id).")
    wecom_agent_id: int | None = Field(None, description="WeCom AgentId of the support app.")
    wecom_secret: SecretStr | None = Field(None, description="WeCom app Secret (for the send API token).")
    wecom_api_base: str = Field("https://qyapi.weixin.qq.com", description="WeCom API host.")
    wecom_tenant: str | None = Field(None, description="Tenant the WeCom corp's users belong to.")
    wecom_vip_tier: int = Field(0, ge=0, le=3, description="VIP tier of the WeCom corp's users (0-3).")
    dingtalk_app_key: str | None = Field(None, description="DingTalk robot app's AppKey (also robotCode).")
    dingtalk_app_secret: SecretStr | None = Field(None, description="DingTalk app's AppSecret (signatures).")
    dingtalk_api_base: str = Field("https://api.dingtalk.com", description="DingTalk OpenAPI host.")
    dingtalk_stream: bool = Field(False, description="Receive DingTalk robot messages in Stream mode too.")
    dingtalk_session_webhook_prefix: str = Field(
        "https://oapi.dingtalk.com/",
        description="A message's sessionWebhook is used only under this prefix (or the API host).",
    )
    dingtalk_tenant: str | None = Field(None, description="Tenant the DingTalk org's users belong to.")
    dingtalk_vip_tier: int = Field(0, ge=0, le=3, description="VIP tier of the DingTalk org's users (0-3).")
    channels_file: Path = Field(
        Path("channels.yml"), description="Several WeCom/DingTalk apps (docs/channels.md); optional."
    )
    max_callback_bytes: int = Field(
        65536, ge=1024, description="Platform callbacks with a larger body are refused with 413."
    )
    max_attachment_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1,
        description="Files users attach in the widget (larger: 413) or send from WeCom/DingTalk (larger: not kept).",
    )
    attachments_url: str = Field(
        "",
        description="Where attachment bytes are kept: empty for var/attachments, a folder, or s3://bucket/prefix "
        "(boto3: `pip install 'triagebot[s3]'`, AWS_* credentials). Redis keeps only their metadata.",
    )
    contact_key: SecretStr | None = Field(
        None,
        description="Fernet key sealing the e-mail/phone users leave on tickets (unset: one made under var/; "
        "several machines must share one).",
    )
    s3_endpoint_url: str = Field(
        "",
        description="With an s3:// attachments URL: the endpoint of an S3-compatible service (MinIO, Ceph).",
    )

    @property
    def nlu_model_path(self) -> Path:
        return self.model_dir / "nlu"

    @property
    def kb_index_path(self) -> Path:
        return self.model_dir / "kb"
