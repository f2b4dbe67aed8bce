"""Wires the intake service: its database, its consumer and its routes."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from fastapi import APIRouter
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.api import build_router
from services.intake.citizen_access import CitizenAccess, CitizenTokens, LookupGuard
from services.intake.citizen_api import build_citizen_router
from services.intake.contacts import ContactSeal, reseal
from services.intake.handlers import HANDLERS
from services.intake.internal_api import build_internal_router
from services.intake.open311 import OPEN311_PREFIX, build_open311_router
from services.intake.open311_catalog import Catalog
from services.intake.photos import PHOTO_REQUEST_BYTES, PhotoFiles, Photos
from services.intake.rating import Ratings
from services.intake.store import metadata
from services.intake.submission import Submissions
from services.intake.submission_limits import SubmissionLimits
from services.intake.web import build_web_router
from services.intake.wechat import WeChatMiniProgram
from services.intake.wechat_push import build_push_router
from yijian.bus.consumer import Consumer
from yijian.bus.outbox import ServiceDatabase
from yijian.bus.protocol import EventLog
from yijian.clock import Clock
from yijian.contracts.events import TOPIC_CASES, TOPIC_DEADLINES
from yijian.migrate import migrate
from yijian.policy import SlaPolicy
from yijian.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
SWEEP_EVERY = timedelta(hours=1)


def _split_keys(keys: SecretStr | None) -> list[str]:
    if keys is None:
        return []
    return [key.strip() for key in keys.get_secret_value().split(",") if key.strip()]


class IntakeService:
    name = "intake"

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        event_log: EventLog,
        engine: AsyncEngine,
        policy: SlaPolicy,
    ) -> None:
        self.database = ServiceDatabase(engine, metadata, producer=self.name, clock=clock)
        self._swept_at: datetime | None = None
        self.consumers = [
            Consumer(
                name="intake.status",
                database=self.database,
                event_log=event_log,
                topics=[TOPIC_CASES, TOPIC_DEADLINES],
                handlers=HANDLERS,
                max_attempts=settings.consumer_max_attempts,
                gather_seconds=settings.consumer_gather_ms / 1000,
            )
        ]
        self.seal = ContactSeal.from_settings(settings)
        self.limits = SubmissionLimits.from_settings(settings, settings.secret_value("contact_key"))
        self.submissions = Submissions(
            self.database, policy.categories_named(), self.seal, self.limits
        )
        # Channels add their own proof of ownership: citizen_access.add(credential).
        self.citizen_access = CitizenAccess(CitizenTokens(settings.secret_value("citizen_secret")))
        self.photos = Photos(
            self.database,
            PhotoFiles(settings.data_dir / "photos"),
            max_count=settings.photos_per_complaint,
            max_total_bytes=settings.photo_bytes_per_complaint,
        )
        # Routes whose bodies may exceed the app-wide limit (path pattern → bytes).
        self.larger_bodies = {r"/api/v1/complaints/[^/]+/photos": PHOTO_REQUEST_BYTES}
        # Routes other sites' clients may post to: Open311 proves itself with an api_key,
        # never with a cookie, so a post from another site's page forges nothing.
        self.open_to_other_sites = (OPEN311_PREFIX,)
        # A plain router to hold the others: FastAPI prefixes whatever is included into a
        # router with that router's own prefix, so nothing may be included into /api/v1's.
        self.router = APIRouter()
        self.router.include_router(
            build_router(self.database, self.submissions, self.citizen_access, self.photos)
        )
        self.router.include_router(
            build_citizen_router(
                self.citizen_access,
                self.photos,
                Ratings(self.database, policy.max_reopens),
                LookupGuard(self.database, settings.secret_value("contact_key")),
                policy.categories_named(),
                self.seal,
            )
        )
        self.router.include_router(
            build_internal_router(self.photos, settings.secret_value("internal_token"), self.seal)
        )
        self.router.include_router(build_web_router())
        self.router.include_router(
            build_open311_router(
                self.database,
                self.submissions,
                Catalog(policy.categories_named()),
                _split_keys(settings.open311_api_keys),
            )
        )
        self.wechat = WeChatMiniProgram(database=self.database, settings=settings, seal=self.seal)
        self.submissions.add(self.wechat)
        self.citizen_access.add(self.wechat)
        self.router.include_router(self.wechat.router())
        self.router.include_router(self.wechat.internal_router())
        push_token = settings.wechat_push_token
        self.router.include_router(
            build_push_router(push_token.get_secret_value() if push_token else None, clock)
        )

    async def prepare(self) -> None:
        await migrate(self.database.engine, self.database.metadata, MIGRATIONS)
        # Rows from before sealing, or under a key since rotated, move to the current key.
        await reseal(self.database.engine, self.seal)

    async def tick(self) -> int:
        now = self.database.clock.now()
        if self._swept_at is not None and now - self._swept_at < SWEEP_EVERY:
            return 0
        # Old limit counters only take room; once an hour is plenty to keep them few.
        self._swept_at = now
        async with self.database.transaction() as tx:
            await self.limits.sweep(tx.connection, now)
        return 0

    async def close(self) -> None:
        await self.submissions.close()
        await self.wechat.close()

    async def observe(self) -> None:
        return None
