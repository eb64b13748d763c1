"""One listener of the simulator: a production host's port, serving its websockets and its REST.

Each HTTP request on the port is answered, in this order:

* a REST path of the host (Binance ``exchangeInfo``, Bybit ``instruments-info``) gets its JSON body;
* a path that is none of the host's websocket routes gets 404;
* a websocket route gets the refusal status its feed's fault plan has queued, if any;
* otherwise the handshake completes and the connection speaks the host's protocol (Binance or Bybit)
  with a copy of its feed's default fault plan.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from liq_exchange_sim import bybit, rest
from liq_exchange_sim.binance import BinanceConnection, parse_route
from liq_exchange_sim.bybit import BybitConnection
from liq_exchange_sim.config import SimConfig
from liq_exchange_sim.connection import SimConnection
from liq_exchange_sim.hub import Hub
from liq_exchange_sim.truth import Feed
from liq_exchange_sim.wire import ControlAwareConnection

Host = str
"""Listener name: ``binance_usdm``, ``binance_coinm`` or ``bybit``."""


async def listen(hub: Hub, config: SimConfig, host: Host, port: int) -> Server:
    """Bind ``host``'s listener on ``config.host``:``port`` (0 = any free port) and serve it."""
    return await serve(
        _handler(hub, host),
        config.host,
        port,
        process_request=_process_request(hub, host),
        create_connection=ControlAwareConnection,
        ping_interval=None,  # Binance pings are the simulator's own (exchange-feeds.md §1.8)
        close_timeout=config.close_timeout,
        max_size=config.max_size,
        compression=None,
    )


def _json_response(body: bytes, status: int = 200) -> Response:
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return Response(status, HTTPStatus(status).phrase, headers, body)


def _process_request(hub: Hub, host: Host) -> Callable[[ServerConnection, Request], Response | None]:
    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        body = _rest(hub, host, path, query)
        if body is not None:
            hub.stats.rest_requests += 1
            hub.changed()
            return _json_response(body)
        feed = _feed_of(host, request.path)
        if feed is None:
            hub.stats.handshakes_refused += 1
            hub.changed()
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        status = hub.default_faults[feed].take_refusal()
        if status is not None:
            hub.stats.handshakes_refused += 1
            hub.changed()
            return connection.respond(status, f"{HTTPStatus(status).phrase}\n")
        return None

    return process_request


def _rest(hub: Hub, host: Host, path: str, query: str) -> bytes | None:
    universe = hub.universe
    if host == "binance_usdm" and path == "/fapi/v1/exchangeInfo":
        return rest.binance_exchange_info("binance_usdm", universe)
    if host == "binance_coinm" and path == "/dapi/v1/exchangeInfo":
        return rest.binance_exchange_info("binance_coinm", universe)
    if host == "bybit" and path == "/v5/market/instruments-info":
        return rest.bybit_instruments(query, universe)
    return None


def _feed_of(host: Host, target: str) -> Feed | None:
    if host == "bybit":
        name = bybit.PATHS.get(target.partition("?")[0])
        return name  # type: ignore[return-value]
    feed: Feed = "binance_usdm" if host == "binance_usdm" else "binance_coinm"
    return feed if parse_route(feed, target) is not None else None


def _handler(hub: Hub, host: Host) -> Callable[[ServerConnection], Any]:
    async def handler(ws: ServerConnection) -> None:
        target = ws.request.path if ws.request is not None else ""
        feed = _feed_of(host, target)
        if feed is None:  # process_request already refused it
            return
        conn: SimConnection
        if host == "bybit":
            conn = BybitConnection(hub, ws, feed, hub.new_conn_id(feed), hub.default_faults[feed].copy())
            conn.setup()
        else:
            route = parse_route(feed, target)
            assert route is not None
            conn = BinanceConnection(hub, ws, feed, hub.new_conn_id(feed), hub.default_faults[feed].copy())
            conn.setup(route)
        hub.connection_opened(conn)
        conn.sync_faults()
        await conn.run()

    return handler
