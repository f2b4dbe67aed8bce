"""The intake baseline: a bare FastAPI endpoint taking intake's own request model, storing nothing.

It answers the way intake does (201, a Location, the same response model) and is served the
way ``yijian serve`` serves a service (one uvicorn worker, same log level), so the difference
between the two is what yijian does with a complaint: storage, outbox, middleware.

    python -m bench.baseline_app --port 8123
"""

from __future__ import annotations

import argparse
import secrets
from uuid import uuid4

import uvicorn
from fastapi import FastAPI, Response, status

from services.intake.api import SubmittedOut
from services.intake.domain import ComplaintIn
from yijian.http import NO_OPENTELEMETRY


def create_baseline_app() -> FastAPI:
    app = FastAPI(title="intake baseline", telemetry=NO_OPENTELEMETRY)

    @app.post("/api/v1/complaints", status_code=status.HTTP_201_CREATED)
    async def submit_complaint(body: ComplaintIn, response: Response) -> SubmittedOut:
        complaint_id = uuid4().hex
        url = f"/api/v1/complaints/{complaint_id}"
        response.headers["Location"] = url
        return SubmittedOut(
            id=complaint_id,
            tracking_no="GZ000000-000000",
            status="submitted",
            url=url,
            # Random, of a real token's size: the answer carries as many bytes as intake's.
            citizen_token=secrets.token_urlsafe(64),
        )

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    uvicorn.run(
        create_baseline_app(),
        host="127.0.0.1",
        port=port,
        log_level="info",
        access_log=False,  # as `yijian serve` runs: the same work per request but storage
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
