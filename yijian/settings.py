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
    staff_token_ttl_hours: int = 12

    notify_webhook_url: str | None = None
    notify_webhook_secret: SecretStr | None = None
    notify_max_attempts: int = 6

    consumer_max_attempts: int = 5
    deadline_poll_seconds: float = 0.5
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"

    def database_url(self, service: str) -> str:
        explicit: str | None = getattr(self, f"{service}_database_url")
        if explicit:
            return explicit
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / f'{service}.db'}"

    def auth_secret_value(self) -> str:
        """The staff-token key: from the environment, else one kept in the data folder.

        Keeping a generated key on disk means tokens survive a restart of ``make run``
        without anyone putting a secret in the repository.
        """
        if self.auth_secret is not None:
            return self.auth_secret.get_secret_value()
        path = self.data_dir / "auth-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()
