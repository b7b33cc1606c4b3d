"""Bearer tokens verified recently, so a client calling again with the same token skips the
signature check and the claim checks (`api.auth.TokenVerifier` does them once).

Keyed by the SHA-256 of the token (the token itself is never kept), bounded (least recently used
first out), and each entry is kept at most `TTL_S` seconds and never past the moment the token
itself stops being accepted (its `exp`, plus the leeway its issuer gets): a hit is exactly what
verifying again would have answered, except that a key the issuer withdrew, or a JWKS refresh,
is seen up to `TTL_S` later. Only verified tokens are remembered; a refused token is checked in
full every time. One event loop's, as the verifier is.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from policies import Principal

MAX_ENTRIES = 4096
"""Verified tokens remembered at most; the least recently used go first."""
TTL_S = 60.0
"""How long a verified token is remembered at most (whatever its `exp`)."""


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    valid_until: float
    """Wall-clock seconds: from then on the token is expired (its `exp` plus the leeway)."""
    remembered_at: float
    """Monotonic seconds."""


class VerifiedTokens:
    def __init__(
        self,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        max_entries: int = MAX_ENTRIES,
        ttl_s: float = TTL_S,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._max = max_entries
        self._ttl_s = ttl_s
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()

    def __repr__(self) -> str:  # never the principals
        return f"VerifiedTokens({len(self._entries)} of {self._max})"

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> Principal | None:
        """The principal of a token verified within `TTL_S` and not expired since; else None."""
        key = self._key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if (
            self._wall_clock() >= entry.valid_until
            or self._clock() - entry.remembered_at >= self._ttl_s
        ):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.principal

    def remember(self, token: str, principal: Principal, *, valid_until: float) -> None:
        key = self._key(token)
        self._entries[key] = _Entry(principal, valid_until, self._clock())
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
