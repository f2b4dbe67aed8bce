"""Staff tokens: a signed claim of who the user is, which org they act for and in what role.

A token reaches a route one of two ways. API clients send it as ``Authorization: Bearer``;
the browser workbench keeps it in an ``HttpOnly``, ``SameSite=Strict`` cookie that scripts
cannot read. A browser attaches cookies by itself, so a state-changing request that is
authenticated by the cookie must also prove it came from our own page: it carries the
token's ``csrf`` claim in the ``X-CSRF-Token`` header (the page learns it from the login
response or ``GET /api/v1/staff/me``). Bearer requests need no such proof: no browser adds
an ``Authorization`` header on its own.

Expiry is checked against the system's own clock, not the wall clock, so that tests which
move a fake clock see tokens expire exactly when users would.

Signing keys rotate without signing anyone out: a token names its key in the ``kid``
header (a fingerprint of the key, never the key), new tokens are signed with the current
key, and tokens signed with a key listed in ``YIJIAN_AUTH_PREVIOUS_SECRETS`` keep working
until they expire. A token without a ``kid``, or naming a key not configured, is refused.
"""

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from hmac import compare_digest
from secrets import token_urlsafe
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from yijian.clock import Clock

ALGORITHM = "HS256"  # pinned: a token naming any other algorithm is refused
SESSION_COOKIE = "yijian_staff"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class StaffUser:
    user: str  # the username (the token's ``sub``)
    org_code: str
    role: str
    session_id: str | None = None  # set for tokens from a sign-in, None for minted ones
    csrf: str | None = None
    via_cookie: bool = False


@dataclass(frozen=True)
class IssuedToken:
    token: str
    csrf: str
    expires_at: datetime


def key_id(secret: str) -> str:
    """A key's public name: derived one way, so it tells nothing about the key."""
    digest = hmac.new(secret.encode(), b"yijian staff token key id v1", hashlib.sha256)
    return digest.hexdigest()[:16]


class StaffTokens:
    def __init__(
        self, secret: str, clock: Clock, ttl: timedelta, previous: Sequence[str] = ()
    ) -> None:
        self._secret = secret
        self.key_id = key_id(secret)
        self._keys = {key_id(old): old for old in previous if old}
        self._keys[self.key_id] = secret
        self._clock = clock
        self._ttl = ttl

    @property
    def ttl(self) -> timedelta:
        return self._ttl

    def issue(self, user: str, org_code: str, role: str = "staff") -> str:
        """A token for scripts and tests (``yijian staff token``); no sign-in session."""
        return self.issue_session(user, org_code, role).token

    def issue_session(
        self, user: str, org_code: str, role: str, session_id: str | None = None
    ) -> IssuedToken:
        now = self._clock.now()
        expires_at = now + self._ttl
        csrf = token_urlsafe(24)
        claims: dict[str, object] = {
            "sub": user,
            "org": org_code,
            "role": role,
            "csrf": csrf,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        if session_id is not None:
            claims["sid"] = session_id
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM, headers={"kid": self.key_id})
        return IssuedToken(token, csrf, expires_at)

    def verify(self, token: str, *, via_cookie: bool = False) -> StaffUser:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise _unauthorized(f"invalid token: {error}") from error
        # Only picks which key to try: the signature check below still decides.
        secret = self._keys.get(str(header.get("kid", "")))
        if secret is None:
            raise _unauthorized("invalid token: signed with no key this server accepts")
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                # Time is judged by our clock below, not PyJWT's wall clock (which would
                # also refuse a token "issued in the future" by a clock a test moved ahead).
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "require": ["sub", "org", "exp"],
                },
            )
        except jwt.PyJWTError as error:
            raise _unauthorized(f"invalid token: {error}") from error
        if int(claims["exp"]) <= self._clock.now().timestamp():
            raise _unauthorized("token expired; sign in again")
        session = claims.get("sid")
        csrf = claims.get("csrf")
        return StaffUser(
            user=str(claims["sub"]),
            org_code=str(claims["org"]),
            role=str(claims.get("role", "staff")),
            session_id=str(session) if session is not None else None,
            csrf=str(csrf) if csrf is not None else None,
            via_cookie=via_cookie,
        )

    def dependency(self) -> Callable[..., Awaitable[StaffUser]]:
        """A route dependency: the bearer token if there is one, else the session cookie."""

        async def current_staff(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        ) -> StaffUser:
            if credentials is not None:
                return self.verify(credentials.credentials)
            cookie = request.cookies.get(SESSION_COOKIE)
            if not cookie:
                raise _unauthorized("a staff bearer token or a signed-in session is required")
            staff = self.verify(cookie, via_cookie=True)
            if request.method not in _SAFE_METHODS:
                check_csrf(request, staff)
            return staff

        return current_staff


def check_csrf(request: Request, staff: StaffUser) -> None:
    """Refuse a cookie-authenticated change that did not come from our own page (403)."""
    if request.headers.get("sec-fetch-site", "same-origin") == "cross-site":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site request refused")
    sent = request.headers.get(CSRF_HEADER, "")
    if not staff.csrf or not sent or not compare_digest(sent.encode(), staff.csrf.encode()):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"missing or wrong {CSRF_HEADER} header: send the csrf_token from sign-in",
        )


def require_org(
    tokens: StaffTokens,
    org_code: str,
    why: str,
    current: Callable[..., Awaitable[StaffUser]] | None = None,
) -> Callable[..., Awaitable[StaffUser]]:
    """A route dependency: a valid staff token of exactly ``org_code``, else 401/403.

    ``current`` replaces the plain token check, e.g. by one that also checks the session.
    """
    check = current or tokens.dependency()

    async def guard(staff: Annotated[StaffUser, Depends(check)]) -> StaffUser:
        if staff.org_code != org_code:
            raise HTTPException(status.HTTP_403_FORBIDDEN, why)
        return staff

    return guard


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )
