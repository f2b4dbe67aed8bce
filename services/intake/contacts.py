"""The citizen's contact data, sealed at rest: name, phone, address, email and WeChat openid.

Each value is encrypted with AES-GCM (``cryptography``) under the contact key from the
settings, with the complaint id and the field's name as associated data, so a sealed value
copied into another row or column does not open. The row records which key sealed it
(``sealed_with``, a fingerprint of the key, never the key), so keys can rotate: the new key
becomes ``YIJIAN_CONTACT_KEY``, the old one moves to ``YIJIAN_CONTACT_PREVIOUS_KEYS``, and
``reseal`` (run when intake starts) moves every row to the current key. The WeChat
sessions seal their openid with this same seal (services/intake/wechat_session.py).

Finding a user's complaints needs no decryption: ``openid_digest`` is a keyed digest
(HMAC-SHA256) of the openid. Looking up by tracking number and the phone's last four digits
finds the row by its tracking number and opens that one phone number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.intake.store import contacts
from yijian.settings import Settings, split_secrets

log = structlog.get_logger(__name__)

SEALED_FIELDS = ("name", "phone", "address", "email", "wechat_openid")
_NONCE = 12
_RESEAL_BATCH = 500


class ContactKeyMissing(RuntimeError):
    """A row was sealed with a key that is no longer configured."""


@dataclass(frozen=True)
class Contact:
    name: str | None = None
    phone: str | None = None
    address: str | None = None
    email: str | None = None
    wechat_openid: str | None = None
    # Not sealed: a choice about the fields above, which says nothing about who made it.
    conceal_from_village: bool = False

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, field) for field in SEALED_FIELDS)


def _derive(secret: str, purpose: bytes) -> bytes:
    # One secret, several keys: the sealing key, the digest key and the fingerprint can
    # never stand in for one another.
    return hmac.new(secret.encode(), b"yijian contact " + purpose, hashlib.sha256).digest()


@dataclass(frozen=True)
class _Key:
    id: str
    aead: AESGCM
    digest_key: bytes

    @classmethod
    def of(cls, secret: str) -> _Key:
        return cls(
            id=_derive(secret, b"key id v1").hex()[:16],
            aead=AESGCM(_derive(secret, b"seal v1")),
            digest_key=_derive(secret, b"openid digest v1"),
        )


class ContactSeal:
    def __init__(self, current: str, previous: list[str] | None = None) -> None:
        self._current = _Key.of(current)
        self._keys = {self._current.id: self._current}
        for secret in previous or []:
            key = _Key.of(secret)
            self._keys.setdefault(key.id, key)

    @classmethod
    def from_settings(cls, settings: Settings) -> ContactSeal:
        return cls(
            settings.secret_value("contact_key"), split_secrets(settings.contact_previous_keys)
        )

    @property
    def key_id(self) -> str:
        return self._current.id

    def seal(self, row_id: str, field: str, value: str | None) -> str | None:
        """``value`` sealed for one row and field: a complaint id here, the session token's
        digest for the WeChat sessions (services/intake/wechat_session.py)."""
        if value is None:
            return None
        nonce = os.urandom(_NONCE)
        sealed = self._current.aead.encrypt(nonce, value.encode(), _context(row_id, field))
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, row_id: str, field: str, sealed: str | None, key_id: str | None) -> str | None:
        """The plain value; ``key_id`` None means a row written before sealing began."""
        if sealed is None or key_id is None:
            return sealed
        key = self._keys.get(key_id)
        if key is None:
            raise ContactKeyMissing(
                f"contact data sealed with key {key_id} needs that key in "
                "YIJIAN_CONTACT_PREVIOUS_KEYS"
            )
        raw = base64.urlsafe_b64decode(sealed.encode())
        try:
            plain = key.aead.decrypt(raw[:_NONCE], raw[_NONCE:], _context(row_id, field))
        except InvalidTag as error:
            raise ContactKeyMissing(f"a sealed {field} does not open: altered or moved") from error
        return plain.decode()

    def openid_digest(self, openid: str) -> str:
        return _digest(self._current.digest_key, openid)

    def openid_digests(self, openid: str) -> list[str]:
        """The openid's digest under every configured key, to match rows not resealed yet."""
        return [_digest(key.digest_key, openid) for key in self._keys.values()]

    def sealed_row(self, complaint_id: str, contact: Contact) -> dict[str, Any]:
        values: dict[str, Any] = {
            field: self.seal(complaint_id, field, getattr(contact, field))
            for field in SEALED_FIELDS
        }
        values["sealed_with"] = self.key_id
        values["openid_digest"] = (
            self.openid_digest(contact.wechat_openid) if contact.wechat_openid else None
        )
        values["conceal_from_village"] = contact.conceal_from_village
        return values

    def opened(self, complaint_id: str, row: Any) -> Contact:
        """A ``contacts`` row (every sealed field, ``sealed_with`` and the village choice)
        opened."""
        return Contact(
            **{
                field: self.open(complaint_id, field, getattr(row, field), row.sealed_with)
                for field in SEALED_FIELDS
            },
            conceal_from_village=bool(row.conceal_from_village),
        )


async def add_contact(
    connection: AsyncConnection, seal: ContactSeal, complaint_id: str, contact: Contact
) -> None:
    await connection.execute(
        insert(contacts).values(complaint_id=complaint_id, **seal.sealed_row(complaint_id, contact))
    )


async def contact_of(
    connection: AsyncConnection, seal: ContactSeal, complaint_id: str
) -> Contact | None:
    row = (
        await connection.execute(select(contacts).where(contacts.c.complaint_id == complaint_id))
    ).first()
    return None if row is None else seal.opened(complaint_id, row)


async def reseal(engine: AsyncEngine, seal: ContactSeal) -> int:
    """Seal rows written in plain text, and move rows under an old key to the current one.

    Runs in batches, each its own transaction, so a large table never holds one long lock;
    returns how many rows changed. A row whose key is gone is left as it is, loudly.
    """
    changed = 0
    skipped: set[str] = set()
    while True:
        async with engine.begin() as connection:
            rows = (
                await connection.execute(
                    select(contacts)
                    .where(
                        or_(
                            contacts.c.sealed_with.is_(None), contacts.c.sealed_with != seal.key_id
                        ),
                        contacts.c.complaint_id.not_in(skipped),
                    )
                    .limit(_RESEAL_BATCH)
                )
            ).all()
            if not rows:
                return changed
            for row in rows:
                try:
                    contact = seal.opened(row.complaint_id, row)
                except ContactKeyMissing:
                    log.exception("contact row cannot be resealed", complaint_id=row.complaint_id)
                    skipped.add(row.complaint_id)
                    continue
                await connection.execute(
                    update(contacts)
                    .where(contacts.c.complaint_id == row.complaint_id)
                    .values(**seal.sealed_row(row.complaint_id, contact))
                )
                changed += 1


def _context(row_id: str, field: str) -> bytes:
    return f"{row_id}\x00{field}".encode()


def _digest(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
