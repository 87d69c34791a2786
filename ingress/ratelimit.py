"""Per-merchant rate limits: a token bucket in Redis, one atomic Lua script.

Each merchant has a bucket of ``rate_limit_burst`` tokens refilled at
``rate_limit_per_s`` tokens per second; every authenticated ``/api/v1`` request takes
one. The script reads the clock of the Redis server (``TIME``), so ingress replicas
with skewed clocks share one consistent bucket. State: a hash
``paystream:ratelimit:<merchant_id>`` (``tokens``, ``ts`` in microseconds) that expires
once the bucket would be full again.

Redis down: the caller decides (``rate_limit_fail_open``); see ingress/guards.py.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ingress.degrade import Breaker
from ingress.errors import IngressError

KEY_PREFIX: Final = "paystream:ratelimit:"
REDIS_TIMEOUT_S: Final = 0.5
LIMIT_HEADER: Final = "RateLimit-Limit"
REMAINING_HEADER: Final = "RateLimit-Remaining"

# KEYS[1]: the bucket. ARGV: refill per second, capacity, cost.
# Returns {allowed (0/1), whole tokens left, microseconds until `cost` tokens are there}.
BUCKET_LUA: Final = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)
else
  now = ts
end
local allowed = 0
local wait_us = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait_us = math.ceil((cost - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
           'ts', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return {allowed, math.floor(tokens), wait_us}
"""


class RateLimiterUnavailableError(IngressError):
    """Redis could not answer the limiter: the caller fails open or closed."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The limiter's answer for one request."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int = 0
    """Whole seconds until a token is available (>= 1 when refused, 0 when allowed)."""

    def headers(self) -> dict[str, str]:
        """``RateLimit-Limit`` and ``RateLimit-Remaining`` (plus ``Retry-After`` if refused)."""
        out = {LIMIT_HEADER: str(self.limit), REMAINING_HEADER: str(max(0, self.remaining))}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after_s)
        return out


def bucket_key(merchant_id: str) -> str:
    """The Redis key of a merchant's bucket."""
    return KEY_PREFIX + merchant_id


def retry_after_s(wait_us: int) -> int:
    """Whole seconds to wait, rounded up, at least 1 (the Retry-After of a 429)."""
    return max(1, math.ceil(wait_us / 1_000_000))


def decision_from_reply(reply: list[int], limit: int) -> Decision:
    """Turn the script's reply into a :class:`Decision`."""
    allowed, remaining, wait_us = (int(value) for value in reply)
    if allowed:
        return Decision(True, limit, remaining)
    return Decision(False, limit, remaining, retry_after_s(wait_us))


class RateLimiter:
    """Token buckets per merchant in Redis (``rate_per_s`` refill, ``burst`` capacity)."""

    def __init__(
        self, redis: aioredis.Redis, rate_per_s: int, burst: int, breaker: Breaker | None = None
    ) -> None:
        if rate_per_s <= 0 or burst <= 0:
            raise ValueError("rate_per_s and burst must be positive")
        self._breaker = breaker if breaker is not None else Breaker()
        self._script = redis.register_script(BUCKET_LUA)
        self.rate_per_s = rate_per_s
        self.burst = burst

    async def acquire(self, merchant_id: str, cost: int = 1) -> Decision:
        """Take ``cost`` tokens from the merchant's bucket, or say how long to wait.

        Raises RateLimiterUnavailableError when Redis fails, and without asking it for
        a second after a failure (see :class:`ingress.degrade.Breaker`).
        """
        if not self._breaker.closed():
            raise RateLimiterUnavailableError("redis: skipped after a recent failure")
        try:
            reply = await asyncio.wait_for(
                self._script(
                    keys=[bucket_key(merchant_id)], args=[self.rate_per_s, self.burst, cost]
                ),
                REDIS_TIMEOUT_S,
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._breaker.failed()
            raise RateLimiterUnavailableError(f"redis: {type(exc).__name__}") from exc
        return decision_from_reply(reply, self.burst)
