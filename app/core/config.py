"""One settings object for the whole service.

Everything is read from ``YDT_*`` environment variables (or a ``.env`` file).
With no settings at all the service runs in the *embedded default*: SQLite under
``./var/`` and media in a local folder, so a newcomer needs no server.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/yidiantong.db"


class ConfigurationError(RuntimeError):
    """Raised at start-up when the configuration cannot run safely."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="YDT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    database_echo: bool = False
    database_pool_size: int = 10

    storage: Literal["local", "s3"] = "local"
    media_dir: Path = Path("./var/media")
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str = "minioadmin"
    s3_secret_key: SecretStr = SecretStr("minioadmin")
    s3_bucket: str = "yidiantong-media"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    # Host the phone must use for presigned URLs when it differs from the
    # internal endpoint (MinIO behind a reverse proxy / public domain).
    s3_public_endpoint: str | None = None
    s3_part_size: int = 10 * 1024 * 1024

    jwt_secret: SecretStr | None = None
    jwt_access_minutes: int = 30
    jwt_refresh_days: int = 30
    secret_file: Path = Path("./var/jwt-secret")

    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_appid: str | None = None
    wechat_secret: SecretStr | None = None
    wechat_timeout_seconds: float = 5.0
    dev_login_enabled: bool = False

    # Media limits per kind (bytes); reported by GET /media/limits.
    media_max_image_bytes: int = 20 * 1024 * 1024
    media_max_voice_bytes: int = 20 * 1024 * 1024
    media_max_video_bytes: int = 500 * 1024 * 1024
    media_max_document_bytes: int = 20 * 1024 * 1024  # PDF, staff only
    media_ticket_seconds: int = 900
    media_link_seconds: int = 600
    media_grace_hours: int = 24

    # QR posters: the mini-program page the code opens, and a CJK font for the
    # village name printed under it (found automatically when installed).
    wechat_qr_page: str = "pages/index/index"
    qr_font: Path | None = None

    # Workflow: warning-card thresholds (fraction of allowed time left), the
    # signatures that close a case, notification retries.
    card_yellow_fraction: float = Field(default=1 / 3, gt=0, lt=1)
    card_orange_fraction: float = Field(default=1 / 6, gt=0, lt=1)
    signoff_slots: list[str] = ["complainant", "handler", "supervising_leader", "principal_leader"]
    notify_max_attempts: int = 5
    notify_backoff_seconds: int = 60
    wechat_templates: dict[str, str] = {}
    # Satisfaction and callbacks (issue 6).
    reopen_on_unsatisfied: int = Field(
        default=1, ge=0, description="times an unsatisfied verdict reopens a case"
    )
    callback_fraction: float = Field(default=0.2, gt=0, le=1)

    redis_url: str | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    timezone: str = "Asia/Shanghai"
    tracking_prefix: str = "DZ"
    log_level: str = "INFO"
    log_json: bool = True

    # Working-day calendar: warn in /readyz from this month of the year before
    # a year that neither the admin table nor chinese-calendar knows.
    calendar_warn_from_month: int = Field(default=12, ge=1, le=12)

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.env == "production" and self.dev_login_enabled:
            raise ValueError(
                "YDT_DEV_LOGIN_ENABLED must not be set in production: it skips WeChat login."
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_embedded(self) -> bool:
        """The no-server default: SQLite and a local media folder."""
        return self.is_sqlite and self.storage == "local" and self.env != "production"

    def resolved_jwt_secret(self) -> str:
        """The signing key; the embedded default keeps a generated one under ./var.

        Outside the embedded default an unset secret is refused: tokens signed
        with a key nobody configured would be forgeable or lost on restart.
        """
        if self.jwt_secret is not None and self.jwt_secret.get_secret_value():
            return self.jwt_secret.get_secret_value()
        if not self.is_embedded:
            raise ConfigurationError(
                "YDT_JWT_SECRET is not set. It is required outside the embedded default "
                "(SQLite + local media); set it to a long random string, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        path = self.secret_file
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.write_text(value, encoding="utf-8")
        path.chmod(0o600)
        return value

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        _, _, rest = self.database_url.partition(":///")
        if not rest or rest.startswith(":memory:"):
            return None
        return Path(rest)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
