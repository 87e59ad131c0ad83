"""API keys: presented as ``Authorization: Bearer <key>`` or ``X-API-Key``; stored
only as SHA-256 (the credential's id derives from it). The bootstrap admin key comes
from the environment and is compared by hash in constant time."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from fastapi import HTTPException

from lodestone.bootstrap.settings import Settings
from lodestone.domain.access import Principal, Role
from lodestone.ledger import Ledger

UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="lodestone"'}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "lsk_" + secrets.token_urlsafe(32)


class Throttle:
    """Wrong keys per client address in a sliding window: past ``limit`` in ``window``
    seconds the address is refused with 429 and ``Retry-After`` until its oldest failure
    leaves the window, whatever key it presents (a block that let a right guess through
    would not slow guessing). Memory is bounded: at most ``addresses`` are tracked, the
    least recently failing forgotten first."""

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window = window
        self._addresses = addresses
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()  # routes run in a thread pool

    def refuse_if_blocked(self, address: str) -> None:
        with self._lock:
            failures = self._recent(address)
            if failures is None or len(failures) < self._limit:
                return
            wait = math.ceil(failures[0] + self._window - self._clock())
        raise HTTPException(
            429,
            f"too many wrong keys from this address: try again in {wait} s",
            headers={"Retry-After": str(max(wait, 1))},
        )

    def failed(self, address: str) -> None:
        with self._lock:
            failures = self._recent(address) or deque()
            failures.append(self._clock())
            self._failures[address] = failures
            self._failures.move_to_end(address)
            while len(self._failures) > self._addresses:
                self._failures.popitem(last=False)

    def _recent(self, address: str) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is not None:
            horizon = self._clock() - self._window
            while failures and failures[0] <= horizon:
                failures.popleft()
        return failures


def authenticate(
    settings: Settings,
    ledger: Ledger,
    authorization: str | None,
    api_key: str | None,
    *,
    throttle: Throttle | None = None,
    address: str = "",
) -> Principal:
    if throttle is not None:
        throttle.refuse_if_blocked(address)
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
        if throttle is not None:
            throttle.failed(address)
        raise HTTPException(401, "unknown or revoked API key", headers=UNAUTHORIZED)
    return principal
