"""The citizen's verdict on a resolved complaint (满意 / 基本满意 / 不满意).

Intake records the rating and emits ``complaint.rated`` in the same transaction; routing,
the case owner, decides what follows (不满意 reopens the case within the policy's limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.intake.store import complaint_views, ratings, timeline
from yijian.bus.outbox import ServiceDatabase
from yijian.contracts.events import ComplaintRated

RatingValue = Literal["satisfied", "basically_satisfied", "unsatisfied"]
RATING_LABELS: dict[str, str] = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
}


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: RatingValue


class RatingRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Rated:
    rating: RatingValue
    reopen_expected: bool


class Ratings:
    def __init__(self, database: ServiceDatabase, max_reopens: int) -> None:
        self._database = database
        self._max_reopens = max_reopens

    async def rate(self, complaint_id: str, rating: RatingValue) -> Rated:
        try:
            async with self._database.transaction() as tx:
                view = (
                    await tx.connection.execute(
                        select(
                            complaint_views.c.status,
                            complaint_views.c.clock,
                            complaint_views.c.reopens,
                        ).where(complaint_views.c.complaint_id == complaint_id)
                    )
                ).first()
                if view is None:
                    raise RatingRefused(404, "no complaint with this id")
                if view.status != "resolved":
                    raise RatingRefused(
                        409, f"only a resolved complaint can be rated; this one is {view.status}"
                    )
                if await self._rated(tx.connection, complaint_id, view.clock):
                    raise RatingRefused(409, "this resolution has already been rated")
                reopen = rating == "unsatisfied" and view.reopens < self._max_reopens
                await tx.connection.execute(
                    insert(ratings).values(
                        complaint_id=complaint_id,
                        resolution=view.clock,
                        rating=rating,
                        rated_at=tx.now,
                    )
                )
                await tx.connection.execute(
                    insert(timeline).values(
                        complaint_id=complaint_id,
                        at=tx.now,
                        kind="rated",
                        text=self._note(rating, reopen, view.reopens),
                    )
                )
                await tx.emit(
                    ComplaintRated(complaint_id=complaint_id, rating=rating, rated_at=tx.now),
                    key=complaint_id,
                )
        except IntegrityError as error:  # the same resolution rated twice at once
            raise RatingRefused(409, "this resolution has already been rated") from error
        return Rated(rating, reopen)

    async def _rated(self, connection: AsyncConnection, complaint_id: str, resolution: int) -> bool:
        found = await connection.scalar(
            select(ratings.c.rating).where(
                ratings.c.complaint_id == complaint_id, ratings.c.resolution == resolution
            )
        )
        return found is not None

    def _note(self, rating: RatingValue, reopen: bool, reopens: int) -> str:
        label = RATING_LABELS[rating]
        if rating != "unsatisfied":
            return f"您的评价：{label}"
        if reopen:
            return f"您的评价：{label}，已申请重新办理"
        return f"您的评价：{label}。本诉求已重新办理{reopens}次，达到上限，不再重新办理"
