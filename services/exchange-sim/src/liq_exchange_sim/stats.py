"""Counters that tests await instead of sleeping."""

from __future__ import annotations

import dataclasses
from collections import Counter


@dataclasses.dataclass
class Stats:
    """Counters of the whole simulator, or of one connection.

    Attributes:
        frames_sent: Liquidation frames written (duplicates and corrupted frames included).
        control_frames_sent: Acks, pongs and error replies written.
        pings_sent: Binance server ping frames sent.
        pongs_received: Pong frames received (answers to server pings or unsolicited).
        client_pings: Bybit ``{"op":"ping"}`` requests received.
        ping_frames_received: WebSocket ping frames received from clients (answered by websockets).
        pongs_sent: Bybit pong replies written.
        messages_received: Text messages received from clients.
        subscriptions: Streams/topics subscribed successfully.
        unsubscriptions: Streams/topics unsubscribed.
        subscription_failures: Subscribe requests (or topics) answered with an error.
        connections_opened: WebSocket handshakes accepted.
        connections_closed: Connections ended, by either side.
        handshakes_refused: Handshakes answered with an HTTP error (fault or unknown path).
        rest_requests: REST GETs answered.
        throttled: Liquidations the Binance throttle replaced by a later one.
        frames_discarded: Frames not written because the connection was stalled or closed.
        mark_price_frames: Binance ``!markPrice@arr`` frames queued (routed USD-M connections only).
        closes: Closes by reason (``pong_timeout``, ``lifetime``, ``ping_timeout``, ``rate_limit``,
            ``drop_fault``, ``client``, ``shutdown``).
    """

    frames_sent: int = 0
    control_frames_sent: int = 0
    pings_sent: int = 0
    pongs_received: int = 0
    client_pings: int = 0
    ping_frames_received: int = 0
    pongs_sent: int = 0
    messages_received: int = 0
    subscriptions: int = 0
    unsubscriptions: int = 0
    subscription_failures: int = 0
    connections_opened: int = 0
    connections_closed: int = 0
    handshakes_refused: int = 0
    rest_requests: int = 0
    throttled: int = 0
    frames_discarded: int = 0
    mark_price_frames: int = 0
    closes: Counter[str] = dataclasses.field(default_factory=Counter)

    def snapshot(self) -> dict[str, object]:
        """The counters as a dict (for error messages and logs)."""
        out = dataclasses.asdict(self)
        out["closes"] = dict(self.closes)
        return out
