"""Process life of a service: logging, metrics/health server, signals, graceful shutdown.

Each service's ``main`` loads its settings and calls :func:`run_service` (or :func:`run_redis_service`,
which adds the service's Redis client and its health check) with its body coroutine. The body receives a
:class:`ServiceContext`; it runs until ``ctx.stop`` is set (SIGTERM or SIGINT), then
stops reading, drains and flushes, and returns. If it has not returned ``drain_timeout`` seconds after
the signal it is cancelled. A second signal cancels at once. The process exits 0 after a clean stop and
1 if the body failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from liq_common.logs import configure_logging
from liq_common.observability import Health, ObservabilityServer
from liq_common.settings import CommonSettings, describe

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = structlog.get_logger(__name__)


@dataclass
class ServiceContext:
    """What a service body gets: the stop signal, its health checks and the bound metrics port."""

    service: str
    stop: asyncio.Event
    health: Health
    metrics_port: int


Body = Callable[[ServiceContext], Coroutine[Any, Any, None]]
RedisBody = Callable[[ServiceContext, "aioredis.Redis"], Coroutine[Any, Any, None]]


async def serve(service: str, settings: CommonSettings, body: Body, drain_timeout: float = 20.0) -> int:
    """Run ``body`` with signal handling and the observability server; returns the exit status."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    task: asyncio.Task[None] | None = None

    def on_signal(signame: str) -> None:
        if stop.is_set():
            log.warning("second_signal_cancelling", signal=signame)
            if task is not None:
                task.cancel()
            return
        log.info("stop_requested", signal=signame)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    health = Health()
    server = ObservabilityServer(health, settings.metrics_host, settings.metrics_port)
    await server.start()
    log.info("service_started", settings=describe(settings), metrics_port=server.port)
    ctx = ServiceContext(service=service, stop=stop, health=health, metrics_port=server.port)
    task = asyncio.create_task(body(ctx), name=f"{service}-body")
    status = 0
    try:
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait((task, stopper), return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not task.done():
            done, _ = await asyncio.wait((task,), timeout=drain_timeout)
            if not done:
                log.error("drain_timeout_cancelling", seconds=drain_timeout)
                task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            status = 0 if stop.is_set() else 1
        except Exception:
            log.exception("service_failed")
            status = 1
    finally:
        await server.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("service_stopped", status=status)
    return status


def run_service(service: str, settings: CommonSettings, body: Body, drain_timeout: float = 20.0) -> None:
    """Configure logging, run ``body`` on uvloop (when installed) and exit with its status."""
    configure_logging(service, settings.log_level, settings.log_format)
    try:
        import uvloop

        runner: Callable[..., int] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run
    sys.exit(runner(serve(service, settings, body, drain_timeout)))


async def watch_redis(ctx: ServiceContext, client: object, interval: float = 5.0) -> None:
    """Keep the ``redis`` health check current by pinging every ``interval`` seconds until stop."""
    from liq_common.streams import REDIS_DOWN

    ping = client.ping  # type: ignore[attr-defined]
    while not ctx.stop.is_set():
        try:
            await ping()
            ctx.health.set("redis", True)
        except REDIS_DOWN as exc:
            ctx.health.set("redis", False, str(exc))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval):
                await ctx.stop.wait()


def run_redis_service(service: str, settings: CommonSettings, body: RedisBody, drain_timeout: float = 20.0) -> None:
    """:func:`run_service` with one Redis client for the body (bytes replies, ``settings.redis_url``).

    The ``redis`` health check follows that client (:func:`watch_redis`); the client is closed after the
    body returned, so everything the body flushed on its way out went through it.
    """
    from liq_common.streams import connect_redis

    async def with_redis(ctx: ServiceContext) -> None:
        client = connect_redis(settings.redis_url)
        watcher = asyncio.create_task(watch_redis(ctx, client), name=f"{service}-redis-health")
        try:
            await body(ctx, client)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await client.aclose()

    run_service(service, settings, with_redis, drain_timeout)
