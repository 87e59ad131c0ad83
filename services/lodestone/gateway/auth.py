"""API keys: presented as ``Authorization: Bearer <key>`` or ``X-API-Key``; stored
only as SHA-256 (the credential's id derives from it). The bootstrap admin key comes
from the environment and is compared by hash in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import HTTPException

from lodestone.bootstrap.settings import Settings
from lodestone.domain.access import Principal, Role
from lodestone.ledger import Ledger

UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="lodestone"'}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "lsk_" + secrets.token_urlsafe(32)


def authenticate(
    settings: Settings, ledger: Ledger, authorization: str | None, api_key: str | None
) -> Principal:
    key = api_key
    if key is None and authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            key = value.strip()
    if not key:
        raise HTTPException(
            401, "an API key is required (Authorization: Bearer <key>)", headers=UNAUTHORIZED
        )
    presented = hash_key(key)
    if settings.admin_key is not None:
        admin = hash_key(settings.admin_key.get_secret_value())
        if hmac.compare_digest(presented, admin):
            return Principal(id="admin:bootstrap", role=Role.ADMIN, label="bootstrap admin")
    principal = ledger.authenticate(presented)
    if principal is None:
        raise HTTPException(401, "unknown or revoked API key", headers=UNAUTHORIZED)
    return principal
