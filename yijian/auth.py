"""Staff bearer tokens: a signed claim of who the user is and which org they act for.

Expiry is checked against the system's own clock, not the wall clock, so that tests which
move a fake clock see tokens expire exactly when users would.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from yijian.clock import Clock

ALGORITHM = "HS256"  # pinned: a token naming any other algorithm is refused
_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class StaffUser:
    user: str
    org_code: str
    role: str


class StaffTokens:
    def __init__(self, secret: str, clock: Clock, ttl: timedelta) -> None:
        self._secret = secret
        self._clock = clock
        self._ttl = ttl

    def issue(self, user: str, org_code: str, role: str = "staff") -> str:
        now = self._clock.now()
        claims = {
            "sub": user,
            "org": org_code,
            "role": role,
            "iat": int(now.timestamp()),
            "exp": int((now + self._ttl).timestamp()),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> StaffUser:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"verify_exp": False, "require": ["sub", "org", "exp"]},
            )
        except jwt.PyJWTError as error:
            raise _unauthorized(f"invalid token: {error}") from error
        if int(claims["exp"]) <= self._clock.now().timestamp():
            raise _unauthorized("token expired; sign in again")
        return StaffUser(str(claims["sub"]), str(claims["org"]), str(claims.get("role", "staff")))

    def dependency(self) -> Callable[..., Awaitable[StaffUser]]:
        async def current_staff(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        ) -> StaffUser:
            if credentials is None:
                raise _unauthorized("a staff bearer token is required")
            return self.verify(credentials.credentials)

        return current_staff


def require_org(
    tokens: StaffTokens, org_code: str, why: str
) -> Callable[..., Awaitable[StaffUser]]:
    """A route dependency: a valid staff token of exactly ``org_code``, else 401/403."""
    current = tokens.dependency()

    async def guard(staff: Annotated[StaffUser, Depends(current)]) -> StaffUser:
        if staff.org_code != org_code:
            raise HTTPException(status.HTTP_403_FORBIDDEN, why)
        return staff

    return guard


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )
