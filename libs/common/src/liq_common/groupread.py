"""How one consumer of a group gets its entries from Redis, and samples the group's backlog.

Entries come back raw, as ``(entry id, [field, value, ...])`` with the fields ``None`` for a pending
entry the stream no longer holds (trimmed by ``MAXLEN`` before it was processed):

* :func:`read_group`: ``XREADGROUP`` of the consumer's own pending entries or of new ones;
* :func:`claim_idle`: ``XAUTOCLAIM`` of entries other (dead) consumers left pending too long;
* :func:`update_gauges`: ``XLEN`` and ``XINFO GROUPS`` into the stream-length, pending and lag gauges.

Decoding, handling, acknowledging and dead-lettering are
:class:`~liq_common.consumer.ConsumerRunner`'s.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from prometheus_client import Gauge
from structlog.typing import FilteringBoundLogger

from liq_common import metrics, rawpipe

RawEntry = tuple[bytes, list[bytes] | None]
"""A stream entry as read: (entry id, flat field/value list, or ``None`` if trimmed meanwhile)."""


async def read_group(
    client: aioredis.Redis,
    stream: str,
    group: str,
    consumer: str,
    *,
    count: int,
    block_ms: int,
    pending: bool,
) -> list[RawEntry]:
    """One ``XREADGROUP`` of up to ``count`` entries as ``consumer``; empty if none came.

    With ``pending`` it re-reads the consumer's own pending entries (ID ``0``: delivered, never
    acknowledged) without blocking; otherwise it reads new entries (``>``), blocking up to ``block_ms``
    milliseconds for one to arrive.
    """
    read_id = b"0" if pending else b">"
    command: list[bytes | str | int] = [
        b"XREADGROUP",
        b"GROUP",
        group,
        consumer,
        b"COUNT",
        count,
    ]
    if not pending:
        command += [b"BLOCK", block_ms]
    command += [b"STREAMS", stream, read_id]
    # Raw reply, parsed here rather than by redis-py's callbacks (half the per-entry cost): None on
    # timeout, else {stream: [[id, [field, value, ...]], ...]} (RESP3) or [[stream, [...]]] (RESP2);
    # fields are None for a pending entry trimmed meanwhile.
    (reply,) = await rawpipe.execute(client, [command])
    entries: list[RawEntry]
    if not reply:
        entries = []
    elif isinstance(reply, dict):
        entries = next(iter(reply.values()))
    else:
        entries = reply[0][1]
    return entries


async def claim_idle(
    client: aioredis.Redis,
    stream: str,
    group: str,
    consumer: str,
    min_idle_ms: int,
    count: int,
    log: FilteringBoundLogger,
) -> list[RawEntry]:
    """Take over up to ``count`` entries pending longer than ``min_idle_ms`` milliseconds (``XAUTOCLAIM``).

    Returns the claimed entries, now pending for ``consumer``. Pending entries the stream no longer
    holds are not returned: ``XAUTOCLAIM`` drops them from the pending list, and they are counted in
    ``liq_consumer_trimmed_pending_total`` and logged as an error (data loss).
    """
    reply = await client.xautoclaim(stream, group, consumer, min_idle_ms, start_id="0-0", count=count)
    claimed = reply[1]
    deleted = reply[2] if len(reply) > 2 else []
    if deleted:
        metrics.TRIMMED_PENDING.labels(stream, group).inc(len(deleted))
        log.error("pending_entries_trimmed", count=len(deleted), via="xautoclaim")
    if not claimed:
        return []
    log.info("entries_claimed", count=len(claimed))
    return [(entry_id, [x for kv in fields.items() for x in kv] if fields else None) for entry_id, fields in claimed]


async def update_gauges(client: aioredis.Redis, stream: str, group: str, pending: Gauge, lag: Gauge) -> None:
    """Sample the stream's length and ``group``'s pending count and lag (entries not yet delivered).

    ``pending`` and ``lag`` are the group's children of the consumer gauges. The lag keeps its last
    value when Redis does not report one (before Redis 7, or when deletions make it unknown).
    """
    metrics.STREAM_LENGTH.labels(stream).set(await client.xlen(stream))
    for info in await client.xinfo_groups(stream):
        if info.get("name") in (group, group.encode()):
            pending.set(info.get("pending") or 0)
            group_lag = info.get("lag")
            if group_lag is not None:
                lag.set(group_lag)
