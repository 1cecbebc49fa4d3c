"""API key checks with per-address throttling of failures.

A client address that fails authentication more than `auth_failure_burst` times, then faster than
`auth_failures_per_second`, gets 429 for keys the server has not seen succeed recently, without a lookup. Keys
that did authenticate recently keep working from that address, so an attacker sharing an address (a NAT,
127.0.0.1) with real users slows down only their own guessing, never the users.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcli.local.records import User
from mcli.local.store import hash_key

if TYPE_CHECKING:
    from mcli.local.limits import Limits
    from mcli.local.store import Store

# Bounds on the in-memory tables (an attacker controls how many addresses and keys it presents).
_KNOWN_KEYS = 10_000
_TRACKED_ADDRESSES = 10_000


@dataclass
class AuthResult:
    user: User | None
    # 401 for a missing or unknown key, 429 while the address is throttled; 0 when `user` is set.
    status: int = 0
    retry_after: float = 0.0

    @property
    def message(self) -> str:
        if self.status == 429:
            return (
                "Too many failed authentication attempts from this address; "
                f"retry in {math.ceil(self.retry_after)} s"
            )
        return "Unauthorized: missing or unknown API key"


@dataclass
class _Bucket:
    tokens: float
    updated: float


class Authenticator:
    def __init__(self, store: Store, limits: Limits, session_keys: dict[str, User] | None = None) -> None:
        self.store = store
        self.limits = limits
        # Key hash -> user for keys that authenticated recently; also holds keys valid only for this process.
        self._known: dict[str, User] = dict(session_keys or {})
        self._session_keys = dict(session_keys or {})
        self._failures: dict[str, _Bucket] = {}

    def check(self, key: str | None, address: str | None) -> AuthResult:
        if not key:
            return AuthResult(None, 401)  # no key is no guess: nothing to throttle
        digest = hash_key(key)
        user = self._known.get(digest)
        if user is not None:
            return AuthResult(user)
        wait = self._throttled_for(address)
        if wait > 0:
            return AuthResult(None, 429, wait)
        user = self.store.user_for_key_hash(digest)
        if user is not None:
            if len(self._known) >= _KNOWN_KEYS:
                self._known = dict(self._session_keys)
            self._known[digest] = user
            return AuthResult(user)
        self._record_failure(address)
        return AuthResult(None, 401)

    def _bucket(self, address: str) -> _Bucket:
        now = time.monotonic()
        bucket = self._failures.get(address)
        if bucket is None:
            if len(self._failures) >= _TRACKED_ADDRESSES:
                self._failures.clear()
            bucket = self._failures[address] = _Bucket(float(self.limits.auth_failure_burst), now)
        else:
            refill = (now - bucket.updated) * self.limits.auth_failures_per_second
            bucket.tokens = min(float(self.limits.auth_failure_burst), bucket.tokens + refill)
            bucket.updated = now
        return bucket

    def _throttled_for(self, address: str | None) -> float:
        """Seconds until `address` may try an unknown key again; 0 when it may now."""
        if address is None:
            return 0.0
        bucket = self._bucket(address)
        if bucket.tokens >= 1:
            return 0.0
        return (1 - bucket.tokens) / self.limits.auth_failures_per_second

    def _record_failure(self, address: str | None) -> None:
        if address is not None:
            self._bucket(address).tokens -= 1
