"""Open311 GeoReport v2 under ``/open311/v2/``: what other systems use to report and follow.

Every resource answers in ``.json`` and ``.xml``; every refusal is in the GeoReport error
format (``[{"code", "description"}]`` or ``<errors><error>…``) with the matching HTTP status.
``jurisdiction_id`` is accepted and ignored: this endpoint serves one county (瓜州县, 620922).

Extension: with ``extensions=true``, each request also carries ``extended_attributes``
(the convention of Chicago's and Boston's endpoints) with yijian's own state — the
accountable level, whether a higher level supervises it (督办) and by whom, whether it is
overdue. ``page`` and ``page_size`` page through GET requests (the most common extension).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import parse_qsl

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from services.intake.open311_catalog import Attribute, Catalog, Service
from services.intake.open311_form import new_request
from services.intake.open311_format import (
    Document,
    Format,
    Open311Error,
    error_response,
    parse_format,
    respond,
)
from services.intake.open311_requests import parse_query, request_document, select_requests
from services.intake.submission import Submissions, UnknownCategory
from services.intake.submission_limits import SubmissionLimited
from yijian.bus.outbox import ServiceDatabase
from yijian.db import reading

log = structlog.get_logger(__name__)

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-03-01T00:00:00+08:00"  # when this endpoint's documents last changed
_MAX_FIELDS = 40
OPEN311_PREFIX = "/open311/v2/"


def build_open311_router(
    database: ServiceDatabase, submissions: Submissions, catalog: Catalog, api_keys: list[str]
) -> APIRouter:
    router = APIRouter(prefix=OPEN311_PREFIX.rstrip("/"), tags=["open311"])

    @router.get("/discovery.{fmt}")
    async def discovery(fmt: str, request: Request) -> Response:
        """Service discovery: where the GeoReport v2 endpoint is and what it speaks."""

        async def answer(f: Format) -> Response:
            base = f"{request.base_url}open311/v2/"
            body: Document = {
                "changeset": CHANGESET,
                "contact": "瓜州县综治中心（县平台）",
                "key_service": "api_key 由县平台运维人员发放（POST requests 需要）",
                "endpoints": [
                    {
                        "specification": SPECIFICATION,
                        "url": base,
                        "changeset": CHANGESET,
                        "type": "production",
                        "formats": ["text/xml", "application/json"],
                    }
                ],
            }
            return respond(f, "discovery", None, body)

        return await _guarded(fmt, answer)

    @router.get("/services.{fmt}")
    async def service_list(fmt: str) -> Response:
        """The services on offer: one per complaint category."""

        async def answer(f: Format) -> Response:
            return respond(f, "services", "service", [_service(s) for s in catalog.services])

        return await _guarded(fmt, answer)

    @router.get("/services/{service_code}.{fmt}")
    async def service_definition(service_code: str, fmt: str) -> Response:
        """A service's extra fields (attributes)."""

        async def answer(f: Format) -> Response:
            service = catalog.get(service_code)
            if service is None:
                raise Open311Error(404, f"service_code {service_code[:40]!r} not found")
            body: Document = {
                "service_code": service.code,
                "attributes": [_attribute(a) for a in service.attributes],
            }
            return respond(f, "service_definition", None, body)

        return await _guarded(fmt, answer)

    @router.post("/requests.{fmt}")
    async def create_request(fmt: str, request: Request) -> Response:
        """Report a problem (form-encoded, with ``api_key``); answers the new request's id."""

        async def answer(f: Format) -> Response:
            fields = await _form(request)
            if not _known_key(fields.get("api_key", ""), api_keys):
                raise Open311Error(403, "invalid api_key: ask the county platform for one")
            new = new_request(fields, catalog)
            # The client is a server holding an api_key, often filing for many citizens
            # from one address: only the phone number given with each request is limited.
            try:
                receipt = await submissions.submit(new.complaint, None, new.contact)
            except SubmissionLimited as error:
                raise Open311Error(429, error.reason, error.retry_after) from error
            except UnknownCategory as error:  # the policy changed under a cached catalogue
                raise Open311Error(400, str(error)) from error
            notice = f"诉求已受理，编号{receipt.tracking_no}。"
            if not new.located:
                notice += "未提供坐标，由县平台确定承办村(社区)。"
            log.info("open311 request taken", complaint_id=receipt.complaint_id)
            body = [
                {
                    "service_request_id": receipt.complaint_id,
                    "service_notice": notice,
                    "account_id": None,
                }
            ]
            # 200 rather than 201: the spec names no status, and some clients test for 200.
            return respond(f, "service_requests", "request", body)

        return await _guarded(fmt, answer)

    @router.get("/requests.{fmt}")
    async def list_requests(fmt: str, request: Request) -> Response:
        """Requests by id, service, date and status: newest first, 90 days or 1000 at most."""

        async def answer(f: Format) -> Response:
            params = _params(request.query_params.multi_items())
            query = parse_query(params, catalog, database.clock.now())
            extensions = params.get("extensions", "").lower() == "true"
            async with reading(database.engine) as connection:
                rows = (await connection.execute(select_requests(query))).all()
            body = [request_document(row, catalog, extensions=extensions) for row in rows]
            return respond(f, "service_requests", "request", body)

        return await _guarded(fmt, answer)

    @router.get("/requests/{request_id}.{fmt}")
    async def get_request(request_id: str, fmt: str, request: Request) -> Response:
        """One request, as a list of one (as the spec has it)."""

        async def answer(f: Format) -> Response:
            params = _params(request.query_params.multi_items())
            extensions = params.get("extensions", "").lower() == "true"
            query = parse_query(
                {"service_request_id": request_id[:64]}, catalog, database.clock.now()
            )
            async with reading(database.engine) as connection:
                row = (await connection.execute(select_requests(query))).first()
            if row is None or row.id != request_id:
                raise Open311Error(404, "no service request with this id")
            body = [request_document(row, catalog, extensions=extensions)]
            return respond(f, "service_requests", "request", body)

        return await _guarded(fmt, answer)

    return router


