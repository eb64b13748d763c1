"""Redis connection and the batching stream producer.

The producer never makes one round trip per event: :meth:`StreamProducer.put` only appends to an
in-memory buffer and a background flusher sends everything buffered in one pipelined batch of
``XADD ... MAXLEN ~ N``. While one batch is on the wire the next accumulates, so batches grow with load
and latency stays at one round trip when the feed is calm. If Redis is unreachable the batch is kept and
retried with jittered backoff; ``put`` blocks once ``max_buffer`` events wait (back-pressure), so memory
stays bounded and nothing is dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable

import msgspec
import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from liq_common import metrics, rawpipe
from liq_common.backoff import Backoff
from liq_common.codec import FIELD, encode

log = structlog.get_logger(__name__)

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
"""Errors that mean "Redis is unreachable right now", retried by producers and consumers."""


def raise_if_cancelling() -> None:
    """Raise :class:`asyncio.CancelledError` if this task was asked to cancel and is still running.

    Retry loops call this once per round. A cancellation can be consumed on the way without ending the
    task: a library that turns it into an error the loop retries (a timeout context that expires at the
    same moment, a connection cleanup that raises its own error), leaving a task that ``cancelling()``
    yet runs forever, and a service that never exits after its drain timeout.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def connect_redis(url: str, *, socket_timeout: float = 30.0) -> aioredis.Redis:
    """An asyncio Redis client for ``url`` returning bytes (hiredis parses replies when installed).

    ``socket_timeout`` must exceed the longest ``XREADGROUP BLOCK`` used on the client.
    """
    return aioredis.Redis.from_url(
        url,
        decode_responses=False,
        socket_timeout=socket_timeout,
        socket_connect_timeout=5.0,
        health_check_interval=15,
    )


async def xadd_many(client: aioredis.Redis, stream: str, payloads: Iterable[bytes], maxlen: int) -> list[bytes]:
    """Add JSON payloads to ``stream`` in one pipelined round trip; returns the new entry ids."""
    head = (b"XADD", stream.encode(), b"MAXLEN", b"~", str(maxlen).encode(), b"*", FIELD)
    return await rawpipe.execute(client, [(*head, payload) for payload in payloads])


class StreamProducer:
    """Buffers events and publishes them to one stream in pipelined batches.

    Args:
        client: Redis client.
        stream: Stream key.
        maxlen: Approximate stream cap (``MAXLEN ~``).
        max_batch: Largest number of entries in one pipeline.
        max_buffer: Buffered events at which :meth:`put` starts waiting.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        stream: str,
        maxlen: int,
        *,
        max_batch: int = 1000,
        max_buffer: int = 100_000,
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        self.stream = stream
        self.maxlen = maxlen
        self.max_batch = max_batch
        self.max_buffer = max_buffer
        self.published = 0
        self.connected = True
        self._buffer: deque[bytes] = deque()
        self._has_data = asyncio.Event()
        self._has_room = asyncio.Event()
        self._has_room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._backoff = backoff or Backoff(base=0.2, cap=10.0, reset_after=0)
        self._buffered = metrics.PUBLISH_BUFFERED.labels(stream)
        self._published = metrics.PUBLISHED.labels(stream)
        self._seconds = metrics.PUBLISH_SECONDS.labels(stream)
        self._errors = metrics.PUBLISH_ERRORS.labels(stream)

    async def put(self, event: msgspec.Struct) -> None:
        """Queue one event; waits only when the buffer is full."""
        if len(self._buffer) >= self.max_buffer:
            self._has_room.clear()
            await self._has_room.wait()
        self._buffer.append(encode(event))
        self._idle.clear()
        self._has_data.set()

    async def put_many(self, events: Iterable[msgspec.Struct]) -> None:
        """Queue several events (one wake-up of the flusher)."""
        for event in events:
            if len(self._buffer) >= self.max_buffer:
                self._has_room.clear()
                await self._has_room.wait()
            self._buffer.append(encode(event))
        if self._buffer:
            self._idle.clear()
            self._has_data.set()

    @property
    def buffered(self) -> int:
        """Events waiting to be sent."""
        return len(self._buffer)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush batches until ``stop`` is set and the buffer is empty (the final drain).

        On shutdown the remaining buffer is flushed while Redis answers; if Redis stays down the loop
        keeps retrying until cancelled, and whatever is left is reported in the log.
        """
        try:
            while True:
                raise_if_cancelling()
                if not self._buffer:
                    self._idle.set()
                    if stop.is_set():
                        return
                    self._has_data.clear()
                    waiter = asyncio.ensure_future(self._has_data.wait())
                    stopper = asyncio.ensure_future(stop.wait())
                    await asyncio.wait((waiter, stopper), return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    stopper.cancel()
                    continue
                await self._flush_once()
        finally:
            if self._buffer:
                log.error("producer_unflushed_on_exit", stream=self.stream, events=len(self._buffer))

    async def _flush_once(self) -> None:
        batch = [self._buffer[i] for i in range(min(self.max_batch, len(self._buffer)))]
        started = time.perf_counter()
        try:
            await xadd_many(self.client, self.stream, batch, self.maxlen)
        except REDIS_DOWN as exc:
            self._errors.inc()
            if self.connected:
                log.warning("redis_publish_failed", stream=self.stream, error=str(exc), buffered=len(self._buffer))
            self.connected = False
            await asyncio.sleep(self._backoff.next_delay())
            return
        if not self.connected:
            log.info("redis_publish_recovered", stream=self.stream, buffered=len(self._buffer))
        self.connected = True
        self._backoff.reset()
        for _ in batch:
            self._buffer.popleft()
        self.published += len(batch)
        self._published.inc(len(batch))
        self._seconds.observe(time.perf_counter() - started)
        self._buffered.set(len(self._buffer))
        if len(self._buffer) < self.max_buffer:
            self._has_room.set()

    async def drained(self) -> None:
        """Wait until every queued event has been published."""
        await self._idle.wait()
