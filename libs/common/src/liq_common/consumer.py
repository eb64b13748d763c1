"""The one Redis Streams consumer-group loop every consumer service runs.

Semantics (at-least-once; handlers must be idempotent):

* The group is created with ``MKSTREAM`` at ``start_id``; only ``BUSYGROUP`` (it exists) is swallowed.
* On start the consumer first re-reads its own pending entries (ID ``0``: delivered before a crash but
  never acknowledged), then new ones (``>``).
* Every ``claim_interval`` it takes over entries idle longer than ``claim_idle_ms`` from dead consumers
  (``XAUTOCLAIM``). Entries the stream no longer holds (trimmed by ``MAXLEN``) are counted as lost.
* A batch is acknowledged (``XACK``) only after the handler returned.
* An entry that does not decode goes to the dead-letter stream at once, with the reason.
* A handler error of a *transient* type (e.g. database down) leaves the batch pending and retries it
  with backoff, indefinitely: nothing is dead-lettered because a dependency is down.
* Any other handler error retries the entries one by one to isolate the poison one; an entry that
  fails ``max_attempts`` times goes to the dead-letter stream and the others carry on.
* ``NOGROUP`` (Redis restarted without persistence, or the key deleted) re-creates the group at ``0``.
* When ``stop`` is set the loop finishes the batch in hand, acknowledges it and returns.

The Redis reads are :mod:`liq_common.groupread`'s; the dead-letter format and the ack round trip are
:mod:`liq_common.deadletter`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import msgspec
import redis.asyncio as aioredis
import structlog
from redis.exceptions import ResponseError

from liq_common import metrics
from liq_common.backoff import Backoff
from liq_common.codec import FIELD, EntryDecodeError, EntryDecoder, encode
from liq_common.deadletter import DeadLetter, settle
from liq_common.groupread import RawEntry, claim_idle, read_group, update_gauges
from liq_common.streams import REDIS_DOWN, raise_if_cancelling

log = structlog.get_logger(__name__)

T = TypeVar("T", bound=msgspec.Struct)
Entry = tuple[bytes, T]
"""A decoded stream entry: (entry id, event)."""
Handler = Callable[[list[tuple[bytes, T]]], Awaitable[None]]


async def ensure_group(client: aioredis.Redis, stream: str, group: str, start_id: str = "0") -> bool:
    """Create consumer group ``group`` on ``stream`` (and the stream); True if it was created.

    Raises:
        ResponseError: Any Redis error other than ``BUSYGROUP``.
    """
    try:
        await client.xgroup_create(stream, group, id=start_id, mkstream=True)
    except ResponseError as exc:
        if str(exc).startswith("BUSYGROUP"):
            return False
        raise
    return True


class ConsumerRunner(Generic[T]):
    """Reads a stream as one consumer of a group and feeds decoded batches to ``handler``.

    Args:
        client: Redis client; its socket timeout must exceed ``block_ms``.
        stream: Stream key to read.
        group: Consumer group name (one per service).
        consumer: This process's consumer name, stable across restarts so pending entries come back.
        codec: Decoder for the stream's entries.
        handler: Coroutine handling a batch of ``(id, event)``; raising means "not processed".
        dead_stream: Where undecodable and poison entries go.
        transient: Exception types meaning "a dependency is down, retry later".
        batch_size: ``COUNT`` of each read.
        block_ms: ``BLOCK`` of each read, also the longest wait before ``stop`` is noticed.
        max_attempts: Handler failures after which an entry is dead-lettered.
        claim_idle_ms: Idle time after which another consumer's pending entry is claimed.
        claim_interval: Seconds between ``XAUTOCLAIM`` / lag-gauge rounds.
        dead_maxlen: Approximate cap of the dead-letter stream.
        start_id: Where a newly created group starts (``0`` = whole stream, ``$`` = new entries only).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        stream: str,
        group: str,
        consumer: str,
        codec: EntryDecoder[T],
        handler: Handler[T],
        dead_stream: str,
        transient: tuple[type[BaseException], ...] = (),
        batch_size: int = 500,
        block_ms: int = 1000,
        max_attempts: int = 3,
        claim_idle_ms: int = 60_000,
        claim_interval: float = 15.0,
        dead_maxlen: int = 100_000,
        start_id: str = "0",
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.codec = codec
        self.handler = handler
        self.dead_stream = dead_stream
        self.transient = transient
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.max_attempts = max_attempts
        self.claim_idle_ms = claim_idle_ms
        self.claim_interval = claim_interval
        self.dead_maxlen = dead_maxlen
        self.start_id = start_id
        self.backoff = backoff or Backoff(base=0.1, cap=5.0, reset_after=0)
        self.processed = 0
        self.dead = 0
        self.healthy = True
        self._attempts: dict[bytes, int] = {}
        self._read_pending = True
        self._next_claim = 0.0
        labels = (stream, group)
        self._acked = metrics.CONSUMED.labels(stream, group, "acked")
        self._retried = metrics.CONSUMED.labels(stream, group, "retried")
        self._dead = metrics.CONSUMED.labels(stream, group, "dead")
        self._seconds = metrics.HANDLER_SECONDS.labels(*labels)
        self._lag = metrics.CONSUMER_LAG.labels(*labels)
        self._pending = metrics.CONSUMER_PENDING.labels(*labels)
        self._transient = metrics.HANDLER_RETRIES.labels(*labels)
        self._log = log.bind(stream=stream, group=group, consumer=consumer)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; returns after the batch in hand is acknowledged."""
        await self._with_redis(stop, lambda: ensure_group(self.client, self.stream, self.group, self.start_id))
        while not stop.is_set():
            raise_if_cancelling()
            try:
                await self.poll_once()
            except ResponseError as exc:
                # NOGROUP: the group is gone. UNBLOCKED: the key was deleted while we were blocked on it.
                if not str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                    raise
                await self._recreate_group()
            except self.transient as exc:
                # Before REDIS_DOWN: a transient type may itself be an OSError (e.g. TimeoutError).
                self._log.warning("handler_transient_error", error=repr(exc))
                await self._pause(stop)
            except REDIS_DOWN as exc:
                await self._redis_down(exc, stop)
            else:
                if not self.healthy:
                    self._log.info("consumer_redis_recovered")
                self.healthy = True
                self.backoff.reset()

    async def poll_once(self) -> int:
        """One round: maybe claim idle entries, then read one batch and process it. Returns entries read."""
        if time.monotonic() >= self._next_claim:
            self._next_claim = time.monotonic() + self.claim_interval
            await self._claim_idle()
            await update_gauges(self.client, self.stream, self.group, self._pending, self._lag)
        entries = await read_group(
            self.client,
            self.stream,
            self.group,
            self.consumer,
            count=self.batch_size,
            block_ms=self.block_ms,
            pending=self._read_pending,
        )
        if self._read_pending and not entries:
            self._read_pending = False
        if entries:
            await self._process(entries)
        return len(entries)

    async def _process(self, entries: Sequence[RawEntry]) -> None:
        batch: list[tuple[bytes, T]] = []
        dead: list[DeadLetter] = []
        trimmed: list[bytes] = []
        decode = self.codec.decode_flat
        for entry_id, fields in entries:
            if not fields:
                # A pending entry the stream no longer holds: trimmed by MAXLEN before we processed it.
                trimmed.append(entry_id)
                continue
            try:
                batch.append((entry_id, decode(fields)))
            except EntryDecodeError as exc:
                raw = next((v for k, v in zip(fields[::2], fields[1::2], strict=False) if k == FIELD), b"")
                dead.append((entry_id, raw, f"decode: {exc}"))
        if trimmed:
            metrics.TRIMMED_PENDING.labels(self.stream, self.group).inc(len(trimmed))
            self._log.error("pending_entries_trimmed", count=len(trimmed), first=trimmed[0].decode())
        done: list[bytes] = list(trimmed)
        if batch:
            ok, failed = await self._handle(batch)
            done.extend(ok)
            dead.extend(failed)
        await self._ack(done, dead)

    async def _handle(self, batch: list[tuple[bytes, T]]) -> tuple[list[bytes], list[DeadLetter]]:
        """Run the handler; returns (ids to ack, entries to dead-letter). Raises transient errors."""
        started = time.perf_counter()
        try:
            await self.handler(batch)
        except self.transient:
            self._transient.inc()
            self._retried.inc(len(batch))
            self._read_pending = True
            raise
        except Exception as exc:  # noqa: BLE001 - any handler bug must isolate the entry, not kill the loop
            self._retried.inc(len(batch))
            self._log.warning("handler_failed", error=repr(exc), batch=len(batch))
            if len(batch) == 1:
                return self._count_failure(batch[0], exc)
            ok: list[bytes] = []
            dead: list[DeadLetter] = []
            for item in batch:
                item_ok, item_dead = await self._handle([item])
                ok.extend(item_ok)
                dead.extend(item_dead)
            return ok, dead
        self._seconds.observe(time.perf_counter() - started)
        for entry_id, _ in batch:
            self._attempts.pop(entry_id, None)
        return [entry_id for entry_id, _ in batch], []

    def _count_failure(self, item: tuple[bytes, T], exc: Exception) -> tuple[list[bytes], list[DeadLetter]]:
        entry_id, event = item
        attempts = self._attempts.get(entry_id, 0) + 1
        if attempts < self.max_attempts:
            self._attempts[entry_id] = attempts
            self._read_pending = True  # redeliver it from our pending list on the next round
            return [], []
        self._attempts.pop(entry_id, None)
        return [], [(entry_id, encode(event), f"handler: {exc!r} after {attempts} attempts")]

    async def _ack(self, done: list[bytes], dead: list[DeadLetter]) -> None:
        if not done and not dead:
            return
        await settle(self.client, self.stream, self.group, self.dead_stream, self.dead_maxlen, done, dead, self._log)
        self.processed += len(done)
        self._acked.inc(len(done))
        if dead:
            self.dead += len(dead)
            self._dead.inc(len(dead))

    async def _claim_idle(self) -> None:
        claimed = await claim_idle(
            self.client, self.stream, self.group, self.consumer, self.claim_idle_ms, self.batch_size, self._log
        )
        if claimed:
            await self._process(claimed)

    async def _recreate_group(self) -> None:
        metrics.GROUP_RECREATED.labels(self.stream, self.group).inc()
        self._log.warning("consumer_group_missing_recreating")
        self._attempts.clear()
        await ensure_group(self.client, self.stream, self.group, "0")
        self._read_pending = False

    async def _redis_down(self, exc: BaseException, stop: asyncio.Event) -> None:
        if self.healthy:
            self._log.warning("consumer_redis_unreachable", error=str(exc))
        self.healthy = False
        self._read_pending = True
        await self._pause(stop)

    async def _pause(self, stop: asyncio.Event) -> None:
        """Sleep one backoff delay, or less if ``stop`` is set meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.backoff.next_delay()):
                await stop.wait()

    async def _with_redis(self, stop: asyncio.Event, call: Callable[[], Awaitable[Any]]) -> None:
        while not stop.is_set():
            try:
                await call()
                return
            except REDIS_DOWN as exc:
                await self._redis_down(exc, stop)
