"""The idempotency record in Redis: what each destination has posted for each cascade.

Keys, under the alerter's prefix ``P`` (``<cascades stream>:alert:`` by default):

* ``P<dest>:c:<cascade_id>``, a hash with a TTL of days (renewed on every change):
  ``want``/``want_seq``: the newest cascade state received (JSON) and its ``seq``;
  ``seq``: the ``seq`` of the last state handled (posted, edited, or found not to need a message);
  ``edited``: wall-clock ms of the last post or edit, for the edit interval;
  ``m:<tier>``: id of the message posted at that tier (empty: a user deleted it);
  ``i:<tier>``: "intent": ms at which a post at that tier was about to be sent.
* ``P<dest>:due``, a sorted set: cascade ids with work to do, scored by when (ms).

The consumer only writes ``want`` and the due set (:meth:`Records.offer`, one script call per
batch); the destination's worker alone writes the rest. Both sides are Lua scripts, so a newer state
is never overwritten by an older redelivery and a cascade leaves the due set only when the state its
worker handled is still the newest.

The ``m:``/``i:`` fields (what was posted, what was about to be) are also mirrored in this process's
memory for the last ``MEMORY`` cascades. When Redis lost them (restarted without persistence, keys
evicted) :meth:`Records.load` puts them back from the mirror, in Redis too, so a tier posted before the
loss is edited, never posted again, as long as this process lives.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, cast

import msgspec
import redis.asyncio as aioredis
import structlog

from liq_alerter import metrics
from liq_common.codec import encode
from liq_common.events import TIERS, Cascade, Tier

log = structlog.get_logger(__name__)

MEMORY = 10_000
"""Cascades per process whose posted/intended messages are mirrored in memory (a few hundred bytes each)."""

_OFFER = """
local ttl = ARGV[1]
local now = ARGV[2]
local added = 0
for i = 1, #KEYS / 2 do
  local rec, due, b = KEYS[2 * i - 1], KEYS[2 * i], 3 * (i - 1) + 3
  local current = tonumber(redis.call('HGET', rec, 'want_seq') or '-1')
  if tonumber(ARGV[b]) > current then
    redis.call('HSET', rec, 'want', ARGV[b + 1], 'want_seq', ARGV[b])
    redis.call('ZADD', due, now, ARGV[b + 2])
    added = added + 1
  end
  redis.call('EXPIRE', rec, ttl)
end
return added
"""

_COMMIT = """
local n = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'seq', ARGV[2])
for i = 0, n - 1 do
  redis.call('HSET', KEYS[1], ARGV[5 + 2 * i], ARGV[6 + 2 * i])
end
for i = 5 + 2 * n, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
if tonumber(redis.call('HGET', KEYS[1], 'want_seq') or '-1') <= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
"""

_RESCHEDULE = """
if redis.call('HGET', KEYS[1], 'want_seq') == ARGV[2] then
  redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[1])
end
return 1
"""

_decoder = msgspec.json.Decoder(Cascade)


class Record(msgspec.Struct, kw_only=True):
    """A destination's record of one cascade (see the module docstring)."""

    want: Cascade | None = None
    seq: int = -1
    edited_ms: int = 0
    messages: dict[Tier, str] = msgspec.field(default_factory=dict)
    intents: dict[Tier, int] = msgspec.field(default_factory=dict)


def _parse(raw: dict[bytes, bytes]) -> Record:
    record = Record()
    for key, value in raw.items():
        name = key.decode()
        if name == "want":
            record.want = _decoder.decode(value)
        elif name == "seq":
            record.seq = int(value)
        elif name == "edited":
            record.edited_ms = int(value)
        elif name[:2] in ("m:", "i:") and name[2:] in TIERS:
            tier = cast(Tier, name[2:])
            if name[0] == "m":
                record.messages[tier] = value.decode()
            else:
                record.intents[tier] = int(value)
    return record


class Records:
    """Reads and writes the records of every destination.

    Args:
        client: Redis client (bytes replies).
        prefix: Key prefix.
        ttl: Seconds a record lives after its last change.
    """

    def __init__(self, client: aioredis.Redis, prefix: str, ttl: int) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl
        self._mirror: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()
        self._offer = client.register_script(_OFFER)
        self._commit = client.register_script(_COMMIT)
        self._reschedule = client.register_script(_RESCHEDULE)

    def key(self, dest: str, cascade_id: str) -> str:
        """Key of the record of ``cascade_id`` at ``dest``."""
        return f"{self.prefix}{dest}:c:{cascade_id}"

    def due_key(self, dest: str) -> str:
        """Key of ``dest``'s due set."""
        return f"{self.prefix}{dest}:due"

    async def offer(self, items: Sequence[tuple[str, Cascade]], now_ms: int) -> int:
        """Store each ``(destination, state)`` as wanted if newer than what is stored; mark it due now.

        One round trip for the whole batch. Returns how many records changed.
        """
        if not items:
            return 0
        keys: list[str] = []
        args: list[Any] = [self.ttl, now_ms]
        for dest, state in items:
            keys += [self.key(dest, state.cascade_id), self.due_key(dest)]
            args += [state.seq, encode(state), state.cascade_id]
        return int(await self._offer(keys=keys, args=args))

    async def load(self, dest: str, cascade_id: str) -> Record:
        """The record (empty if none), with posted/intended messages Redis lost put back from memory."""
        key = self.key(dest, cascade_id)
        raw = cast(dict[bytes, bytes], await self.client.hgetall(key))
        known = self._mirror.get((dest, cascade_id))
        if known:
            lost = {name: value for name, value in known.items() if name.encode() not in raw}
            if lost:
                metrics.RECORDS_RESTORED.labels(dest).inc()
                log.warning("alert_record_restored", destination=dest, cascade=cascade_id, fields=sorted(lost))
                pipe = self.client.pipeline(transaction=True)
                pipe.hset(key, mapping=cast(Any, lost))  # Mapping is invariant in its key type
                pipe.expire(key, self.ttl)
                await pipe.execute()
                raw.update({name.encode(): value.encode() for name, value in lost.items()})
        return _parse(raw)

    def _remember(self, dest: str, cascade_id: str, values: Mapping[str, str | int], drop: Sequence[str] = ()) -> None:
        """Mirror the ``m:``/``i:`` fields just written (``values``) or removed (``drop``)."""
        fields = {name: str(value) for name, value in values.items() if name[:2] in ("m:", "i:")}
        gone = [name for name in drop if name[:2] in ("m:", "i:")]
        if not fields and not gone:
            return
        entry = self._mirror.setdefault((dest, cascade_id), {})
        self._mirror.move_to_end((dest, cascade_id))
        entry.update(fields)
        for name in gone:
            entry.pop(name, None)
        while len(self._mirror) > MEMORY:
            self._mirror.popitem(last=False)

    async def due(self, dest: str, now_ms: int, limit: int = 50) -> list[str]:
        """Cascade ids of ``dest`` due at ``now_ms``, earliest first."""
        ids = await self.client.zrangebyscore(self.due_key(dest), "-inf", now_ms, start=0, num=limit)
        return [bytes(i).decode() for i in cast(list[bytes], ids)]

    async def next_due_ms(self, dest: str) -> float | None:
        """When the earliest pending cascade of ``dest`` is due (ms), or None."""
        first = await self.client.zrange(self.due_key(dest), 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def pending(self, dest: str) -> int:
        """Cascades of ``dest`` with work to do."""
        return int(await self.client.zcard(self.due_key(dest)))

    async def reschedule(self, dest: str, cascade_id: str, seq: int, at_ms: int) -> None:
        """Make ``cascade_id`` due at ``at_ms``, unless a state newer than ``seq`` arrived meanwhile
        (an escalation must not wait for the edit interval)."""
        await self._reschedule(keys=[self.key(dest, cascade_id), self.due_key(dest)], args=[cascade_id, seq, at_ms])

    async def intend(self, dest: str, cascade_id: str, tier: Tier, now_ms: int) -> None:
        """Write the intent to post at ``tier``, before the request is sent."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.key(dest, cascade_id), f"i:{tier}", now_ms)
        pipe.expire(self.key(dest, cascade_id), self.ttl)
        self._remember(dest, cascade_id, {f"i:{tier}": now_ms})  # before: the post may go out even if this fails
        await pipe.execute()

    async def drop_intent(self, dest: str, cascade_id: str, tier: Tier) -> None:
        """Remove the intent after an answer proving the post was not made."""
        await self.client.hdel(self.key(dest, cascade_id), f"i:{tier}")
        self._remember(dest, cascade_id, {}, drop=[f"i:{tier}"])

    async def commit(
        self, dest: str, cascade_id: str, seq: int, values: dict[str, str | int] | None = None, drop: Sequence[str] = ()
    ) -> None:
        """Record ``seq`` as handled with ``values`` set and ``drop`` fields removed, atomically;
        the cascade leaves the due set unless a newer state arrived meanwhile."""
        pairs = [x for item in (values or {}).items() for x in item]
        args: list[Any] = [cascade_id, seq, self.ttl, len(values or {}), *pairs, *drop]
        await self._commit(keys=[self.key(dest, cascade_id), self.due_key(dest)], args=args)
        self._remember(dest, cascade_id, values or {}, drop)
