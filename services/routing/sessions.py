"""Signing in and out of the workbench, and the check every staff route runs.

A sign-in opens a row in ``staff_sessions`` and hands out a token naming it: in the body for
API clients, and as an ``HttpOnly``, ``SameSite=Strict`` cookie for the browser. Signing
out ends the row, so the token stops working before it expires; so does disabling the user.
Tokens minted without a sign-in (``yijian staff token``, for scripts) have no session row
and live until they expire.
"""

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from secrets import token_urlsafe
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, select, update

from services.routing.access import org_ref
from services.routing.audit import Actor, AuditLog, request_id
from services.routing.sign_in_guard import SignInGuard
from services.routing.store import staff_sessions, staff_users
from services.routing.users import (
    MAX_PASSWORD_LENGTH,
    USERNAME_PATTERN,
    AccountError,
    StaffAccount,
    StaffDirectory,
)
from yijian.auth import SESSION_COOKIE, StaffTokens, StaffUser
from yijian.bus.outbox import ServiceDatabase
from yijian.db import reading
from yijian.http import served_over_tls
from yijian.jurisdiction import Jurisdiction

StaffCheck = Callable[..., Awaitable[StaffUser]]
# One answer for an unknown user, a wrong password and a disabled account.
WRONG_CREDENTIALS = "wrong username or password"


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class StaffSessions:
    """The session rows, and the route dependencies built on them."""

    def __init__(
        self,
        database: ServiceDatabase,
        tokens: StaffTokens,
        directory: StaffDirectory,
        jurisdiction: Jurisdiction,
        audit: AuditLog,
        guard: SignInGuard,
    ) -> None:
        self._database = database
        self._guard_sign_in = guard
        self._tokens = tokens
        self._directory = directory
        self._jurisdiction = jurisdiction
        self._audit = audit
        self._token_check = tokens.dependency()
        self.staff = self._guard(allow_password_change=False)
        # Only for what a user who must change their password may still do.
        self.signed_in = self._guard(allow_password_change=True)

    def _guard(self, *, allow_password_change: bool) -> StaffCheck:
        check = self._token_check

        async def current_staff(staff: Annotated[StaffUser, Depends(check)]) -> StaffUser:
            if staff.session_id is None:
                return staff
            async with reading(self._database.engine) as connection:
                row = (
                    await connection.execute(
                        select(
                            staff_sessions.c.ended_at,
                            staff_users.c.disabled,
                            staff_users.c.must_change_password,
                        )
                        .join(staff_users, staff_users.c.username == staff_sessions.c.username)
                        .where(staff_sessions.c.id == staff.session_id)
                    )
                ).first()
            if row is None or row.ended_at is not None or row.disabled:
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED,
                    "this session has ended; sign in again",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if row.must_change_password and not allow_password_change:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN, "change your password first (POST /staff/password)"
                )
            return staff

        return current_staff

    async def open(self, account: StaffAccount) -> tuple[str, str, datetime]:
        session_id = token_urlsafe(24)
        issued = self._tokens.issue_session(
            account.username, account.org_code, account.role.value, session_id
        )
        async with self._database.engine.begin() as connection:
            await connection.execute(
                insert(staff_sessions).values(
                    id=session_id,
                    username=account.username,
                    created_at=self._database.clock.now(),
                    expires_at=issued.expires_at,
                )
            )
        return issued.token, issued.csrf, issued.expires_at

    async def end(self, session_id: str) -> None:
        async with self._database.engine.begin() as connection:
            await connection.execute(
                update(staff_sessions)
                .where(staff_sessions.c.id == session_id, staff_sessions.c.ended_at.is_(None))
                .values(ended_at=self._database.clock.now())
            )

    def profile(self, account: StaffAccount, csrf: str | None) -> dict[str, Any]:
        org = org_ref(self._jurisdiction, account.org_code)
        return {
            "username": account.username,
            "display_name": account.display_name,
            "org": org.model_dump(mode="json") if org else {"code": account.org_code},
            "role": account.role.value,
            "must_change_password": account.must_change_password,
            "csrf_token": csrf,
        }

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/api/v1/staff", tags=["staff session"])
        SignedIn = Annotated[StaffUser, Depends(self.signed_in)]

        @router.post("/login", responses={401: {}, 429: {}})
        async def login(body: LoginIn, request: Request, response: Response) -> dict[str, Any]:
            """Sign in. The token comes back in the body and as an HttpOnly cookie.

            Too many failures for the account or from the address within the lockout window
            answer 429 with Retry-After, whatever the password.
            """
            request_ref = request_id(request)
            # Behind the gateway uvicorn takes the client from X-Forwarded-For (it trusts
            # the loopback proxy), so this is the browser's address, not the gateway's.
            address = request.client.host if request.client else None
            locked = await self._guard_sign_in.lockout(body.username, address)
            if locked is not None:
                await self._audit.record(
                    Actor(body.username, None, None), "login", "locked", request_ref
                )
                raise HTTPException(
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    locked.reason,
                    headers={"Retry-After": str(locked.retry_after)},
                )
            account = None
            if _valid_username(body.username):
                account = await self._directory.authenticate(body.username, body.password)
            if account is None:
                await self._guard_sign_in.failed(body.username, address)
                await self._audit.record(
                    Actor(body.username, None, None), "login", "failed", request_ref
                )
                raise HTTPException(status.HTTP_401_UNAUTHORIZED, WRONG_CREDENTIALS)
            await self._guard_sign_in.succeeded(account.username)
            token, csrf, expires_at = await self.open(account)
            await self._audit.record(
                Actor(account.username, account.org_code, account.role.value),
                "login",
                "ok",
                request_ref,
            )
            response.set_cookie(
                SESSION_COOKIE,
                token,
                max_age=int(self._tokens.ttl.total_seconds()),
                path="/",
                # Behind the gateway or an ingress TLS ends before us: trust its header.
                secure=served_over_tls(request.scope),
                httponly=True,
                samesite="strict",
            )
            response.headers["Cache-Control"] = "no-store"
            return {
                "token": token,
                "token_type": "bearer",
                "expires_at": expires_at.isoformat(),
                "user": self.profile(account, csrf),
                "csrf_token": csrf,
            }

        @router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
        async def logout(staff: SignedIn, request: Request) -> Response:
            """Sign out: the session ends now, whatever the token's expiry says."""
            if staff.session_id is not None:
                await self.end(staff.session_id)
            await self._audit.record(Actor.of(staff), "logout", "ok", request_id(request))
            response = Response(status_code=status.HTTP_204_NO_CONTENT)
            response.delete_cookie(
                SESSION_COOKIE,
                path="/",
                secure=served_over_tls(request.scope),
                httponly=True,
                samesite="strict",
            )
            return response

        @router.get("/me")
        async def me(staff: SignedIn, response: Response) -> dict[str, Any]:
            """Who is signed in, with the CSRF token a page sends back on changes."""
            response.headers["Cache-Control"] = "no-store"
            account = await self._directory.get(staff.user)
            if account is None:  # a minted token for a user without an account
                org = org_ref(self._jurisdiction, staff.org_code)
                return {
                    "username": staff.user,
                    "display_name": staff.user,
                    "org": org.model_dump(mode="json") if org else {"code": staff.org_code},
                    "role": staff.role,
                    "must_change_password": False,
                    "csrf_token": staff.csrf,
                }
            return self.profile(account, staff.csrf)

        @router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
        async def change_password(staff: SignedIn, body: PasswordIn, request: Request) -> None:
            """Change your own password (required after an administrator set it)."""
            try:
                await self._directory.change_password(
                    staff.user, body.current_password, body.new_password
                )
            except AccountError as error:
                await self._audit.record(
                    Actor.of(staff), "password_change", "refused", request_id(request)
                )
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
            await self._audit.record(Actor.of(staff), "password_change", "ok", request_id(request))

        return router


def _valid_username(username: str) -> bool:
    return re.match(USERNAME_PATTERN, username) is not None
