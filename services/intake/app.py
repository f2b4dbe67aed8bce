"""Wires the intake service: its database, its consumer and its routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.api import build_router
from services.intake.citizen_access import CitizenAccess, CitizenTokens, LookupGuard
from services.intake.citizen_api import build_citizen_router
from services.intake.handlers import HANDLERS
from services.intake.internal_api import build_internal_router
from services.intake.open311 import build_open311_router
from services.intake.open311_catalog import Catalog
from services.intake.photos import PHOTO_REQUEST_BYTES, PhotoFiles, Photos
from services.intake.rating import Ratings
from services.intake.store import metadata
from services.intake.submission import Submissions
from services.intake.web import build_web_router
from services.intake.wechat import WeChatMiniProgram
from yijian.bus.consumer import Consumer
from yijian.bus.outbox import ServiceDatabase
from yijian.bus.protocol import EventLog
from yijian.clock import Clock
from yijian.contracts.events import TOPIC_CASES, TOPIC_DEADLINES
from yijian.migrate import migrate
from yijian.policy import SlaPolicy
from yijian.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


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
        self.consumers = [
            Consumer(
                name="intake.status",
                database=self.database,
                event_log=event_log,
                topics=[TOPIC_CASES, TOPIC_DEADLINES],
                handlers=HANDLERS,
                max_attempts=settings.consumer_max_attempts,
            )
        ]
        self.submissions = Submissions(self.database, policy.categories_named())
        # Channels add their own proof of ownership: citizen_access.add(credential).
        self.citizen_access = CitizenAccess(CitizenTokens(settings.secret_value("citizen_secret")))
        self.photos = Photos(self.database, PhotoFiles(settings.data_dir / "photos"))
        # Routes whose bodies may exceed the app-wide limit (path pattern → bytes).
        self.larger_bodies = {r"/api/v1/complaints/[^/]+/photos": PHOTO_REQUEST_BYTES}
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
                LookupGuard(clock),
                policy.categories_named(),
            )
        )
        self.router.include_router(
            build_internal_router(self.photos, settings.secret_value("internal_token"))
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
        self.wechat = WeChatMiniProgram(database=self.database, settings=settings)
        self.submissions.add(self.wechat)
        self.citizen_access.add(self.wechat)
        self.router.include_router(self.wechat.router())
        self.router.include_router(self.wechat.internal_router())

    async def prepare(self) -> None:
        await migrate(self.database.engine, self.database.metadata, MIGRATIONS)

    async def tick(self) -> int:
        return 0

    async def close(self) -> None:
        await self.wechat.close()

    async def observe(self) -> None:
        return None