async def _guarded(fmt: str, answer: Callable[[Format], Awaitable[Response]]) -> Response:
    """Run ``answer``; turn a refusal into the GeoReport error document in the asked format."""
    try:
        chosen = parse_format(fmt)
    except Open311Error as error:
        return error_response("json", error)
    try:
        return await answer(chosen)
    except Open311Error as error:
        return error_response(chosen, error)


async def _form(request: Request) -> dict[str, str]:
    """The POSTed fields (form-encoded, or multipart without files), over any query fields."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in {"application/x-www-form-urlencoded", "multipart/form-data", ""}:
        raise Open311Error(400, "send the fields form-encoded (application/x-www-form-urlencoded)")
    fields = _params(_strict_pairs(request.scope.get("query_string", b""), "the query string"))
    if kind == "application/x-www-form-urlencoded":
        fields.update(_params(_strict_pairs(await request.body(), "the form")))
    elif kind:
        try:
            form = await request.form(max_files=0, max_fields=_MAX_FIELDS)
        except Exception as error:  # malformed bodies, too many fields, file parts
            reason = getattr(error, "detail", None) or type(error).__name__
            raise Open311Error(
                400, f"the form could not be read ({reason}); send fields only, no files"
            ) from None
        items = form.multi_items()
        if any(isinstance(value, UploadFile) for _, value in items):
            raise Open311Error(400, "file uploads are not supported; media_url is ignored")
        fields.update(_params((name, str(value)) for name, value in items))
    return fields


def _strict_pairs(encoded: bytes, where: str) -> list[tuple[str, str]]:
    """Percent-encoded name=value pairs, decoded as UTF-8 or refused.

    Starlette's own parser turns bytes that are not UTF-8 (half a surrogate pair encoded
    on its own among them) into U+FFFD without a word; what people type must be stored as
    sent or refused with a reason (yijian/text.py), so they are refused here.
    """
    try:
        text = encoded.decode("ascii")
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise Open311Error(
            400, f"{where} is not percent-encoded UTF-8: encode each field's text as UTF-8"
        ) from None


def _params(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The first value of each field; more fields than any form has is refused."""
    fields: dict[str, str] = {}
    for count, (name, value) in enumerate(items, start=1):
        if count > _MAX_FIELDS:
            raise Open311Error(400, f"more than {_MAX_FIELDS} fields")
        fields.setdefault(name, value)
    return fields


def _known_key(given: str, keys: list[str]) -> bool:
    # Compare with every key, in constant time, so timing tells nothing about any of them.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given.encode(), key.encode())
    return matched and bool(given)


def _service(service: Service) -> Document:
    return {
        "service_code": service.code,
        "service_name": service.name,
        "description": service.description,
        "metadata": service.metadata,
        "type": "realtime",
        "keywords": service.category,
        "group": service.group,
    }


def _attribute(attribute: Attribute) -> Document:
    return {
        "variable": attribute.variable,
        "code": attribute.code,
        "datatype": attribute.datatype,
        "required": attribute.required,
        "datatype_description": attribute.datatype_description,
        "order": attribute.order,
        "description": attribute.description,
        "values": [{"key": v.key, "name": v.name} for v in attribute.values],
    }
