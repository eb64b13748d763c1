"""Dead letters of a consumer group, and the one round trip that settles a handled batch.

An entry a consumer gives up on (it does not decode, or the handler failed on it ``max_attempts``
times) is copied to a dead-letter stream with these fields:

* ``stream``, ``group``, ``id``: where it came from (``id`` is the original entry ID);
* ``reason``: ``decode: <error>`` or ``handler: <error> after <n> attempts``; the text before the first
  colon is the ``reason`` label of ``liq_dead_letters_total``;
* the codec's payload field (:data:`~liq_common.codec.FIELD`): the raw payload, unchanged;
* ``ts``: when it was dead-lettered, in milliseconds since the Unix epoch.

:func:`settle` adds the dead letters and acknowledges the batch in one pipelined round trip, so an
entry is never acknowledged without its dead letter having been written first.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis
from structlog.typing import FilteringBoundLogger

from liq_common import metrics, rawpipe
from liq_common.codec import FIELD
from liq_common.logs import truncate

DeadLetter = tuple[bytes, bytes, str]
"""An entry to dead-letter: (entry ID, raw payload, reason)."""


def dead_fields(stream: str, group: str, entry_id: bytes, raw: bytes, reason: str) -> list[bytes | str]:
    """Field/value pairs of a dead-letter entry (flattened for XADD); ``ts`` is epoch milliseconds now."""
    return [
        b"stream",
        stream,
        b"group",
        group,
        b"id",
        entry_id,
        b"reason",
        reason,
        FIELD,
        raw,
        b"ts",
        str(int(time.time() * 1000)),
    ]


async def settle(
    client: aioredis.Redis,
    stream: str,
    group: str,
    dead_stream: str,
    dead_maxlen: int,
    done: list[bytes],
    dead: list[DeadLetter],
    log: FilteringBoundLogger,
) -> None:
    """Dead-letter ``dead`` and acknowledge ``done`` and ``dead`` on ``stream`` in one round trip.

    Each dead letter is an ``XADD`` to ``dead_stream`` capped at about ``dead_maxlen`` entries
    (``MAXLEN ~``); one ``XACK`` of every ID follows in the same pipeline. Each dead letter is then
    counted in ``liq_dead_letters_total`` and logged as an error with a sample of its payload.

    Raises:
        redis.exceptions.ResponseError: A Redis error reply (e.g. ``NOGROUP``).
        liq_common.streams.REDIS_DOWN: Redis unreachable; whether anything was written is unknown.
    """
    commands: list[list[bytes | str | int]] = [
        [
            b"XADD",
            dead_stream,
            b"MAXLEN",
            b"~",
            dead_maxlen,
            b"*",
            *dead_fields(stream, group, entry_id, raw, reason),
        ]
        for entry_id, raw, reason in dead
    ]
    commands.append([b"XACK", stream, group, *done, *(d[0] for d in dead)])
    await rawpipe.execute(client, commands)
    for entry_id, raw, reason in dead:
        kind = reason.split(":", 1)[0]
        metrics.DEAD_LETTERS.labels(stream, group, kind).inc()
        log.error("entry_dead_lettered", id=entry_id.decode(), reason=reason, sample=truncate(raw))
