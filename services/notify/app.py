"""Wires the notify service: its database, its consumer, its channels and its routes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify.api import build_router
from services.notify.channels import LOG, WEBHOOK, Channel, LogChannel, WebhookChannel
from services.notify.directory import seed_directory
from services.notify.handlers import NotifyHandlers
from services.notify.sending import Sender
from services.notify.store import metadata
from services.notify.wechat import WECHAT, CitizenOpenids, WeChatSubscribeChannel
from yijian.bus.consumer import Consumer
from yijian.bus.outbox import ServiceDatabase
from yijian.bus.protocol import EventLog
from yijian.clock import Clock
from yijian.contracts.events import TOPIC_CASES, TOPIC_INTAKE
from yijian.jurisdiction import Jurisdiction
from yijian.migrate import migrate
from yijian.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def _wechat_channel(settings: Settings, clock: Clock) -> WeChatSubscribeChannel | None:
    """Subscribe messages to mini-program citizens, when the mini-program is configured."""
    if not settings.wechat_appid or settings.wechat_secret is None:
        return None
    return WeChatSubscribeChannel(
        api_base=settings.wechat_api_base,
        appid=settings.wechat_appid,
        secret=settings.wechat_secret.get_secret_value(),
        templates={
            "citizen_assigned": settings.wechat_template_assigned,
            "citizen_replied": settings.wechat_template_replied,
            "citizen_resolved": settings.wechat_template_resolved,
        },
        page=settings.wechat_message_page,
        state=settings.wechat_miniprogram_state,
        clock=clock,
        # Connected in process by the all-in-one app when no intake address is set.
        recipients=CitizenOpenids(settings.secret_value("internal_token"), settings.intake_url),
    )


class NotifyService:
    name = "notify"

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        event_log: EventLog,
        engine: AsyncEngine,
        jurisdiction: Jurisdiction,
        channels: Mapping[str, Channel] | None = None,
    ) -> None:
        self.database = ServiceDatabase(engine, metadata, producer=self.name, clock=clock)
        self._jurisdiction = jurisdiction
        # Every new recipient gets the webhook once one is configured; the log otherwise,
        # so development needs no gateway and still shows each message.
        self.default_channel = WEBHOOK if settings.notify_webhook_url else LOG
        self._webhook: WebhookChannel | None = None
        self.wechat = _wechat_channel(settings, clock)
        if channels is None:
            channels = self._channels_from(settings, clock)
        handlers = NotifyHandlers(
            citizen_channel=self.default_channel,
            wechat_channel=WECHAT if WECHAT in channels else None,
        )
        self.consumers = [
            Consumer(
                name="notify",
                database=self.database,
                event_log=event_log,
                topics=[TOPIC_INTAKE, TOPIC_CASES],
                handlers=handlers.by_type(),
                max_attempts=settings.consumer_max_attempts,
                gather_seconds=settings.consumer_gather_ms / 1000,
            )
        ]
        self._sender = Sender(
            database=self.database,
            channels=channels,
            max_attempts=settings.notify_max_attempts,
            citizen_daily_cap=settings.notify_citizen_messages_per_day,
            capped_channels={WEBHOOK, WECHAT},
        )
        self.router = build_router(self.database)

    def _channels_from(self, settings: Settings, clock: Clock) -> dict[str, Channel]:
        channels: dict[str, Channel] = {LOG: LogChannel()}
        if self.wechat is not None:
            channels[WECHAT] = self.wechat
        if settings.notify_webhook_url:
            if settings.notify_webhook_secret is None:
                # Refuse to start rather than send unsigned notices nobody can authenticate.
                raise ValueError("YIJIAN_NOTIFY_WEBHOOK_SECRET is required with a webhook URL")
            self._webhook = WebhookChannel(
                url=settings.notify_webhook_url,
                secret=settings.notify_webhook_secret.get_secret_value().encode("utf-8"),
                clock=clock,
            )
            channels[WEBHOOK] = self._webhook
        return channels

    async def prepare(self) -> None:
        await migrate(self.database.engine, self.database.metadata, MIGRATIONS)
        async with self.database.transaction() as tx:
            await seed_directory(tx.connection, self._jurisdiction, self.default_channel)

    async def tick(self) -> int:
        return await self._sender.send_due()

    async def close(self) -> None:
        if self.wechat is not None:
            await self.wechat.close()
        if self._webhook is not None:
            await self._webhook.close()

    async def observe(self) -> None:
        return None
