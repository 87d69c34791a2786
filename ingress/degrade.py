"""Small helpers for degrading gracefully when Redis (a cache, never the truth) fails."""

from __future__ import annotations

import time
from typing import Final

LOG_EVERY_S: Final = 10.0
OPEN_FOR_S: Final = 1.0


class LogThrottle:
    """Allows one log line per ``every_s`` seconds (per instance)."""

    def __init__(self, every_s: float = LOG_EVERY_S) -> None:
        self._every = every_s
        self._last = float("-inf")

    def allow(self) -> bool:
        """True at most once per period."""
        now = time.monotonic()
        if now - self._last < self._every:
            return False
        self._last = now
        return True


class Breaker:
    """Skips a failing dependency for ``open_for_s`` after each failure.

    While open, callers do not wait for Redis (a refused or black-holed connection costs
    up to the client's timeout, per call); one call per period probes it again.
    """

    def __init__(self, open_for_s: float = OPEN_FOR_S) -> None:
        self._open_for = open_for_s
        self._until = float("-inf")

    def closed(self) -> bool:
        """True when calls may go to the dependency."""
        return time.monotonic() >= self._until

    def failed(self) -> None:
        """Record a failure: skip the dependency for a while."""
        self._until = time.monotonic() + self._open_for
