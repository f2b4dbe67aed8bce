"""yijian's own sessions for mini-program users, kept on the server.

The mini-program gets an opaque random token; the server keeps only its SHA-256, the
openid it stands for, WeChat's session_key sealed with AES-GCM, and an expiry read from the
system clock (so tests expire a session by moving a fake clock). The session_key is never
returned, never logged, and only an operator holding the key could unseal it.

The openid is personal data like the contacts' and is sealed the same way, by the same
``ContactSeal`` (the token's digest and the field name as associated data, the key's
fingerprint in ``sealed_with``). Rows are not resealed when the contact key rotates: a
session lives a day at most, and one whose key is gone reads as signed out, so the
mini-program signs in again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from datetime import datetime, timedelta

import structlog
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, insert, select

from services.intake.contacts import ContactKeyMissing, ContactSeal
from services.intake.store import wechat_sessions
from services.intake.wechat_login import WeChatUser
from yijian.bus.outbox import ServiceDatabase
from yijian.db import reading

log = structlog.get_logger(__name__)

TOKEN_PREFIX = "wx1."  # noqa: S105 - tells a WeChat session from a citizen token or a staff JWT
# The sealed field's name, part of the associated data: a sealed contact openid copied here
# (or this one copied into contacts) does not open.
_OPENID_FIELD = "session_openid"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionKeySeal:
    """AES-GCM with a key derived from a server secret; the openid is the associated data,
    so a sealed key copied onto another user's row does not open."""

    def __init__(self, secret: str) -> None:
        key = hmac.new(secret.encode(), b"yijian wechat session_key seal v1", hashlib.sha256)
        self._aead = AESGCM(key.digest())

    def seal(self, session_key: str, openid: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, session_key.encode(), openid.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def unseal(self, sealed: str, openid: str) -> str:
        raw = base64.urlsafe_b64decode(sealed.encode())
        return self._aead.decrypt(raw[:12], raw[12:], openid.encode()).decode()


class WeChatSessions:
    def __init__(
        self,
        database: ServiceDatabase,
        seal: SessionKeySeal,
        ttl: timedelta,
        openid_seal: ContactSeal,
    ) -> None:
        self._database = database
        self._seal = seal
        self._openid_seal = openid_seal
        self.ttl = ttl

    async def open(self, user: WeChatUser) -> tuple[str, datetime]:
        """A new session for ``user``: the token to hand out and when it expires."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self._database.transaction() as tx:
            now = tx.now
            # Sign-ins are rare enough that sweeping expired rows here keeps the table small
            # without a timer of its own.
            await tx.connection.execute(
                delete(wechat_sessions).where(wechat_sessions.c.expires_at <= now)
            )
            token_hash = _digest(token)
            await tx.connection.execute(
                insert(wechat_sessions).values(
                    token_hash=token_hash,
                    openid_sealed=self._openid_seal.seal(token_hash, _OPENID_FIELD, user.openid),
                    sealed_with=self._openid_seal.key_id,
                    session_key_sealed=self._seal.seal(user.session_key, user.openid),
                    created_at=now,
                    expires_at=now + self.ttl,
                )
            )
        return token, now + self.ttl

    async def openid(self, token: str) -> str | None:
        """Whose session ``token`` is, or None when it is unknown or expired."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
            return None
        token_hash = _digest(token)
        async with reading(self._database.engine) as connection:
            row = (
                await connection.execute(
                    select(
                        wechat_sessions.c.openid_sealed,
                        wechat_sessions.c.sealed_with,
                        wechat_sessions.c.expires_at,
                    ).where(wechat_sessions.c.token_hash == token_hash)
                )
            ).first()
        if row is None or row.expires_at <= self._database.clock.now():
            return None
        try:
            return self._openid_seal.open(
                token_hash, _OPENID_FIELD, row.openid_sealed, row.sealed_with
            )
        except ContactKeyMissing:
            # The contact key rotated past this session (or the row was altered).
            log.warning("wechat session does not open; the user must sign in again")
            return None
