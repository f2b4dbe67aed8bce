"""The operator's view of the delivery log, and the retry button for dead letters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from services.notify import delivery_log
from services.notify.delivery_log import DeliveryRecord
from services.notify.store import DeliveryStatus
from yijian.bus.outbox import ServiceDatabase
from yijian.db import reading

MAX_LIMIT = 500


def build_router(database: ServiceDatabase) -> APIRouter:
    router = APIRouter(prefix="/api/v1/notify", tags=["notify"])

    @router.get("/deliveries")
    async def list_deliveries(
        complaint_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        status: Annotated[DeliveryStatus | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    ) -> list[DeliveryRecord]:
        """Newest first, so an operator sees what just happened without paging."""
        async with reading(database.engine) as connection:
            records = await delivery_log.list_deliveries(
                connection, complaint_id=complaint_id, status=status, limit=limit
            )
        return records

    @router.post(
        "/deliveries/{delivery_id}/retry",
        responses={404: {"description": "No such delivery"}, 409: {"description": "Not dead"}},
    )
    async def retry_delivery(
        # Bounded as the database's 64-bit ids are: a larger number is a 422, not an overflow.
        delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    ) -> DeliveryRecord:
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
        return record

    return router
