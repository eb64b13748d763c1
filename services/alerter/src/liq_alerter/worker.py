"""One worker per destination: takes due cascades from Redis, decides, sends, records.

Workers are independent asyncio tasks with their own HTTP client, pacer and backoff, so a slow,
rate-limited or dead destination only ever delays itself; the stream consumer never waits on them.

Exactly-one message per cascade and tier, around the non-atomic "send, then record":

1. the intent ``i:<tier>`` is written to the record *before* the post is sent;
2. the post is sent;
3. the message id is written and the intent removed in one atomic step.

An answer proving the post was not made (429, 5xx, connection refused, 400) removes the intent
before any retry. A crash (kill -9) between 1 and 3, or a post with no answer (read timeout,
connection lost), leaves an intent without a message id: the outcome is unknown, and that tier is
never posted again (counted in ``liq_alerter_post_outcome_unknown_total`` and logged). So a message
may be *missing* in that window, and is never *doubled*; later tiers of the cascade still post. Edits
are idempotent (the whole message is replaced), so they are simply retried.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import msgspec
import redis.asyncio as aioredis
import structlog

from liq_alerter import metrics
from liq_alerter.delivery import Pacer, Result, Sink, now_ms
from liq_alerter.destinations import Destination
from liq_alerter.plan import Edit, Nothing, Post, Wait, plan
from liq_alerter.records import Record, Records
from liq_common.backoff import Backoff
from liq_common.codec import FIELD, encode
from liq_common.events import Cascade, Tier
from liq_common.observability import Health
from liq_common.streams import REDIS_DOWN

log = structlog.get_logger(__name__)


class Worker:
    """Delivers the alerts of one destination.

    Args:
        dest: The destination.
        sink: Its platform client.
        records: The idempotency records.
        pacer: Request spacing and platform-requested holds.
        edit_interval: Least seconds between two edits of one message.
        max_attempts: Attempts of a request before it is given up (429s not counted).
        backoff: Delay between failed attempts.
        dead_stream: Where given-up alerts go.
        health: Reports ``destination:<name>``.
    """

    def __init__(
        self,
        dest: Destination,
        sink: Sink,
        records: Records,
        pacer: Pacer,
        *,
        edit_interval: float,
        max_attempts: int,
        backoff: Backoff,
        dead_stream: str,
        health: Health,
    ) -> None:
        self.dest = dest
        self.name = dest.name
        self.sink = sink
        self.records = records
        self.pacer = pacer
        self.interval_ms = int(edit_interval * 1000)
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.dead_stream = dead_stream
        self.health = health
        self.disabled = False
        self._wake = asyncio.Event()
        self._redis_backoff = Backoff(base=0.1, cap=5.0, reset_after=0)
        self._log = log.bind(destination=dest.name, kind=dest.kind)
        self._pending = metrics.PENDING.labels(dest.name)
        metrics.DESTINATION_UP.labels(dest.name).set(1)
        health.set(f"destination:{dest.name}", True)

    @property
    def client(self) -> aioredis.Redis:
        """The Redis client of the records."""
        return self.records.client

    def wake(self) -> None:
        """New work was offered: look at the due set now."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set (the request in hand is finished) or the destination is disabled."""
        while not stop.is_set() and not self.disabled:
            self._wake.clear()
            try:
                due = await self.records.due(self.name, now_ms())
                for cascade_id in due:
                    if stop.is_set() or self.disabled:
                        return
                    await self._guarded(cascade_id, stop)
                if due:
                    continue
                next_ms = await self.records.next_due_ms(self.name)
                self._pending.set(await self.records.pending(self.name))
            except REDIS_DOWN as exc:
                self._log.warning("alert_worker_redis_unreachable", error=type(exc).__name__)
                await self._sleep(stop, self._redis_backoff.next_delay())
                continue
            self._redis_backoff.reset()
            timeout = 30.0 if next_ms is None else min(30.0, max(0.0, (next_ms - now_ms()) / 1000))
            await self._sleep(stop, timeout, self._wake)

    async def _sleep(self, stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> None:
        waiters = [asyncio.ensure_future(stop.wait())]
        if wake is not None:
            waiters.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _guarded(self, cascade_id: str, stop: asyncio.Event) -> None:
        """One cascade; a bug in handling it dead-letters that cascade instead of looping on it."""
        try:
            await self._step(cascade_id, stop)
        except REDIS_DOWN:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad cascade must not stop a destination
            self._log.exception("alert_step_failed", cascade_id=cascade_id, error=type(exc).__name__)
            try:
                record = await self.records.load(self.name, cascade_id)
            except (msgspec.DecodeError, msgspec.ValidationError):
                record = Record()  # the stored state itself is unreadable: nothing to dead-letter
            if record.want is not None:
                await self._dead_letter(record.want, "error", type(exc).__name__)
            await self.client.zrem(self.records.due_key(self.name), cascade_id)

    async def _step(self, cascade_id: str, stop: asyncio.Event) -> None:
        record = await self.records.load(self.name, cascade_id)
        state = record.want
        if state is None:  # the record expired while still due: nothing left to do
            await self.client.zrem(self.records.due_key(self.name), cascade_id)
            return
        action = plan(record, state, self.dest.min_tier, now_ms(), self.interval_ms)
        if isinstance(action, Wait):
            await self.records.reschedule(self.name, cascade_id, state.seq, action.until_ms)
        elif isinstance(action, Nothing):
            values: dict[str, str | int] = {}
            if action.reason == "unknown_post":
                # Found after a restart: the process died between sending a post and recording it.
                for tier, since in record.intents.items():
                    if since > 0 and tier not in record.messages:
                        self._unknown(cascade_id, tier, "crashed before the answer was recorded")
                        values[f"i:{tier}"] = -1
            await self.records.commit(self.name, cascade_id, state.seq, values)
        elif isinstance(action, Post):
            await self._post(state, action.tier, stop)
        elif isinstance(action, Edit):
            await self._edit(state, action, stop)

    async def _post(self, state: Cascade, tier: Tier, stop: asyncio.Event) -> None:
        cid = state.cascade_id

        async def intend() -> None:
            await self.records.intend(self.name, cid, tier, now_ms())

        async def not_posted() -> None:
            await self.records.drop_intent(self.name, cid, tier)

        result = await self._send("post", lambda: self.sink.post(state), stop, intend, not_posted)
        if result is None or result.kind == "gone":
            return
        if result.kind == "ok":
            sent = now_ms()
            values: dict[str, str | int] = {f"m:{tier}": result.message_id, "edited": sent}
            await self._durable(lambda: self.records.commit(self.name, cid, state.seq, values, drop=[f"i:{tier}"]))
            metrics.MESSAGES.labels(self.name, "post").inc()
            if state.emitted_ts:
                metrics.POST_DELAY.labels(self.name).observe(max(0, sent - state.emitted_ts) / 1000)
            self._log.info("alert_posted", cascade_id=cid, tier=tier, seq=state.seq, message_id=result.message_id)
            return
        if result.kind == "unknown":
            self._unknown(cid, tier, result.detail)
            await self.records.commit(self.name, cid, state.seq, {f"i:{tier}": -1})
            return
        await self._dead_letter(state, result.kind, result.detail)
        await self.records.commit(self.name, cid, state.seq)

    def _unknown(self, cascade_id: str, tier: Tier, detail: str) -> None:
        """Report a post whose outcome is unknown (the intent stays, marked reported with -1)."""
        metrics.UNKNOWN_POSTS.labels(self.name).inc()
        self._log.error(
            "alert_post_outcome_unknown",
            cascade_id=cascade_id,
            tier=tier,
            detail=detail,
            consequence="not re-sent (it may have been posted); later tiers still post",
        )

    async def _edit(self, state: Cascade, action: Edit, stop: asyncio.Event) -> None:
        cid = state.cascade_id
        result = await self._send("edit", lambda: self.sink.edit(action.message_id, state), stop)
        if result is None or result.kind == "gone":
            return
        values: dict[str, str | int] = {}
        if result.kind == "ok":
            values["edited"] = now_ms()
            metrics.MESSAGES.labels(self.name, "edit").inc()
            self._log.debug("alert_edited", cascade_id=cid, tier=action.tier, seq=state.seq)
        elif result.kind == "message_gone":
            values[f"m:{action.tier}"] = ""
            self._log.warning("alert_message_deleted", cascade_id=cid, tier=action.tier, detail=result.detail)
        else:
            await self._dead_letter(state, result.kind, result.detail)
        await self._durable(lambda: self.records.commit(self.name, cid, state.seq, values))

    async def _send(
        self,
        action: str,
        call: Callable[[], Awaitable[Result]],
        stop: asyncio.Event,
        before: Callable[[], Awaitable[None]] | None = None,
        not_done: Callable[[], Awaitable[None]] | None = None,
    ) -> Result | None:
        """Send with pacing, 429 holds and retries; None if ``stop`` came while waiting to send."""
        attempts = 0
        self.backoff.reset()
        while True:
            if not await self.pacer.ready(stop):
                return None
            if before is not None:
                await before()
            self.pacer.started()
            result = await call()
            self.pacer.obey(result)
            metrics.REQUESTS.labels(self.name, action, result.kind).inc()
            if result.kind not in ("ok", "unknown") and not_done is not None:
                await self._durable(not_done)
            if result.kind == "rate_limited":
                metrics.RATE_LIMITED_SECONDS.labels(self.name).inc(result.wait)
                self._log.warning("alert_rate_limited", action=action, wait=result.wait, shared=result.shared)
                continue
            if result.kind == "retry":
                attempts += 1
                if attempts < self.max_attempts:
                    delay = self.backoff.next_delay()
                    self.pacer.backoff(delay)
                    self._log.warning(
                        "alert_request_failed", action=action, attempt=attempts, detail=result.detail, retry_in=delay
                    )
                    continue
            if result.kind == "gone":
                self._disable(result)
            return result

    async def _durable(self, write: Callable[[], Awaitable[object]]) -> None:
        """Run a record write that must not be lost (a message id), retrying while Redis is down."""
        while True:
            try:
                await write()
                return
            except REDIS_DOWN as exc:
                self._log.warning("alert_record_write_retry", error=type(exc).__name__)
                await asyncio.sleep(self._redis_backoff.next_delay())

    def _disable(self, result: Result) -> None:
        self.disabled = True
        metrics.DESTINATION_UP.labels(self.name).set(0)
        detail = f"disabled after HTTP {result.status}: {result.detail}"
        self.health.set(f"destination:{self.name}", False, detail)
        self._log.error(
            "destination_disabled",
            status=result.status,
            detail=result.detail,
            hint="the webhook was deleted or the token/chat is invalid; fix DESTINATIONS and restart",
        )

    async def _dead_letter(self, state: Cascade, reason: str, detail: str) -> None:
        metrics.DEAD.labels(self.name, reason).inc()
        self._log.error("alert_dead_lettered", cascade_id=state.cascade_id, seq=state.seq, reason=reason, detail=detail)
        fields = {
            b"stream": b"alerter",
            b"group": b"alerter",
            b"id": state.cascade_id.encode(),
            b"reason": f"alert:{self.name}:{reason}: {detail}".encode(),
            FIELD: encode(state),
            b"ts": str(now_ms()).encode(),
        }
        with contextlib.suppress(*REDIS_DOWN):
            await self.client.xadd(self.dead_stream, fields, maxlen=100_000, approximate=True)  # type: ignore[arg-type]
