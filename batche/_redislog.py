"""The sliding-window log of a rate limit kept in Redis, shared by every process.

The same arithmetic as :class:`~batche._slidinglog.SlidingLog`, done by one Lua script per
acquisition, so that reading the log and writing the new slot is atomic across processes.
Times come from the Redis server's clock (``TIME``), the one clock every process shares.
"""

from __future__ import annotations

try:
    import redis  # noqa: F401 - a clear message when the extra is missing
except ImportError as exc:  # pragma: no cover - the redis extra is installed in tests
    raise ImportError(
        "RateLimit(redis=...) needs the redis package: pip install 'batche[redis]'"
    ) from exc

from .stores._redis_io import ERRORS, bounded, sync_client

__all__ = ["RedisLog"]

# KEYS: the log (a sorted set: score = slot in microseconds, member = "token cost") and
# its totals (a hash: 'spent' = the cost of every slot in the log, 'token' = a counter).
# ARGV: requests (0: no limit), cost budget ('': no limit), per (microseconds), the cost
# asked, now (microseconds; '' for the server's clock). Returns {slot, now, member}.
_RESERVE = """
local log, totals = KEYS[1], KEYS[2]
local requests, budget = tonumber(ARGV[1]), tonumber(ARGV[2])
local per, cost, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function paid(member) return tonumber(string.match(member, ' (.*)$')) end
local spent = tonumber(redis.call('HGET', totals, 'spent') or '0')
local closed = redis.call('ZRANGEBYSCORE', log, '-inf', now - per)
for _, member in ipairs(closed) do spent = spent - paid(member) end
redis.call('ZREMRANGEBYSCORE', log, '-inf', now - per)
local count = redis.call('ZCARD', log)
if count == 0 then spent = 0 end
local function fits(n, s)
    if requests > 0 and n + 1 > requests then return false end
    return budget == nil or cost == 0 or s + math.min(cost, budget) <= budget
end
local slot = now
local newest = redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')
if newest[2] then slot = math.max(slot, tonumber(newest[2])) end
local n, s, start = count, spent, 0
while not fits(n, s) do
    local oldest = redis.call('ZRANGE', log, start, start + 63, 'WITHSCORES')
    if #oldest == 0 then break end
    for i = 1, #oldest, 2 do
        n = n - 1
        if n == 0 then s = 0 else s = s - paid(oldest[i]) end
        slot = math.max(slot, tonumber(oldest[i + 1]) + per)
        if fits(n, s) then break end
    end
    start = start + 64
end
local member = redis.call('HINCRBY', totals, 'token', 1) .. ' ' .. ARGV[4]
redis.call('ZADD', log, slot, member)
redis.call('HSET', totals, 'spent', string.format('%.17g', spent + cost))
local ttl = math.ceil((slot - now + per) / 1000) + 1000
redis.call('PEXPIRE', log, ttl)
redis.call('PEXPIRE', totals, ttl)
return {slot, now, member}
"""

# KEYS as above; ARGV: the member, now ('' for the server's clock). Removes the slot if it
# is still ahead of now, and takes its cost off the total.
_CANCEL = """
local log, totals, member = KEYS[1], KEYS[2], ARGV[1]
local now = tonumber(ARGV[2])
if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local slot = redis.call('ZSCORE', log, member)
if slot and tonumber(slot) > now then
    redis.call('ZREM', log, member)
    local spent = tonumber(redis.call('HGET', totals, 'spent') or '0')
    spent = spent - tonumber(string.match(member, ' (.*)$'))
    if redis.call('ZCARD', log) == 0 then spent = 0 end
    redis.call('HSET', totals, 'spent', string.format('%.17g', spent))
end
return 0
"""


class RedisLog:
    """A budget in Redis under ``prefix + name``: the same key in every process."""

    #: what a failing Redis raises: redis-py's errors, socket errors, a deadline passed
    error = ERRORS

    def __init__(
        self,
        url: str,
        name: str,
        requests: int | None,
        cost: float | None,
        per_us: int,
        *,
        prefix: str = "batche:",
        timeout: float = 1.0,
    ) -> None:
        # No retries, and one deadline for all of an acquisition's round trips
        # (connecting, loading the script, running it): ``timeout`` is what it costs.
        self.timeout = timeout
        self.client = sync_client(url, timeout)
        # {...}: both keys hash to one slot, as a script's keys must on a Redis Cluster
        base = f"{prefix}ratelimit:{{{name}}}"
        self.keys = [f"{base}:log", f"{base}:totals"]
        self.limits: list[str | int | float] = [
            requests or 0,
            "" if cost is None else repr(float(cost)),
            per_us,
        ]
        self._reserve = self.client.register_script(_RESERVE)
        self._cancel = self.client.register_script(_CANCEL)

    def reserve(self, cost: float, now: int | None = None) -> tuple[int, int, bytes]:
        """The slot of an acquisition of ``cost``, the server's now (microseconds) and the
        slot's token; raises ``redis.RedisError`` when Redis cannot answer."""
        args: list[str | int | float] = [
            *self.limits,
            repr(float(cost)),
            "" if now is None else now,
        ]
        slot, server_now, member = bounded(self.timeout, self._reserve, self.keys, args)
        return int(slot), int(server_now), member

    def cancel(self, member: bytes, now: int | None = None) -> None:
        """Give back a slot still ahead of now."""
        bounded(self.timeout, self._cancel, self.keys, [member, "" if now is None else now])

    def close(self) -> None:
        self.client.close()
