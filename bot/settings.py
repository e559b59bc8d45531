"""The one settings object. No other module reads the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Deployment settings, read from ``TRIAGE_*`` environment variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("nlu_data"), description="Rasa-format NLU training data and config.yml.")
    model_dir: Path = Field(
        Path("models"), description="Where trained NLU models and KB indexes are written."
    )
    kb_dir: Path = Field(Path("kb_index"), description="Knowledge-base articles and evaluation queries.")
    var_dir: Path = Field(Path("var"), description="Local state (embedded Redis data, logs).")
    timezone: str = Field("Asia/Shanghai", description="Time zone for relative dates and the on-call rota.")
    log_level: str = Field("INFO", description="Python logging level.")

    @property
    def nlu_model_path(self) -> Path:
        return self.model_dir / "nlu"

    @property
    def kb_index_path(self) -> Path:
        return self.model_dir / "kb"
