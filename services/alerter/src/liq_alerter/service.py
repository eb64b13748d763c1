"""The alerter: reads cascade states from the stream and hands them to one worker per destination.

Acknowledging: the stream handler never waits for Discord or Telegram. For each batch it stores the
newest state per (destination, cascade) in the destinations' Redis records and due sets (one script
call), then returns, and the consumer runner acknowledges the batch. The records are the durable
queue from then on: a restart finds every unfinished alert in the due sets, so acknowledging early
loses nothing, and a slow destination can neither block the stream nor delay another destination.
If that Redis write fails the batch is not acknowledged and comes back (at-least-once); the scripts
ignore a state whose ``seq`` is not newer than the stored one, so redeliveries change nothing.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TextIO

import redis.asyncio as aioredis
import structlog

from liq_alerter import metrics
from liq_alerter.console import ConsoleSink
from liq_alerter.delivery import Gate, Pacer, Sink, now_ms
from liq_alerter.destinations import Destination, Redactor
from liq_alerter.discord import DiscordSink
from liq_alerter.records import Records
from liq_alerter.settings import Settings
from liq_alerter.telegram import TelegramSink
from liq_alerter.worker import Worker
from liq_common.backoff import Backoff
from liq_common.codec import CASCADES
from liq_common.consumer import ConsumerRunner
from liq_common.events import Cascade
from liq_common.observability import Health
from liq_common.streams import REDIS_DOWN

log = structlog.get_logger(__name__)

GROUP = "alerter"


def make_sink(dest: Destination, settings: Settings, redact: Redactor, console: TextIO | None = None) -> Sink:
    """The platform client for ``dest``."""
    if dest.kind == "discord":
        return DiscordSink(dest.secret.get(), settings.discord_api_base, settings.http_timeout, redact)
    if dest.kind == "telegram":
        return TelegramSink(dest.secret.get(), dest.chat_id, settings.telegram_api_base, settings.http_timeout, redact)
    return ConsoleSink(console)


class Alerter:
    """Consumer plus destination workers.

    Args:
        settings: Service settings.
        destinations: Parsed ``DESTINATIONS``.
        client: Redis client (its socket timeout must exceed ``block_ms``).
        health: Where destination health is reported.
        console: Stream of console sinks (standard output by default).
    """

    def __init__(
        self,
        settings: Settings,
        destinations: list[Destination],
        client: aioredis.Redis,
        health: Health | None = None,
        console: TextIO | None = None,
    ) -> None:
        self.settings = settings
        self.health = health or Health()
        self.records = Records(client, settings.key_prefix, settings.state_ttl)
        redact = Redactor(destinations)
        # Discord's global limit is per IP for webhooks: one shared gate for all Discord destinations.
        shared = {"discord": Gate(), "telegram": Gate(), "console": Gate()}
        self.workers = [
            Worker(
                dest,
                make_sink(dest, settings, redact, console),
                self.records,
                Pacer(dest.min_interval, shared[dest.kind]),
                edit_interval=settings.edit_interval,
                max_attempts=settings.max_attempts,
                backoff=Backoff(base=settings.retry_base, cap=settings.retry_cap, reset_after=0),
                dead_stream=settings.dead_stream,
                health=self.health,
            )
            for dest in destinations
        ]
        self.runner: ConsumerRunner[Cascade] = ConsumerRunner(
            client,
            stream=settings.cascades_stream,
            group=GROUP,
            consumer=settings.consumer_name or socket.gethostname(),
            codec=CASCADES,
            handler=self.handle,
            dead_stream=settings.dead_stream,
            transient=REDIS_DOWN,
            batch_size=settings.batch_size,
            block_ms=settings.block_ms,
            dead_maxlen=settings.stream_maxlen,
        )

    async def handle(self, batch: list[tuple[bytes, Cascade]]) -> None:
        """Offer each state to the destinations that want its asset; returns once it is in Redis."""
        now = now_ms()
        oldest = now - self.settings.max_state_age * 1000
        newest: dict[tuple[str, str], Cascade] = {}
        for _, state in batch:
            if max(state.emitted_ts, state.window_end) < oldest:
                metrics.SKIPPED.labels("stale").inc()
                continue
            for worker in self.workers:
                if worker.disabled or not worker.dest.wants(state.base):
                    continue
                key = (worker.name, state.cascade_id)
                if key not in newest or newest[key].seq < state.seq:
                    newest[key] = state
        changed = await self.records.offer([(dest, state) for (dest, _), state in newest.items()], now)
        if changed:
            touched = {dest for dest, _ in newest}
            for worker in self.workers:
                if worker.name in touched:
                    worker.wake()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume and deliver until ``stop`` is set; requests in flight finish, queued work stays in Redis."""
        log.info(
            "alerter_destinations",
            destinations=[
                {"name": w.dest.name, "kind": w.dest.kind, "min_tier": w.dest.min_tier, "assets": sorted(w.dest.assets)}
                for w in self.workers
            ],
        )
        tasks = [asyncio.create_task(self._work(w, stop), name=f"alert-{w.name}") for w in self.workers]
        try:
            await self.runner.run(stop)
        finally:
            await self._end(tasks, cancel=not stop.is_set())
            for worker in self.workers:
                await worker.sink.aclose()

    @staticmethod
    async def _end(tasks: list[asyncio.Task[None]], *, cancel: bool) -> None:
        """Wait for the workers; when cancelling, cancel again until they are gone.

        On Python 3.11 a cancellation that coincides with the completion of an inner awaitable (e.g.
        in ``asyncio.wait_for``) can be lost, so one ``cancel()`` is not a guarantee.
        """
        pending = set(tasks)
        while pending:
            if cancel:
                for task in pending:
                    task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0 if cancel else None)

    async def _work(self, worker: Worker, stop: asyncio.Event) -> None:
        """Run one worker; a crash (a bug) is logged and shown in /health, the others carry on."""
        try:
            await worker.run(stop)
        except Exception:  # reported here: nothing awaits the task's exception
            log.exception("alert_worker_crashed", destination=worker.name)
            self.health.set(f"destination:{worker.name}", False, "worker crashed")
