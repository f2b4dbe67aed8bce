"""The operator's view of the delivery log, and the retry button for dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel

from services.notify import delivery_log
from services.notify.delivery_log import DeliveryRecord
from services.notify.store import DeliveryStatus
from yijian.bus.outbox import ServiceDatabase

MAX_LIMIT = 500


class DeliveryView(BaseModel):
    id: int
    event_id: str
    complaint_id: str
    tracking_no: str
    recipient_key: str
    channel: str
    template: str
    text: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, record: DeliveryRecord) -> DeliveryView:
        return cls(
            id=record.id,
            event_id=record.event_id,
            complaint_id=record.complaint_id,
            tracking_no=record.tracking_no,
            recipient_key=record.recipient_key,
            channel=record.channel,
            template=record.template,
            text=record.text,
            status=record.status,
            attempts=record.attempts,
            next_attempt_at=record.next_attempt_at,
            last_error=record.last_error,
            created_at=record.created_at,
            sent_at=record.sent_at,
        )


def build_router(database: ServiceDatabase) -> APIRouter:
    router = APIRouter(prefix="/api/v1/notify", tags=["notify"])

    @router.get("/deliveries")
    async def list_deliveries(
        complaint_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        status: Annotated[DeliveryStatus | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    ) -> list[DeliveryView]:
        """Newest first, so an operator sees what just happened without paging."""
        async with database.engine.connect() as connection:
            records = await delivery_log.list_deliveries(
                connection, complaint_id=complaint_id, status=status, limit=limit
            )
        return [DeliveryView.of(record) for record in records]

    @router.post(
        "/deliveries/{delivery_id}/retry",
        responses={404: {"description": "No such delivery"}, 409: {"description": "Not dead"}},
    )
    async def retry_delivery(
        delivery_id: Annotated[int, Path(ge=1)],
    ) -> DeliveryView:
        """Put a dead delivery back in the queue; the next tick sends it."""
        async with database.transaction() as tx:
            requeued = await delivery_log.requeue_dead(tx.connection, delivery_id, tx.now)
            record = await delivery_log.get_delivery(tx.connection, delivery_id)
        if record is None:
            raise HTTPException(status_code=404, detail=f"no delivery {delivery_id}")
        if not requeued:
            raise HTTPException(
                status_code=409,
                detail=f"delivery {delivery_id} is {record.status.value}, only dead ones retry",
            )
        return DeliveryView.of(record)

    return router
