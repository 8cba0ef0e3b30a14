"""One settings object for the whole service.

Everything is read from ``YDT_*`` environment variables (or a ``.env`` file).
With no settings at all the service runs in the *embedded default*: SQLite under
``./var/`` and media in a local folder, so a newcomer needs no server.
"""

from __future__ import annotations

import ipaddress
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/yidiantong.db"
WECHAT_API = "https://api.weixin.qq.com"
# Each resident notice kind's WeChat subscribe-message fields (key -> slot);
# app/notifications/templates.py explains why each slot sits in its field type.
DEFAULT_TEMPLATE_FIELDS: dict[str, dict[str, str]] = {
    "filed": {
        "character_string1": "tracking_no",
        "phrase2": "status",
        "thing3": "unit",
        "time4": "at",
    },
    "accepted": {
        "character_string1": "tracking_no",
        "phrase2": "status",
        "thing3": "unit",
        "date4": "due",
    },
    "rejected": {
        "character_string1": "tracking_no",
        "phrase2": "status",
        "thing3": "summary",
        "time4": "at",
    },
    "replied": {"character_string1": "tracking_no", "thing2": "summary", "time3": "at"},
    "resolved": {
        "character_string1": "tracking_no",
        "phrase2": "status",
        "thing3": "summary",
        "time4": "at",
    },
    "closed": {
        "character_string1": "tracking_no",
        "phrase2": "status",
        "time3": "at",
        "thing4": "tip",
    },
    "reopened": {
        "character_string1": "tracking_no",
        "phrase2": "status",
        "thing3": "summary",
        "time4": "at",
    },
    "rating_reminder": {"character_string1": "tracking_no", "thing2": "tip", "time3": "at"},
}


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConfigurationError(RuntimeError):
    """Raised at start-up when the configuration cannot run safely."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="YDT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "test", "production"] = Field(
        default="development",
        description="development | test | production; production refuses unsafe settings",
    )
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="database; production: postgresql+asyncpg://ydt:secret@db:5432/yidiantong",
    )
    database_echo: bool = Field(default=False, description="log every SQL statement (debugging)")
    database_pool_size: int = Field(
        default=20,
        ge=1,
        le=500,
        description="connections per process (PostgreSQL); no overflow, so none churn",
    )
    database_pool_recycle_seconds: int = Field(
        default=1800,
        ge=0,
        description="replace a pooled connection older than this (seconds; 0 never); "
        "stands in for a pre-ping per checkout, a dead one is retried once or answered 503",
    )
    database_hot_read_connections: int = Field(
        default=6,
        ge=0,
        le=100,
        description="pool connections each process keeps checked out for the residents' "
        "one-statement reads and a filing's statements (PostgreSQL, not behind PgBouncer); "
        "at most half the pool, 0 turns it off",
    )
    filing_statements_in_flight: int = Field(
        default=1,
        ge=1,
        le=64,
        description="filing statements (each takes the day's counter row) in flight at once "
        "per process on PostgreSQL (behind PgBouncer, whole filing sessions); the rest wait "
        "in the process, in order, instead of on the row. Unset, `ydt serve` shares 2 among "
        "its workers (2 for one, 1 each for more)",
    )
    telemetry: bool = Field(
        default=False,
        description="FastAPI's OpenTelemetry spans and metrics, for an operator who has set "
        "up OpenTelemetry providers (opentelemetry-instrument); off, nothing is looked up "
        "per request",
    )
    reference_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        description="how long a process trusts its cached reference data before one cheap "
        "read of reference_version (seconds; 0 checks on every use)",
    )
    projector_in_app: bool = Field(
        default=True,
        description="run the statistics projector inside each app process too (several may "
        "run: they take turns); `ydt worker` always runs one. scripts/run.sh and "
        "docker-compose.yml turn it off, as their workers project; keep it on for a lone "
        "`ydt serve`",
    )
    # A batch costs a dozen statements whatever its size. Capped at 500, a
    # half second's events at 500 filings a second filled one batch and left
    # a handful for a second one at once; room for 2,000 takes them in one
    # (bench/README.md). The interval stays short: each batch is a burst of
    # CPU on the machine that serves the filings.
    projector_interval_seconds: float = Field(
        default=0.5, gt=0, le=60, description="how often the projector looks for new events"
    )
    projector_batch: int = Field(
        default=2000, ge=1, le=100000, description="events the projector applies per transaction"
    )
    projector_lag_warn_seconds: float = Field(
        default=30.0,
        gt=0,
        description="/readyz warns when the oldest event not yet in the statistics is older",
    )

    storage: Literal["local", "s3"] = Field(
        default="local", description="media storage: local (a folder) or s3 (MinIO / any S3)"
    )
    media_dir: Path = Field(
        default=Path("./var/media"), description="folder used by local media storage"
    )
    s3_endpoint: str = Field(default="127.0.0.1:9000", description="S3 server host:port")
    s3_access_key: str = Field(default="minioadmin", description="S3 access key")
    s3_secret_key: SecretStr = Field(default=SecretStr("minioadmin"), description="S3 secret key")
    s3_bucket: str = Field(
        default="yidiantong-media", description="S3 bucket for media; created on start"
    )
    s3_secure: bool = Field(default=False, description="talk to the S3 server over HTTPS")
    s3_region: str = Field(default="us-east-1", description="S3 region")
    # Host the phone must use for presigned URLs when it differs from the
    # internal endpoint (MinIO behind a reverse proxy / public domain).
    s3_public_endpoint: str | None = Field(
        default=None,
        description="host phones use for presigned URLs when it differs from YDT_S3_ENDPOINT, "
        "e.g. media.example.gov.cn (unset: YDT_S3_ENDPOINT)",
    )
    s3_part_size: int = Field(
        default=10 * 1024 * 1024, description="multipart upload part size to S3 (bytes)"
    )

    jwt_secret: SecretStr | None = Field(
        default=None,
        description="token signing key; REQUIRED outside the embedded default (the service "
        "refuses to start without it). Generate: "
        "python -c 'import secrets; print(secrets.token_urlsafe(48))'",
    )
    jwt_access_minutes: int = Field(default=30, description="access token lifetime (minutes)")
    jwt_refresh_days: int = Field(default=30, description="refresh token lifetime (days)")
    secret_file: Path = Field(
        default=Path("./var/jwt-secret"),
        description="where the embedded default keeps its generated signing key",
    )

    # Identity protection and keyed chains (issue 13; app/core/keys.py). Keys
    model_dir: Path = Field(
        default=Path("./var/models"),
        description="folder of the suggestion model files (ydt taxonomy retrain); rebuilt "
        "from shipped data if missing, so it may be an ephemeral volume",
    )
    # never live in the database: settings here, or files in key_dir.
    key_dir: Path = Field(
        default=Path("./var/keys"),
        description="folder of key files (identity-keys.json, chain.key, index.key): the "
        "embedded default generates them here; elsewhere they may be mounted here instead "
        "of set below",
    )
    identity_keys: SecretStr | None = Field(
        default=None,
        description="key-encryption keys sealing accusers' and anonymous filers' identity, "
        "'kid:secret,kid:secret' (first one active, the others still decrypt until "
        "`ydt keys retire`; secrets of 32+ characters); REQUIRED outside the embedded "
        "default unless key_dir/identity-keys.json exists. Generate: ydt keys generate",
    )
    chain_key: SecretStr | None = Field(
        default=None,
        description="key of the hash-chain links and of the commitments hashed into them "
        "(32+ characters; never change it: old links would no longer verify); REQUIRED "
        "outside the embedded default unless key_dir/chain.key exists",
    )
    index_key: SecretStr | None = Field(
        default=None,
        description="key of the blind indexes (a resident's own cases, search by phone, "
        "login by openid; 32+ characters, never change it); REQUIRED outside the embedded "
        "default unless key_dir/index.key exists",
    )
    # Audit checkpoints (issue 13; app/audit/): signed Merkle roots over every
    # chain head, so a deleted newest event, a dropped case or a consistently
    # recomputed chain is detected.
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description="Ed25519 key signing audit checkpoints (PEM, or the 32-byte seed as 64 "
        "hex digits); REQUIRED for `ydt worker` and `ydt audit checkpoint` outside the "
        "embedded default unless key_dir/audit-signing.pem exists. Generate: ydt audit keygen",
    )
    audit_public_keys: str | None = Field(
        default=None,
        description="public keys (64 hex each, comma-separated) `ydt audit verify` also "
        "trusts for checkpoint signatures: keys used before a change, or an auditor's copy "
        "on a machine without the signing key",
    )
    checkpoint_minutes: int = Field(
        default=60,
        ge=0,
        le=7 * 24 * 60,
        description="`ydt worker` makes one signed audit checkpoint per this many minutes "
        "(one per period across all workers); 0 turns periodic checkpoints off",
    )

    # Staff sign-in protection (app/staff/login.py explains the design). Failed
    # logins are counted per (username, IP), per username and per IP in fixed
    # windows; past a limit the answer stays the one uniform 401, but a correct
    # password from an IP the account signed in from before passes the
    # per-username and per-IP limits, so a stranger cannot lock a cadre out.
    login_window_seconds: int = Field(
        default=900,
        ge=60,
        le=86400,
        description="staff sign-in: failed logins are counted in windows of this many "
        "seconds, and a limit reached blocks for one window (every answer stays the "
        "same 401)",
    )
    login_max_failures_per_pair: int = Field(
        default=5,
        ge=1,
        description="failed logins of one username from one IP that block that pair",
    )
    login_max_failures_per_user: int = Field(
        default=20,
        ge=1,
        description="failed logins of one username from any IPs that block it from IPs "
        "it never signed in from (a known IP with the right password still passes)",
    )
    login_max_failures_per_ip: int = Field(
        default=30,
        ge=1,
        description="failed logins from one IP over all usernames that block it for "
        "accounts that never signed in from it (password spraying)",
    )
    login_max_failures_per_ip_minute: int = Field(
        default=30,
        ge=1,
        description="failed logins from one IP within a minute after which its attempts "
        "are refused for a minute without hashing (flood cap; successes never count)",
    )
    login_known_ip_days: int = Field(
        default=90,
        ge=1,
        description="an IP an account signed in from within this many days is known to it",
    )
    # X-Forwarded-For / X-Real-IP are believed only when the direct peer is one
    # of these (IPs or CIDRs, comma-separated); empty: never (app/core/ratelimit.py).
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="reverse proxies (IPs or CIDRs, comma-separated) whose "
        "X-Forwarded-For / X-Real-IP are believed; the client is then the right-most "
        "address that is not one of them. Empty: the TCP peer is the client, headers "
        "ignored. Behind nginx on this host: 127.0.0.1,::1",
    )

    wechat_api_base: str = Field(default=WECHAT_API, description="WeChat API base URL")
    wechat_appid: str | None = Field(
        default=None,
        description="mini-program AppID (login, subscribe messages, QR codes); unset: WeChat off",
    )
    wechat_secret: SecretStr | None = Field(default=None, description="mini-program AppSecret")
    wechat_timeout_seconds: float = Field(
        default=5.0, description="timeout of each WeChat API call (seconds); slower is a 503"
    )
    # Content security (WeChat msgSecCheck / mediaCheckAsync v2, app/moderation/).
    content_security_enabled: bool = Field(
        default=True,
        description="check residents' text and media with WeChat content security before "
        "staff see them; takes effect only when YDT_WECHAT_APPID is set (embedded default: off)",
    )
    wechat_message_token: SecretStr | None = Field(
        default=None,
        description="Token of the mini-program's message push (消息推送, plaintext or "
        "compatible mode): signs WeChat's calls to /api/v1/wechat/events; unset: every call "
        "there is refused",
    )
    content_check_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        le=30,
        description="timeout of a synchronous text check (msgSecCheck); slower is retried by "
        "the worker and the filing is accepted",
    )
    content_check_max_attempts: int = Field(
        default=8,
        ge=1,
        le=100,
        description="submissions of one text or media check before it is handed to staff review",
    )
    content_check_backoff_seconds: int = Field(
        default=60,
        ge=1,
        description="first retry delay of a failed content check (seconds); doubles each attempt",
    )
    content_check_result_minutes: int = Field(
        default=40,
        ge=31,
        description="a submitted media check with no pushed result after this many minutes is "
        "submitted again (WeChat promises the push within 30)",
    )
    content_check_video_frames: int = Field(
        default=4,
        ge=1,
        le=20,
        description="key frames of a video checked as images (its sound is checked as audio)",
    )
    wechat_standin: bool | None = Field(
        default=None,
        description="a built-in WeChat stand-in under /dev/wechat (login, subscribe messages, "
        "QR codes) so scripts/run.sh is walkable without a mini-program. Unset: on for the "
        "embedded default in development while WeChat is not configured and the public URL "
        "is loopback; true anywhere else (PostgreSQL, S3, production, a public URL that is "
        "not loopback) refuses to start",
    )
    dev_login_enabled: bool = Field(
        default=False,
        description="POST /auth/dev-login, a login that skips WeChat; refused in production",
    )

    # Request boundary (app/core/boundary.py): routes that take files declare larger caps.
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="largest request body (bytes) of any route that does not declare its own "
        "(media uploads: the per-kind limit; .xlsx import: 5 MB); larger is a 413",
    )

    # Media limits per kind (bytes); reported by GET /media/limits.
    media_max_image_bytes: int = Field(
        default=20 * 1024 * 1024, description="largest image upload (bytes)"
    )
    media_max_voice_bytes: int = Field(
        default=20 * 1024 * 1024, description="largest voice upload (bytes)"
    )
    media_max_video_bytes: int = Field(
        default=500 * 1024 * 1024, description="largest video upload (bytes)"
    )
    media_max_document_bytes: int = Field(
        default=20 * 1024 * 1024, description="largest PDF upload, staff only (bytes)"
    )
    media_ticket_seconds: int = Field(
        default=900, description="how long an upload ticket stays valid (seconds)"
    )
    media_link_seconds: int = Field(
        default=600, description="how long a media download link stays valid (seconds)"
    )
    media_grace_hours: int = Field(
        default=24,
        description="`ydt media cleanup` deletes uploads never attached after this many hours",
    )
    # Media content checks (app/media/probe.py): pixels are read from the
    # header before anything decodes; voice and video must decode, within limits.
    media_max_image_pixels: int = Field(
        default=40_000_000,
        gt=0,
        le=80_000_000,
        description="largest image (width × height) accepted; checked before decoding",
    )
    media_max_video_pixels: int = Field(
        default=4096 * 2304,
        gt=0,
        le=80_000_000,
        description="largest video frame (width × height) accepted",
    )
    media_max_voice_seconds: int = Field(
        default=600, gt=0, description="longest voice clip accepted (seconds)"
    )
    media_max_video_seconds: int = Field(
        default=300, gt=0, description="longest video accepted (seconds)"
    )
    media_derive_attempts: int = Field(
        default=3, ge=1, description="worker attempts to make a playable copy before giving up"
    )
    # Object storage calls (app/core/storage/s3.py): a frozen server must not
    # hold a request; past the deadline the answer is 503 with Retry-After.
    storage_deadline_seconds: float = Field(
        default=20.0,
        gt=0,
        description="overall deadline of one object-storage call (seconds); transfers get "
        "one more second per YDT_STORAGE_MIN_BYTES_PER_SECOND bytes moved",
    )
    storage_min_bytes_per_second: int = Field(
        default=1024 * 1024,
        gt=0,
        description="slowest transfer rate to object storage treated as alive (bytes/s)",
    )
    storage_connect_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="connecting to the S3 server, and sending one request body (one part)",
    )
    storage_read_timeout_seconds: float = Field(
        default=15.0, gt=0, description="waiting for each read from the S3 server (seconds)"
    )

    # QR posters: the mini-program page the code opens, and a CJK font for the
    # village name printed under it (found automatically when installed).
    wechat_qr_page: str = Field(
        default="pages/index/index", description="mini-program page a village QR code opens"
    )
    wechat_link_env: Literal["release", "trial", "develop"] = Field(
        default="release",
        description="mini-program version the resident site's open-in-WeChat link opens "
        "(URL Link env_version: release, trial or develop)",
    )
    miniprogram_name: str = Field(
        default="监督一点通",
        min_length=1,
        max_length=32,
        description="the mini-program's name as residents search for it in WeChat "
        "(the resident site's fallback text when no link can be made)",
    )
    qr_font: Path | None = Field(
        default=None,
        description="CJK TrueType font for QR posters and dossier PDFs "
        "(unset: found automatically when installed)",
    )

    # Workflow: warning-card thresholds (fraction of allowed time left), the
    # signatures that close a case, notification retries.
    card_yellow_fraction: float = Field(
        default=1 / 3,
        gt=0,
        lt=1,
        description="yellow card when at most this share of the allowed time is left",
    )
    card_orange_fraction: float = Field(
        default=1 / 6,
        gt=0,
        lt=1,
        description="orange card when at most this share of the allowed time is left",
    )
    signoff_slots: list[str] = Field(
        default=["complainant", "handler", "supervising_leader", "principal_leader"],
        description="the signatures (会签) that close a case, as a JSON list",
    )
    notify_max_attempts: int = Field(
        default=5, description="delivery attempts of a resident notice before it is dead-lettered"
    )
    notify_backoff_seconds: int = Field(
        default=60, description="first retry delay of a notice (seconds); doubles each attempt"
    )
    wechat_templates: dict[str, str] = Field(
        default_factory=dict,
        description="WeChat subscribe-message template id per notice kind, as a JSON object: "
        '{"filed": "ID", "accepted": "ID", "rejected": "ID", "replied": "ID", "resolved": "ID", '
        '"closed": "ID", "reopened": "ID", "rating_reminder": "ID"} (ids from the mini-program '
        "console, each template with the fields of YDT_WECHAT_TEMPLATE_FIELDS). A notice whose "
        "kind has no id here (or while WeChat is not configured) stays pending, is counted on "
        "/readyz and in the staff inbox, and goes out once it is configured",
    )
    wechat_template_fields: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_TEMPLATE_FIELDS.items()},
        description="each notice kind's template fields, as a JSON object kind -> {field key: "
        "slot}; slots: tracking_no (in a character_string: never cut), status (a phrase such "
        "as 已受理), unit and summary and tip (thing, ≤20 characters with an ellipsis), at "
        "(time), due (date). The default suits templates numbered as shown; change the keys "
        "to your templates' own",
    )
    # Satisfaction and callbacks (issue 6).
    rating_reminder_days: int = Field(
        default=3,
        ge=1,
        le=60,
        description="days after resolution before one reminder to rate goes to a resident "
        "who has not rated (once per handling round)",
    )
    reopen_on_unsatisfied: int = Field(
        default=1, ge=0, description="times an unsatisfied verdict reopens a case"
    )
    callback_fraction: float = Field(
        default=0.2, gt=0, le=1, description="share of a quarter's closed cases drawn for callbacks"
    )

    # Past one machine (docs/deployment.md): PgBouncer, a streaming replica.
    database_pgbouncer: bool = Field(
        default=False,
        description="the database URLs point at PgBouncer in transaction mode: asyncpg's "
        "and SQLAlchemy's prepared-statement caches are turned off and statement names made "
        "unique, since consecutive transactions may run on different server connections",
    )
    database_replica_url: str | None = Field(
        default=None,
        description="optional streaming replica (postgresql+asyncpg://...) for the staff "
        "queue, the ledger export and statistics; a staff member's reads stay on the primary "
        "until the replica has replayed their last write, and always when it is down or late",
    )
    database_replica_max_lag_seconds: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="reads fall back to the primary while the replica is this many seconds "
        "or more behind (0: only a replica that has replayed everything it received)",
    )
    notify_lease_seconds: int = Field(
        default=120,
        ge=2,
        le=3600,
        description="a worker's lease on the notices it claimed (seconds): a worker that dies "
        "mid-batch leaves them to another worker after this long",
    )

    redis_url: str | None = Field(
        default=None,
        description="shared store for several processes (rate limits, caches); unset: the database",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="public base URL of this service (QR codes, local media links); on the "
        "embedded default, unset means the host and port `ydt serve` binds",
    )
    timezone: str = Field(
        default="Asia/Shanghai", description="local time zone of deadlines and days"
    )
    tracking_prefix: str = Field(
        default="DZ",
        pattern=r"^[A-Z0-9]{1,12}$",
        description="prefix of tracking numbers (DZ20261124-000001): 1-12 capital letters or "
        "digits, so a tracking number always fits WeChat's 32-character field whole",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_json: bool = Field(default=True, description="log one JSON object per line")

    # Working-day calendar: warn in /readyz from this month of the year before
    # a year that neither the admin table nor chinese-calendar knows.
    calendar_warn_from_month: int = Field(
        default=12,
        ge=1,
        le=12,
        description="from this month on, /readyz warns when next year's holidays are missing",
    )

    # Staff console (/console): a browser session ends after this much
    # inactivity, and in any case this long after sign-in.
    console_idle_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="a staff console session ends after this many minutes of inactivity",
    )
    console_absolute_hours: int = Field(
        default=12,
        ge=1,
        le=24 * 30,
        description="a staff console session ends this many hours after sign-in in any case",
    )
    duplicate_window_days: int = Field(
        default=60,
        ge=1,
        le=365,
        description="duplicate hints and staff duplicate lists look this many days back "
        "(and forward, for staff) from the case or the filing",
    )
    duplicate_radius_m: int = Field(
        default=500,
        ge=10,
        le=20000,
        description="cases located within this many metres count as nearby for duplicates",
    )
    duplicate_threshold: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="text similarity (0-1) from which a case is a likely duplicate; "
        "`ydt duplicates evaluate` reports precision and recall at it",
    )

    # Open311 GeoReport v2 facade (/open311/v2): integrators file with an api key.
    open311_requests_per_hour: int = Field(
        default=120,
        ge=1,
        le=100_000,
        description="Open311 filings per hour per integrator api key, unless set on the key",
    )
    open311_reads_per_minute: int = Field(
        default=120,
        ge=1,
        le=100_000,
        description="Open311 GET requests per minute per client address",
    )
    open311_contact: str = Field(
        default="达州市纪委监委 监督一点通平台管理员",
        max_length=200,
        description="the contact line of the Open311 discovery document",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        """``10.0.0.0/8, 127.0.0.1`` in the environment; a list in code."""
        if isinstance(value, str):
            return [part for part in value.replace(",", " ").split() if part]
        return value

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.env == "production" and self.dev_login_enabled:
            raise ValueError(
                "YDT_DEV_LOGIN_ENABLED must not be set in production: it skips WeChat login."
            )
        return self

    @model_validator(mode="after")
    def _wechat_standin(self) -> Settings:
        """The stand-in answers any login code: only on a machine's own demo."""
        safe = (
            self.env != "production"
            and self.is_embedded
            and _loopback(self.public_base_url)
            and (self.wechat_api_base == WECHAT_API or _loopback(self.wechat_api_base))
        )
        if self.wechat_standin is None:
            self.wechat_standin = self.env == "development" and safe and not self.wechat_appid
        elif self.wechat_standin and not safe:
            raise ValueError(
                "YDT_WECHAT_STANDIN is refused here: the built-in WeChat stand-in logs anyone "
                "in, so it runs only on the embedded default (SQLite, local media, not "
                "production) with a loopback YDT_PUBLIC_BASE_URL."
            )
        if self.wechat_standin:
            if self.wechat_api_base == WECHAT_API:  # unset (or written as the default)
                self.wechat_api_base = self.public_base_url.rstrip("/") + "/dev/wechat"
            self.wechat_appid = self.wechat_appid or "wx-standin"
            self.wechat_secret = self.wechat_secret or SecretStr("standin-secret")
            if not self.wechat_templates:
                self.wechat_templates = {k: f"standin-{k}" for k in DEFAULT_TEMPLATE_FIELDS}
        return self

    @model_validator(mode="after")
    def _lease(self) -> Settings:
        """A notice's lease must outlast one send, or a slow send is sent twice."""
        if self.notify_lease_seconds <= self.wechat_timeout_seconds:
            raise ValueError(
                "YDT_NOTIFY_LEASE_SECONDS must be longer than YDT_WECHAT_TIMEOUT_SECONDS"
            )
        return self

    @model_validator(mode="after")
    def _replica(self) -> Settings:
        """A replica of what? Only a PostgreSQL primary has one."""
        if not self.database_replica_url:  # unset, or set empty in a compose file
            self.database_replica_url = None
            return self
        if not self.database_replica_url.startswith("postgresql"):
            raise ValueError("YDT_DATABASE_REPLICA_URL must be a postgresql+asyncpg:// URL")
        if self.is_sqlite:
            raise ValueError("YDT_DATABASE_REPLICA_URL needs a PostgreSQL YDT_DATABASE_URL")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def content_security(self) -> bool:
        """Whether residents' content goes through WeChat content security.

        Not with the built-in stand-in: it is no judge (it has no msgSecCheck
        or mediaCheckAsync), and the appid it fills in had switched the
        checks on, so every text on the embedded default was deferred as
        "WeChat unreachable" and every upload waited for a verdict that never
        came. The embedded default is off, as documented."""
        return (
            self.content_security_enabled
            and bool(self.wechat_appid and self.wechat_secret)
            and not self.wechat_standin
        )

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


# Filing statements in flight for the whole of one ``ydt serve``: one at the
# counter row and one ready behind it. More only wait on the row, each commit
# waking them all, and cost PostgreSQL CPU; fewer leave the row idle while the
# next statement is on its way (bench/README.md).
FILING_TURNS_PER_SERVE = 2


def filing_turns_per_process(workers: int) -> int:
    """``YDT_FILING_STATEMENTS_IN_FLIGHT`` for each of ``workers`` processes
    when it is not set."""
    return max(1, FILING_TURNS_PER_SERVE // max(1, workers))
