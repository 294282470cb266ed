"""Optional API keys, read where upstream reads them: query, then `Authorization: Bearer`, then body.

With no keys configured every request passes (upstream's self-hosted behaviour). Keys are
compared in constant time and never logged.
"""

from __future__ import annotations

import hmac

from gateway.errors import Unauthorized


class KeyChecker:
    def __init__(self, keys: list[str]) -> None:
        self._keys = [k.encode() for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, query_key: str | None, authorization: str | None, body_key: str | None) -> None:
        if not self._keys:
            return
        header_key = None
        if authorization and authorization[:7].lower() == "bearer ":
            header_key = authorization[7:].strip()
        candidate = query_key or header_key or body_key
        if not candidate:
            raise Unauthorized()
        given = candidate.encode()
        # Compare against every key (no early exit) so timing reveals neither key nor position.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(given, key)
        if not matched:
            raise Unauthorized()
