"""Bybit v5 public linear/inverse connections (exchange-feeds.md §3).

Requests are JSON ``{"op": ..., "args": [...], "req_id": ...}``. Replies use the linear/inverse shapes of
§3.4. Only ``allLiquidation.{listed symbol}`` topics exist here; anything else (the deprecated
``liquidation.{symbol}``, unknown symbols, other channels) gets the real ``handler not found`` failure.
"""

from __future__ import annotations

import asyncio
import time

import msgspec

from liq_exchange_sim import frames
from liq_exchange_sim.connection import SimConnection

PATHS = {"/v5/public/linear": "bybit_linear", "/v5/public/inverse": "bybit_inverse"}
_TOPIC_PREFIX = "allLiquidation."


def args_length(topics: list[str]) -> int:
    """Characters of ``topics`` written as a JSON ``args`` array (the §3.4 per-connection limit)."""
    if not topics:
        return 0
    return 2 + sum(len(t) + 2 for t in topics) + len(topics) - 1


class BybitConnection(SimConnection):
    """One ``/v5/public/linear`` or ``/v5/public/inverse`` connection."""

    def setup(self) -> None:
        """Start with no topics; the idle clock starts at the handshake."""
        self.topics: list[str] = []
        self.last_ping = time.monotonic()

    def unsubscribe_all(self) -> None:
        """Remove every engine subscription."""
        for topic in getattr(self, "topics", ()):
            self.hub.engine.unsubscribe(self.feed, topic, self)

    def on_unstall(self) -> None:
        """Restart the ping clock after a stall (a hung server does not judge its clients)."""
        super().on_unstall()
        self.last_ping = time.monotonic()

    def _reply(self, success: bool, ret_msg: str, req_id: str, op: str) -> None:
        self.send_control(frames.bybit_reply(success, ret_msg, self.id, req_id, op))

    def _failed(self, count: int = 1) -> None:
        self.stats.subscription_failures += count
        self.hub.stats.subscription_failures += count
        self.hub.changed()

    async def on_message(self, message: str | bytes) -> None:
        """Answer ``ping``, ``subscribe`` and ``unsubscribe``."""
        try:
            request = msgspec.json.decode(message)
        except msgspec.DecodeError:
            self._reply(False, "error:request not in json format", "", "")
            return
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            self._reply(False, "error:op not found", "", "")
            return
        op: str = request["op"]
        req_id = request.get("req_id", "")
        req_id = req_id if isinstance(req_id, str) else str(req_id)
        if op == "ping":
            self.last_ping = time.monotonic()
            self.stats.client_pings += 1
            self.hub.stats.client_pings += 1
            self._reply(True, "pong", req_id, "ping")
            self.stats.pongs_sent += 1
            self.hub.stats.pongs_sent += 1
            self.hub.changed()
            return
        args = request.get("args")
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list):
            self._reply(False, f"error:unknown op {op}" if op not in ("subscribe", "unsubscribe") else
                        "error:args must be a list", req_id, op)  # fmt: skip
            return
        topics = [a if isinstance(a, str) else msgspec.json.encode(a).decode() for a in args]
        if op == "subscribe":
            self._subscribe(topics, req_id)
        else:
            self._unsubscribe(topics, req_id)

    def _valid(self, topic: str) -> bool:
        if not topic.startswith(_TOPIC_PREFIX):
            return False
        return self.hub.universe.get(self.feed, topic[len(_TOPIC_PREFIX) :]) is not None

    def _subscribe(self, topics: list[str], req_id: str) -> None:
        if self.faults.fail_subscription:
            self._failed(len(topics))
            self._reply(False, f"error:handler not found,topic:{','.join(topics)}", req_id, "subscribe")
            return
        limit = self.hub.config.bybit_args_limit
        wanted = [t for t in dict.fromkeys(topics) if t not in self.topics]
        if args_length(self.topics + wanted) > limit:
            self._failed(len(topics))
            self._reply(False, f"error:args length exceeds {limit} characters", req_id, "subscribe")
            return
        first_error = ""
        for topic in topics:
            if topic in self.topics:
                first_error = first_error or f"error:already subscribed,topic:{topic}"
                self._failed()
            elif not self._valid(topic):
                first_error = first_error or f"error:handler not found,topic:{topic}"
                self._failed()
            else:
                self.topics.append(topic)
                self.hub.engine.subscribe(self.feed, topic, self)
                self.stats.subscriptions += 1
                self.hub.stats.subscriptions += 1
        self.hub.changed()
        self._reply(not first_error, first_error, req_id, "subscribe")

    def _unsubscribe(self, topics: list[str], req_id: str) -> None:
        for topic in topics:
            if topic in self.topics:
                self.topics.remove(topic)
                self.hub.engine.unsubscribe(self.feed, topic, self)
                self.stats.unsubscriptions += 1
                self.hub.stats.unsubscriptions += 1
        self.hub.changed()
        self._reply(True, "", req_id, "unsubscribe")

    async def keepalive(self) -> None:
        """Close a connection that has not pinged within ``bybit_ping_timeout`` (§3.4)."""
        cfg = self.hub.config
        while True:
            if self.faults.stall:
                await asyncio.sleep(cfg.tick_interval)
                continue
            remaining = self.last_ping + cfg.bybit_ping_timeout - time.monotonic()
            if remaining <= 0:
                await self.close(1000, "ping timeout", "ping_timeout")
                return
            await asyncio.sleep(min(remaining, 1.0))
