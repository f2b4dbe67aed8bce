"""Settings for every process, read from ``YIJIAN_*`` environment variables.

One ``Settings`` object is built per process by the composition root and handed down; nothing
else reads the environment.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("intake", "routing", "escalation", "notify")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YIJIAN_", extra="ignore")

    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, validation_alias=AliasChoices("PORT", "YIJIAN_PORT"))
    sla_policy: Path | None = None
    bus: Literal["embedded", "kafka"] = "embedded"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_client_id: str = "yijian"  # the service name is appended: yijian-routing-producer
    kafka_topic_prefix: str = ""  # e.g. "staging." when installations share a cluster
    kafka_topic_catalog: Path | None = None  # unset: deploy/kafka/topics.toml
    kafka_topic_profile: Literal["production", "local"] = "production"
    kafka_request_timeout_ms: int = Field(default=30_000, ge=1_000)
    # How long publish waits for Kafka's confirmation before the relay tries again later.
    kafka_delivery_timeout_ms: int = Field(default=60_000, ge=1_000)
    kafka_session_timeout_ms: int = Field(default=10_000, ge=2_000)
    # A stable name for this replica (a StatefulSet pod's name, "routing-0"): its consumers
    # join their groups as static members, so a restart within the session timeout takes its
    # partitions back without a rebalance. Unset: dynamic members, as Kafka's default.
    kafka_instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,100}$")

    # One database per service; unset means a SQLite file under data_dir.
    intake_database_url: str | None = None
    routing_database_url: str | None = None
    escalation_database_url: str | None = None
    notify_database_url: str | None = None
    eventlog_database_url: str | None = None

    # Where each service answers HTTP when they run as separate processes (``make up``);
    # unset in the all-in-one process, where they share one app.
    intake_url: str | None = None
    routing_url: str | None = None
    escalation_url: str | None = None
    notify_url: str | None = None

    # Signs staff bearer tokens. Unset in development: a random key is kept in data_dir.
    auth_secret: SecretStr | None = None
    # Keys that signed tokens before the current one, comma-separated: tokens they signed
    # stay valid until they expire, so a key can be rotated without signing everyone out.
    auth_previous_secrets: SecretStr | None = None
    staff_token_ttl_hours: int = 12
    # Staff sign-in: failures allowed per account and per client address within the window
    # before further attempts are refused with 429 until it has passed.
    login_failures_per_account: int = Field(default=5, ge=1)
    login_failures_per_ip: int = Field(default=20, ge=1)
    login_lockout_minutes: int = Field(default=15, ge=1)
    # Development only: seed one workbench user per org (password in the README).
    demo_users: bool = False
    # Signs the citizen's token that opens one complaint; same fallback as auth_secret.
    citizen_secret: SecretStr | None = None
    # The bearer token services use on each other's /internal/ routes; same fallback.
    internal_token: SecretStr | None = None
    # Seals the citizen's contact data (name, phone, address, email, openid) in intake's
    # database; same fallback. Rotating: set the new key here and the old one in
    # contact_previous_keys (comma-separated); rows are resealed when intake starts.
    contact_key: SecretStr | None = None
    contact_previous_keys: SecretStr | None = None

    # Abuse limits on new complaints, counted in intake's database so every replica and a
    # restart see the same counts; 0 turns one off. Addresses in submission_limit_exempt
    # (this machine: scripts, the simulator, benchmarks) skip the per-address limit.
    submissions_per_ip_per_hour: int = Field(default=30, ge=0)
    submissions_per_phone_per_day: int = Field(default=10, ge=0)
    submissions_per_openid_per_day: int = Field(default=10, ge=0)
    submission_limit_exempt: str = "127.0.0.0/8,::1/128"
    # Photos a complaint may carry, by count and by their total size.
    photos_per_complaint: int = Field(default=4, ge=1, le=20)
    photo_bytes_per_complaint: int = Field(default=12 * 1024 * 1024, ge=1024 * 1024)

    notify_webhook_url: str | None = None
    notify_webhook_secret: SecretStr | None = None
    notify_max_attempts: int = 6
    # SMS (webhook) and WeChat messages one citizen recipient gets per Beijing day; more
    # are recorded as suppressed, not sent. 0 means no cap.
    notify_citizen_messages_per_day: int = Field(default=10, ge=0)

    # The WeChat mini-program: sign-in (jscode2session) and subscribe messages. Off until
    # both the appid and its secret are set.
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_appid: str | None = None
    wechat_secret: SecretStr | None = None
    wechat_session_ttl_hours: int = Field(default=24, ge=1, le=24 * 30)
    wechat_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Subscribe-message templates (订阅消息模板 ids) for the three notices a citizen gets.
    wechat_template_assigned: str | None = None
    wechat_template_replied: str | None = None
    wechat_template_resolved: str | None = None
    wechat_message_page: str = "pages/complaint/detail"
    wechat_miniprogram_state: Literal["formal", "trial", "developer"] = "formal"
    # Message push (消息推送): the token set in the mini-program's console; unset, it is off.
    wechat_push_token: SecretStr | None = None

    # Open311 GeoReport v2: the api_keys clients must send to POST requests, comma-separated.
    open311_api_keys: SecretStr | None = None

    # Tests of the production shape only: read "now" from this file (see yijian.clock).
    clock_file: Path | None = None

    consumer_max_attempts: int = 5
    # Notify, escalation and intake's status view gather what arrives within this many
    # milliseconds into one batch after each batch they apply (yijian.bus.consumer); routing
    # assigns at once. 0 applies every event as it comes. 150 rather than 50 put submit →
    # assigned at 200/s in `yijian run` from a p50 of 26–40 ms to 16–21 (docs/performance.md).
    consumer_gather_ms: int = Field(default=150, ge=0, le=10_000)
    deadline_poll_seconds: float = 0.5
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"

    def database_url(self, service: str) -> str:
        explicit: str | None = getattr(self, f"{service}_database_url")
        if explicit:
            return explicit
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / f'{service}.db'}"

    def auth_secret_value(self) -> str:
        """The staff-token key (``YIJIAN_AUTH_SECRET``)."""
        return self.secret_value("auth_secret")

    def auth_previous_values(self) -> list[str]:
        """Earlier staff-token keys still accepted (``YIJIAN_AUTH_PREVIOUS_SECRETS``)."""
        return split_secrets(self.auth_previous_secrets)

    def secret_value(self, name: str) -> str:
        """A secret setting: from the environment, else one kept in the data folder.

        Keeping a generated key on disk means tokens survive a restart of ``make run``
        without anyone putting a secret in the repository. ``name`` is the field's name,
        e.g. ``citizen_secret``; its file is ``data_dir/citizen-secret``.
        """
        explicit = getattr(self, name)
        if not isinstance(explicit, SecretStr | None):
            raise TypeError(f"{name} is not a secret setting")
        if explicit is not None:
            return explicit.get_secret_value()
        path = self.data_dir / name.replace("_", "-")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()


def split_secrets(value: SecretStr | None) -> list[str]:
    """A comma-separated secret setting as its parts, blanks dropped."""
    if value is None:
        return []
    return [part.strip() for part in value.get_secret_value().split(",") if part.strip()]
