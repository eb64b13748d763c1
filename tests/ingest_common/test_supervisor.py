"""The shared websocket supervisor against a real server (the simulator's Binance endpoint)."""

from __future__ import annotations

import asyncio
import random
import time
from decimal import Decimal

from websockets.asyncio.client import ClientConnection

from liq_common.backoff import Backoff
from liq_common.ingest.connection import ConnectOptions, WsSupervisor
from liq_common.ingest.metrics import RECONNECTS, FeedMetrics
from liq_common.observability import Health
from liq_exchange_sim import SimConfig, Simulator
from tests.ingest_common.harness import open_connections
from tests.ingest_common.truth import records
from tests.waiting import eventually


async def _read(ws: ClientConnection) -> str | None:
    while True:
        await ws.recv()


async def test_backoff_grows_on_failures_and_resets_after_a_healthy_connection() -> None:
    """Refused handshakes add backoff attempts; a connection up longer than reset_after clears them."""
    async with Simulator(SimConfig(binance_throttle_ms=1)) as sim:
        sim.set_faults("binance_usdm", refuse_status=503, refuse_count=3)
        backoff = Backoff(base=0.01, cap=0.05, reset_after=0.3, rng=random.Random(1))
        health = Health()
        metrics = FeedMetrics("binance", "linear")
        before = RECONNECTS.labels("binance", "linear", "http_503")._value.get()
        supervisor = WsSupervisor(
            f"{sim.binance_usdm_ws}/market/ws/!forceOrder@arr", _read, metrics, ConnectOptions(), backoff=backoff,
            health=health,
        )  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(supervisor.run(stop))
        try:
            await eventually(lambda: open_connections(sim, "binance_usdm") == 1)
            assert backoff.attempts == 3
            assert health.checks["binance_linear"].ok
            opened_at = time.monotonic()
            await eventually(lambda: time.monotonic() - opened_at > 0.35)  # healthy for longer than reset_after
            sim.set_faults("binance_usdm", drop_after_frames=1)
            sim.emit(records("binance", "linear", {"BTCUSDT": Decimal(65000)}, 1, int(time.time() * 1000) - 5000))
            await eventually(lambda: supervisor.reasons["connection_lost"] == 1)
            await eventually(lambda: supervisor.opened == 2)
            assert backoff.attempts == 1  # reset to 0 by the healthy period, then one reconnect delay
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=10)
        assert RECONNECTS.labels("binance", "linear", "http_503")._value.get() - before == 3
        assert not health.checks["binance_linear"].ok
        assert metrics.connected._value.get() == 0
