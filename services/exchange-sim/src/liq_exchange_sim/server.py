"""The simulator and its public test API: one listener per production host, REST on the same ports.

:class:`Simulator` owns the listeners' life, their addresses, the fault knobs, the instrument universe,
event input, scenarios and the wall-clock ticker; how a listener answers each request is
:mod:`liq_exchange_sim.listener`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import structlog
from websockets.asyncio.server import Server

from liq_exchange_sim.config import SimConfig
from liq_exchange_sim.connection import SimConnection
from liq_exchange_sim.faults import FaultPlan
from liq_exchange_sim.hub import Hub
from liq_exchange_sim.instruments import Instrument, Universe
from liq_exchange_sim.ledger import Ledger
from liq_exchange_sim.listener import Host, listen
from liq_exchange_sim.scenarios.replay import read_records
from liq_exchange_sim.scenarios.runner import run_records
from liq_exchange_sim.scenarios.synthetic import GroundTruth, SyntheticConfig, generate
from liq_exchange_sim.stats import Stats
from liq_exchange_sim.truth import Feed, TruthRecord

log = structlog.get_logger(__name__)


class Simulator:
    """Binance USD-M, Binance COIN-M and Bybit liquidation feeds on local ports.

    Use as ``async with Simulator(config) as sim:``; see the package README for the whole API.
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.hub = Hub(self.config)
        self._servers: dict[Host, Server] = {}
        self._ports: dict[Host, int] = {}
        self._ticker: asyncio.Task[None] | None = None

    # --- life -----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind the three listeners and start the wall-clock ticker."""
        cfg = self.config
        for host, port in (
            ("binance_usdm", cfg.binance_usdm_port),
            ("binance_coinm", cfg.binance_coinm_port),
            ("bybit", cfg.bybit_port),
        ):
            server = await listen(self.hub, cfg, host, port)
            self._servers[host] = server
            self._ports[host] = int(next(iter(server.sockets)).getsockname()[1])
        self._ticker = asyncio.create_task(self._tick(), name="sim-ticker")
        log.info("sim_listening", **{f"{h}_port": p for h, p in self._ports.items()})

    async def stop(self) -> None:
        """Close every connection (1001) and listener."""
        self.hub.shutting_down = True
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for server in self._servers.values():
            server.close()
        for server in self._servers.values():
            await server.wait_closed()
        self._servers.clear()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- addresses ------------------------------------------------------------------------------
    def port(self, host: Host) -> int:
        """Bound port of a listener (``binance_usdm``, ``binance_coinm``, ``bybit``)."""
        return self._ports[host]

    def _url(self, scheme: str, host: Host) -> str:
        return f"{scheme}://{self.config.host}:{self._ports[host]}"

    @property
    def binance_usdm_ws(self) -> str:
        """``ws://host:port`` standing for ``wss://fstream.binance.com``."""
        return self._url("ws", "binance_usdm")

    @property
    def binance_usdm_rest(self) -> str:
        """``http://host:port`` standing for ``https://fapi.binance.com``."""
        return self._url("http", "binance_usdm")

    @property
    def binance_coinm_ws(self) -> str:
        """``ws://host:port`` standing for ``wss://dstream.binance.com``."""
        return self._url("ws", "binance_coinm")

    @property
    def binance_coinm_rest(self) -> str:
        """``http://host:port`` standing for ``https://dapi.binance.com``."""
        return self._url("http", "binance_coinm")

    @property
    def bybit_ws(self) -> str:
        """``ws://host:port`` standing for ``wss://stream.bybit.com``."""
        return self._url("ws", "bybit")

    @property
    def bybit_rest(self) -> str:
        """``http://host:port`` standing for ``https://api.bybit.com``."""
        return self._url("http", "bybit")

    def urls(self) -> dict[str, str]:
        """Every base URL by name (as the CLI prints them)."""
        return {
            name: getattr(self, name)
            for name in (
                "binance_usdm_ws", "binance_usdm_rest", "binance_coinm_ws", "binance_coinm_rest", "bybit_ws",
                "bybit_rest",
            )
        }  # fmt: skip

    # --- state ----------------------------------------------------------------------------------
    @property
    def stats(self) -> Stats:
        """Global counters."""
        return self.hub.stats

    @property
    def ledger(self) -> Ledger:
        """What was delivered and what the throttle dropped."""
        return self.hub.ledger

    @property
    def universe(self) -> Universe:
        """Listed instruments."""
        return self.hub.universe

    def connections(self, feed: Feed | None = None) -> list[SimConnection]:
        """Open connections (of one feed), oldest first."""
        return [c for c in self.hub.connections.values() if feed is None or c.feed == feed]

    def faults(self, feed: Feed) -> FaultPlan:
        """The fault plan copied into each new connection of ``feed`` (mutable)."""
        return self.hub.default_faults[feed]

    def set_faults(self, feed: Feed, **knobs: Any) -> None:
        """Set knobs on ``feed``'s default plan and on every open connection of it."""
        for plan in [self.faults(feed), *(c.faults for c in self.connections(feed))]:
            for name, value in knobs.items():
                if not hasattr(plan, name):
                    raise AttributeError(f"FaultPlan has no knob {name!r}")
                setattr(plan, name, value)
        for conn in self.connections(feed):
            conn.sync_faults()

    def add_instrument(self, feed: Feed, instrument: Instrument) -> None:
        """List ``instrument`` on ``feed`` now (REST shows it; its topics become valid)."""
        self.hub.universe.add(feed, instrument)
        self.hub.changed()

    def remove_instrument(self, feed: Feed, symbol: str) -> None:
        """Delist ``symbol`` from ``feed`` now: REST no longer shows it and subscribing its topics fails
        (existing subscriptions stay until unsubscribed, as on the exchange)."""
        self.hub.universe.remove(feed, symbol)
        self.hub.changed()

    # --- input ----------------------------------------------------------------------------------
    def emit(self, records: Iterable[TruthRecord]) -> int:
        """Feed truth records through the exchange rules now; returns how many were accepted.

        Raises:
            KeyError: A record's venue or symbol is not listed (records before it were accepted).
        """
        return self.hub.engine.ingest(records)

    async def flush(self) -> None:
        """Close every open throttle/batch window now and wait until the frames are written."""
        self.hub.engine.flush()
        await self.wait_for(lambda s: all(c.queued() == 0 for c in s.connections()), timeout=30.0)

    async def wait_for(
        self,
        predicate: Callable[[Simulator], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 - tests call wait_for(pred, timeout=...)
    ) -> None:
        """Return once ``predicate(sim)`` is true; re-checked on every counter change.

        Raises:
            TimeoutError: Still false after ``timeout`` seconds (the message shows the counters).
        """
        await self.hub.wait_for(lambda: predicate(self), timeout, self.hub.stats.snapshot)

    # --- scenarios ------------------------------------------------------------------------------
    async def replay(
        self, path: str, speed: float = 1.0, rebase_to_ms: int | None = None, anchor_ms: int | None = None
    ) -> int:
        """Replay a JSON-lines file of truth records (see :mod:`liq_exchange_sim.scenarios.replay`).

        Returns the number of records once all were played and written (``speed`` 0 = no pauses).
        ``anchor_ms``: see :func:`~liq_exchange_sim.scenarios.runner.run_records`.
        """
        return await run_records(self.hub, read_records(path, rebase_to_ms), speed, anchor_ms=anchor_ms)

    async def run_synthetic(self, config: SyntheticConfig, live: bool = False) -> GroundTruth:
        """Generate and play a synthetic scenario at ``config.speed``; returns its ground truth.

        With ``live=True`` event time ``config.start_ms`` is pinned to that wall-clock time, so a run
        starting "now" keeps its timestamps current even though generating it took a moment.
        """
        records, truth = generate(config, self.hub.universe)
        await run_records(self.hub, records, config.speed, anchor_ms=config.start_ms if live else None)
        return truth

    # --- wall clock -----------------------------------------------------------------------------
    async def _tick(self) -> None:
        hub = self.hub
        while True:
            await asyncio.sleep(self.config.tick_interval)
            if hub.driven == 0:
                hub.engine.advance_to(int(time.time() * 1000))
            for conn in list(hub.connections.values()):
                conn.sync_faults()
