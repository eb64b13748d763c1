"""Binance USD-M (fstream) and COIN-M (dstream) market-stream connections.

Paths (exchange-feeds.md §1.1, §2.1): USD-M serves ``forceOrder`` only on the routed ``/market`` paths;
unrouted ``/ws``, ``/stream`` (and ``/public``, ``/private``) accept, ack and deliver nothing for it.
COIN-M serves ``/ws`` and ``/stream``. Method frames and their replies: §1.3. Keepalive and limits: §1.8.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from websockets.exceptions import ConnectionClosed

from liq_exchange_sim import frames
from liq_exchange_sim.connection import SimConnection
from liq_exchange_sim.markprice import INTERVALS, push_mark_prices
from liq_exchange_sim.truth import Feed

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_UNKNOWN_METHOD = "Invalid request: unknown variant `{}`, expected one of " + ", ".join(f"`{m}`" for m in METHODS)
_encoder = msgspec.json.Encoder()


class Route(msgspec.Struct, frozen=True):
    """A parsed Binance stream URL.

    Attributes:
        feed: ``binance_usdm`` or ``binance_coinm``.
        routed: Whether ``forceOrder`` data flows on this path (USD-M needs ``/market``).
        combined: ``/stream`` (``{"stream":..,"data":..}`` envelope) rather than ``/ws`` (raw payloads).
        streams: Streams named in the URL.
    """

    feed: Feed
    routed: bool
    combined: bool
    streams: tuple[str, ...]


def parse_route(feed: Feed, target: str) -> Route | None:
    """Route of a request target on the ``feed`` host, or ``None`` when the path does not exist."""
    path, _, query = target.partition("?")
    routed = True
    if feed == "binance_usdm":
        routed = False
        for prefix in ("/market", "/public", "/private"):
            if path == prefix or path.startswith(prefix + "/"):
                routed = prefix == "/market"
                path = path[len(prefix) :]
                break
    if path == "/ws" or path.startswith("/ws/"):
        names = tuple(s for s in path[4:].split("/") if s)
        return Route(feed, routed, False, names)
    if path in ("/stream", "/stream/"):
        values = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "streams"]
        names = tuple(s for v in values for s in v.split("/") if s)
        return Route(feed, routed, True, names)
    return None


class BinanceConnection(SimConnection):
    """One fstream/dstream connection."""

    route: Route

    def setup(self, route: Route) -> None:
        """Apply the URL's streams (silently not subscribed under the ``fail_subscription`` fault)."""
        self.route = route
        self.combined = route.combined
        self.streams: list[str] = []
        self._recent: deque[float] = deque()
        self._marks: dict[str, asyncio.Task[None]] = {}
        if not self.faults.fail_subscription:
            self._add(route.streams)

    def frame_for(self, stream: str, payload: bytes) -> bytes:
        """Raw payload on ``/ws``; combined envelope on ``/stream`` (or after SET_PROPERTY combined)."""
        return frames.binance_envelope(stream, payload) if self.combined else payload

    def _add(self, names: tuple[str, ...] | list[str]) -> None:
        for name in names:
            if name in self.streams:
                continue
            self.streams.append(name)
            if self.route.routed:
                self.hub.engine.subscribe(self.feed, name, self)
                self._start_marks(name)
            self.stats.subscriptions += 1
            self.hub.stats.subscriptions += 1
        self.hub.changed()

    def _remove(self, names: list[str]) -> None:
        for name in names:
            if name in self.streams:
                self.streams.remove(name)
                self.hub.engine.unsubscribe(self.feed, name, self)
                mark = self._marks.pop(name, None)
                if mark is not None:
                    mark.cancel()
                self.stats.unsubscriptions += 1
                self.hub.stats.unsubscriptions += 1
        self.hub.changed()

    def unsubscribe_all(self) -> None:
        """Remove every engine subscription and stop the mark-price pushes."""
        for name in getattr(self, "streams", ()):
            self.hub.engine.unsubscribe(self.feed, name, self)
        for task in getattr(self, "_marks", {}).values():
            task.cancel()

    def _start_marks(self, name: str) -> None:
        """USD-M ``!markPrice@arr[@1s]`` on a routed path: push every symbol's mark price periodically."""
        interval = INTERVALS.get(name)
        if interval is None or self.feed != "binance_usdm" or name in self._marks:
            return
        self._marks[name] = asyncio.create_task(
            push_mark_prices(name, interval, self._send_marks, lambda: self.hub.universe.instruments(self.feed))
        )

    def _send_marks(self, stream: str, payload: bytes) -> None:
        if self.closing or self.faults.stall:
            return
        self.stats.mark_price_frames += 1
        self.hub.stats.mark_price_frames += 1
        self.hub.changed()
        self.send_control(self.frame_for(stream, payload))

    def _fail(self, code: int, msg: str, request_id: Any = msgspec.UNSET) -> None:
        self.send_control(frames.binance_error(code, msg, request_id))

    async def on_message(self, message: str | bytes) -> None:
        """Answer a method frame (§1.3); too many messages per second closes the connection (§1.8)."""
        limit = self.hub.config.binance_max_incoming_per_s
        if limit is not None:
            now = time.monotonic()
            self._recent.append(now)
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()
            if len(self._recent) > limit:
                await self.close(1008, "Too many requests", "rate_limit")
                return
        try:
            request = msgspec.json.decode(message)
        except msgspec.DecodeError:
            self._fail(3, "Invalid JSON: expected value at line 1 column 1")
            return
        if not isinstance(request, dict):
            self._fail(2, "Invalid request: invalid type, expected struct Request at line 1 column 1")
            return
        request_id = request.get("id")
        if isinstance(request_id, bool) or not (
            request_id is None or isinstance(request_id, str) or (isinstance(request_id, int) and request_id >= 0)
        ):
            self._fail(2, "Invalid request: request ID must be an unsigned integer")
            return
        method = request.get("method")
        if method is None:
            self._fail(2, "Invalid request: missing field `method`", request_id)
            return
        if method not in METHODS:
            self._fail(2, _UNKNOWN_METHOD.format(method), request_id)
            return
        self._dispatch(method, request.get("params"), request_id)

    def _dispatch(self, method: str, params: Any, request_id: Any) -> None:
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                self._fail(2, "Invalid request: params must be a list of stream names", request_id)
                return
            if method == "SUBSCRIBE":
                if self.faults.fail_subscription:
                    self.stats.subscription_failures += 1
                    self.hub.stats.subscription_failures += 1
                    self._fail(2, "Invalid request: simulated subscription failure", request_id)
                    return
                self._add(params)
            else:
                self._remove(params)
            self.send_control(frames.binance_result(request_id))
        elif method == "LIST_SUBSCRIPTIONS":
            self.send_control(frames.binance_result(request_id, list(self.streams)))
        elif method == "GET_PROPERTY":
            if params != ["combined"]:
                self._fail(0, "Unknown property", request_id)
                return
            self.send_control(_encoder.encode({"result": self.combined, "id": request_id}))
        else:  # SET_PROPERTY
            if not (isinstance(params, list) and len(params) == 2 and params[0] == "combined"):
                self._fail(0, "Unknown property", request_id)
                return
            if not isinstance(params[1], bool):
                self._fail(1, "Invalid value type: expected Boolean")
                return
            self.combined = params[1]
            self.send_control(frames.binance_result(request_id))

    async def keepalive(self) -> None:
        """Ping every interval; close without a pong for the timeout, and at the lifetime (§1.8)."""
        cfg = self.hub.config
        next_ping = self.opened_at + cfg.binance_ping_interval
        end_of_life = self.opened_at + cfg.binance_max_lifetime
        while True:
            now = time.monotonic()
            if self.faults.stall:
                await asyncio.sleep(cfg.tick_interval)
                next_ping = max(next_ping, time.monotonic())
                continue
            if now >= end_of_life:
                await self.close(1001, "Connection lifetime exceeded", "lifetime")
                return
            if now >= self.last_pong + cfg.binance_pong_timeout:
                await self.close(1011, "Pong timeout", "pong_timeout")
                return
            if now >= next_ping:
                with contextlib.suppress(ConnectionClosed):
                    await self.ws.ping()
                self.stats.pings_sent += 1
                self.hub.stats.pings_sent += 1
                self.hub.changed()
                next_ping = now + cfg.binance_ping_interval
            wake = min(next_ping, end_of_life, self.last_pong + cfg.binance_pong_timeout)
            await asyncio.sleep(max(0.001, min(wake - time.monotonic(), 1.0)))
