"""Typed settings, built once in an entry point (CLI, web app factory, tests) and passed down.

Sources, highest first: keyword arguments, ``COUNTYLAB_*`` environment variables, a TOML
config file (``COUNTYLAB_CONFIG`` or ``--config``), defaults.  Nothing below the entry
points reads the environment.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    """Every setting of the lab. Each field is documented in docs/reference/settings.md."""

    model_config = SettingsConfigDict(env_prefix="COUNTYLAB_", extra="forbid", validate_default=True)

    config_file: Path | None = Field(default=None, description="Optional TOML file with these settings.")
    data_dir: Path = Field(default=Path("./lab-data"), description="Where the lab keeps all its data.")
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the metadata store; empty means SQLite in data_dir.",
    )
    host: str = Field(default="127.0.0.1", description="Address the web server listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the web server listens on.")
    default_lang: str = Field(default="zh-CN", description="UI language when the user chose none.")
    county_name: str = Field(default="示范县", description="Name of the county shown in the UI.")
    session_hours: int = Field(default=12, ge=1, description="Lifetime of a web login session.")
    token_days: int = Field(default=90, ge=1, description="Default lifetime of a new API token.")
    login_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed logins to one account within login_window_s before it is locked for "
        "login_lockout_s (audited as auth.lockout); a successful login resets the count.",
    )
    login_address_max_failures: int = Field(
        default=30,
        ge=1,
        description="Failed logins from one client address within login_window_s (any accounts) "
        "before that address is refused for login_lockout_s (audited as auth.lockout).",
    )
    login_window_s: int = Field(
        default=900, ge=1, description="Window in which failed logins are counted, in seconds."
    )
    login_lockout_s: int = Field(
        default=900, ge=1, description="How long a locked account or address is refused, in seconds."
    )
    cookie_secure: bool = Field(default=False, description="Send cookies only over HTTPS.")
    strict_audit: bool = Field(
        default=False,
        description="Fail any state-changing request that wrote no audit event (tests turn it on).",
    )
    upload_max_mb: int = Field(default=4096, ge=1, description="Largest accepted upload, in MiB.")
    push_summary_period_s: float = Field(
        default=600,
        ge=1,
        le=86400,
        description="Feed pushes (the lab's own sources, such as the demo feeds) are audited as one "
        "dataset.push_summary event per dataset per period of this many seconds; pushes by people stay "
        "individual events.",
    )
    body_max_mb: float = Field(
        default=8,
        gt=0,
        description="Largest request body of JSON and form routes, in MiB (dataset uploads and pushes "
        "have upload_max_mb, job code body_code_max_mb); refused with 413 while it streams in.",
    )
    body_code_max_mb: float = Field(
        default=24,
        gt=0,
        description="Largest request body of a job submission (the code archive), in MiB.",
    )
    check_time_s: float = Field(
        default=120,
        gt=0,
        description="Wall-clock limit of the airlock's check worker per request; over it the request "
        "is returned with the rule check_failed_to_run.",
    )
    check_memory_mb: int = Field(
        default=2048,
        ge=64,
        description="Memory the airlock's check worker may add (RLIMIT_AS) while parsing a request's files.",
    )
    job_workers: int = Field(
        default=2, ge=1, le=256, description="Sandbox jobs run at once by this server's local executor."
    )
    executor: Literal["local", "ray"] = Field(
        default="local",
        description="Where sandbox jobs run: local worker threads, or a Ray cluster (ray start --head).",
    )
    sandbox_user: str = Field(
        default="countylab-sandbox",
        description="Host user that sandbox jobs and model workers run as when the lab runs as root "
        "(created by scripts/system-deps.sh; never root, never the lab's own user).",
    )
    job_outbox_mb: int = Field(
        default=512,
        ge=1,
        description="Outbox quota of one job action, in MiB, enforced while it runs (a capped tmpfs "
        "that also counts toward the action's memory limit).",
    )
    job_outbox_files: int = Field(
        default=2000, ge=1, description="Outbox quota of one job action: files and folders it may write."
    )
    dp_query_workers: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Query worker processes of the DP gateway (数据黑匣); each answers one query at a time.",
    )
    dp_project_concurrency: int = Field(
        default=2,
        ge=1,
        le=256,
        description="DP queries one project may have running at once; more are refused (429) at once.",
    )
    dp_rate_per_minute: int = Field(
        default=30,
        ge=1,
        le=100_000,
        description="DP queries one analyst may start per minute (token bucket); more get 429 + Retry-After.",
    )
    dp_wall_clock_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="One wall clock per DP query request (all its statements together), in seconds.",
    )
    dp_max_estimated_rows: int = Field(
        default=2_000_000_000,
        ge=1,
        description="Refuse a DP query before any charge when its estimated joined rows exceed this.",
    )
    dp_budget_period: Literal["month", "quarter", "year"] = Field(
        default="month",
        description="Renewal period of project privacy budgets; what was spent renews at each boundary.",
    )
    dp_memory_limit: str = Field(
        default="640MB",
        pattern=r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|KiB|MiB|GiB)$",
        description=(
            "DuckDB memory limit of each DP query worker (数据黑匣), preparation included; larger "
            "work spills into data_dir/prepared/tmp, never elsewhere."
        ),
    )
    dp_threads: int = Field(default=2, ge=1, le=256, description="DuckDB threads of each DP query worker.")
    database_admin_url: str = Field(
        default="",
        description="SQLAlchemy URL of the owner role that runs migrations (PostgreSQL); empty means "
        "database_url. Serve with database_url naming an app role without DDL rights.",
    )
    audit_key_file: Path | None = Field(
        default=None,
        description="Ed25519 private key signing audit checkpoints, created 0600 on first use; empty "
        "means data_dir/audit/checkpoint.key. Move it where the database owner cannot read it.",
    )
    audit_public_key: str = Field(
        default="",
        description="Hex Ed25519 public key that `audit verify` trusts; empty means the .pub file "
        "beside audit_key_file. Pin it so that a replaced key file is noticed.",
    )
    audit_witness_dir: Path | None = Field(
        default=None,
        description="Append-only folder getting one signed JSON line per audit checkpoint, one file a "
        "day; empty means data_dir/audit-witness. Put it where the database owner cannot rewrite it.",
    )
    audit_checkpoint_interval_s: float = Field(
        default=300, gt=0, description="Seconds between audit checkpoints (written only when the head moved)."
    )
    notify_smtp_host: str = Field(
        default="", description="SMTP server for notification e-mails; empty: no e-mail is sent."
    )
    notify_smtp_port: int = Field(default=25, ge=1, le=65535, description="Port of the SMTP server.")
    notify_smtp_security: Literal["none", "starttls", "ssl"] = Field(
        default="starttls", description="SMTP transport security: none, STARTTLS or implicit TLS (ssl)."
    )
    notify_smtp_user: str = Field(default="", description="SMTP login name; empty: no login.")
    notify_smtp_password_file: Path | None = Field(
        default=None, description="File holding the SMTP password (kept out of the settings)."
    )
    notify_smtp_from: str = Field(
        default="countylab@localhost", description="From address of notification e-mails."
    )
    notify_webhook_url: str = Field(
        default="",
        description="URL of the county messaging platform: each notification is POSTed there as JSON "
        "(signed with HMAC-SHA256); empty: no webhook.",
    )
    notify_webhook_secret_file: Path | None = Field(
        default=None, description="File holding the webhook's HMAC-SHA256 signing secret."
    )
    notify_public_url: str = Field(
        default="",
        description="Address of the lab as users open it (https://lab.example.gov.cn), for links in "
        "e-mails and webhook messages; empty: links are paths only.",
    )
    notify_max_attempts: int = Field(
        default=8, ge=1, le=100, description="Delivery attempts (e-mail, webhook) before one is given up."
    )
    notify_interval_s: float = Field(
        default=5.0, gt=0, description="Seconds between passes of the notification delivery service."
    )

    @field_validator("default_lang")
    @classmethod
    def _known_lang(cls, v: str) -> str:
        if v not in ("zh-CN", "en"):
            raise ValueError("default_lang must be zh-CN or en")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlFromSetting(settings_cls, init_settings, env_settings))

    # -- derived values -------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{(self.data_dir / 'countylab.db').resolve()}"

    @property
    def warehouse_dir(self) -> Path:
        return self.data_dir / "warehouse"

    @property
    def seed_dir(self) -> Path:
        return self.data_dir / "seed"


class _TomlFromSetting(PydanticBaseSettingsSource):
    """Reads the TOML file named by ``config_file`` (from init kwargs or the environment)."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._init = init_settings
        self._env = env_settings

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = self._init().get("config_file") or self._env().get("config_file")
        if not path:
            return {}
        if not Path(path).is_file():
            raise ValueError(f"config file not found: {path}")
        values = TomlConfigSettingsSource(self.settings_cls, toml_file=Path(path))()
        for key in RETIRED_SETTINGS & values.keys():  # an upgraded lab's file still names them
            logging.getLogger("countylab.config").warning(
                "setting %r in %s does nothing any more and is ignored; delete it", key, path
            )
            del values[key]
        return values


#: settings that older versions had; a config file naming one still loads (with a warning),
#: while any other unknown key is refused so that a typo never goes unnoticed
RETIRED_SETTINGS = frozenset({"secret_key", "demo_feeds"})
