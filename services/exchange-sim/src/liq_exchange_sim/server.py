"""The simulator: one listener per production host, REST on the same ports, and the public test API."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from types import TracebackType
from typing import Any

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from liq_exchange_sim import bybit, rest
from liq_exchange_sim.binance import BinanceConnection, parse_route
from liq_exchange_sim.bybit import BybitConnection
from liq_exchange_sim.config import SimConfig
from liq_exchange_sim.connection import SimConnection
from liq_exchange_sim.faults import FaultPlan
from liq_exchange_sim.hub import Hub
from liq_exchange_sim.instruments import Instrument, Universe
from liq_exchange_sim.ledger import Ledger
from liq_exchange_sim.scenarios.replay import read_records
from liq_exchange_sim.scenarios.runner import run_records
from liq_exchange_sim.scenarios.synthetic import GroundTruth, SyntheticConfig, generate
from liq_exchange_sim.stats import Stats
from liq_exchange_sim.truth import Feed, TruthRecord
from liq_exchange_sim.wire import ControlAwareConnection

log = structlog.get_logger(__name__)

Host = str
"""Listener name: ``binance_usdm``, ``binance_coinm`` or ``bybit``."""


def _json_response(body: bytes, status: int = 200) -> Response:
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return Response(status, HTTPStatus(status).phrase, headers, body)


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
            server = await serve(
                self._handler(host),
                cfg.host,
                port,
                process_request=self._process_request(host),
                create_connection=ControlAwareConnection,
                ping_interval=None,  # Binance pings are the simulator's own (exchange-feeds.md §1.8)
                close_timeout=cfg.close_timeout,
                max_size=cfg.max_size,
                compression=None,
            )
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

    # --- serving --------------------------------------------------------------------------------
    async def _tick(self) -> None:
        hub = self.hub
        while True:
            await asyncio.sleep(self.config.tick_interval)
            if hub.driven == 0:
                hub.engine.advance_to(int(time.time() * 1000))
            for conn in list(hub.connections.values()):
                conn.sync_faults()

    def _process_request(self, host: Host) -> Callable[[ServerConnection, Request], Response | None]:
        def process_request(connection: ServerConnection, request: Request) -> Response | None:
            path, _, query = request.path.partition("?")
            body = self._rest(host, path, query)
            if body is not None:
                self.hub.stats.rest_requests += 1
                self.hub.changed()
                return _json_response(body)
            feed = self._feed_of(host, request.path)
            if feed is None:
                self.hub.stats.handshakes_refused += 1
                self.hub.changed()
                return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
            status = self.faults(feed).take_refusal()
            if status is not None:
                self.hub.stats.handshakes_refused += 1
                self.hub.changed()
                return connection.respond(status, f"{HTTPStatus(status).phrase}\n")
            return None

        return process_request

    def _rest(self, host: Host, path: str, query: str) -> bytes | None:
        universe = self.hub.universe
        if host == "binance_usdm" and path == "/fapi/v1/exchangeInfo":
            return rest.binance_exchange_info("binance_usdm", universe)
        if host == "binance_coinm" and path == "/dapi/v1/exchangeInfo":
            return rest.binance_exchange_info("binance_coinm", universe)
        if host == "bybit" and path == "/v5/market/instruments-info":
            return rest.bybit_instruments(query, universe)
        return None

    @staticmethod
    def _feed_of(host: Host, target: str) -> Feed | None:
        if host == "bybit":
            name = bybit.PATHS.get(target.partition("?")[0])
            return name  # type: ignore[return-value]
        feed: Feed = "binance_usdm" if host == "binance_usdm" else "binance_coinm"
        return feed if parse_route(feed, target) is not None else None

    def _handler(self, host: Host) -> Callable[[ServerConnection], Any]:
        async def handler(ws: ServerConnection) -> None:
            target = ws.request.path if ws.request is not None else ""
            feed = self._feed_of(host, target)
            if feed is None:  # process_request already refused it
                return
            conn: SimConnection
            if host == "bybit":
                conn = BybitConnection(self.hub, ws, feed, self.hub.new_conn_id(feed), self.faults(feed).copy())
                conn.setup()
            else:
                route = parse_route(feed, target)
                assert route is not None
                conn = BinanceConnection(self.hub, ws, feed, self.hub.new_conn_id(feed), self.faults(feed).copy())
                conn.setup(route)
            self.hub.connection_opened(conn)
            conn.sync_faults()
            await conn.run()

        return handler
