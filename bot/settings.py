"""The one settings object. No other module reads the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SLATarget(BaseModel):
    first_response_seconds: int
    resolution_seconds: int | None = None  # None: resolution_working_days instead
    resolution_working_days: int = 0


def _default_sla() -> dict[str, SLATarget]:
    return {
        "urgent": SLATarget(first_response_seconds=300, resolution_seconds=3600),
        "important": SLATarget(first_response_seconds=900, resolution_seconds=4 * 3600),
        "normal": SLATarget(first_response_seconds=1800, resolution_working_days=1),
    }


class Settings(BaseSettings):
    """Deployment settings, read from ``TRIAGE_*`` environment variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=".env", extra="ignore",
                                      env_nested_delimiter="__")

    data_dir: Path = Field(Path("nlu_data"), description="Rasa-format NLU training data and config.yml.")
    model_dir: Path = Field(Path("models"), description="Where trained NLU models and KB indexes are written.")
    kb_dir: Path = Field(Path("kb_index"), description="Knowledge-base articles and evaluation queries.")
    var_dir: Path = Field(Path("var"), description="Local state (embedded Redis data, logs).")
    timezone: str = Field("Asia/Shanghai", description="Time zone for relative dates and the on-call rota.")
    log_level: str = Field("INFO", description="Python logging level.")

    # server
    host: str = Field("127.0.0.1", description="Address `triage serve` listens on.")
    port: int = Field(8000, description="Port `triage serve` listens on.")
    redis_url: str | None = Field(None, description="redis:// URL; unset = an embedded Redis under var/redis.")
    redis_prefix: str = Field("triage:", description="Prefix of every Redis key this deployment writes.")
    max_message_chars: int = Field(4000, ge=1, description="Longer messages are refused with 413.")
    transcript_retention_days: int = Field(90, ge=1, description="Transcripts and idempotency records expire.")
    on_duty: bool = Field(True, description="Whether agents are on duty (until the gateway supplies presence).")
    average_handle_seconds: int = Field(300, ge=1, description="Expected handling time per queued conversation.")
    fallbacks_before_handoff: int = Field(2, ge=1, description="nlu_fallback replies in a row before a handoff.")
    heartbeat_seconds: float = Field(15.0, gt=0, description="Websocket heartbeat interval.")
    sla: dict[str, SLATarget] = Field(default_factory=_default_sla, description="First-response/resolution targets.")

    @property
    def nlu_model_path(self) -> Path:
        return self.model_dir / "nlu"

    @property
    def kb_index_path(self) -> Path:
        return self.model_dir / "kb"
