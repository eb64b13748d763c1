"""Prometheus metrics of the exchange feeds, and :class:`FeedMetrics`, their children for one feed.

A feed is one ``(exchange, market)`` pair, e.g. ``("binance", "inverse")``. Labels stay low-cardinality:
never a symbol or an id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FRAMES_RECEIVED = Counter(
    "liq_frames_received_total", "Websocket frames received from an exchange.", ("exchange", "market")
)
EVENTS_PUBLISHED = Counter(
    "liq_events_published_total", "Liquidations handed to the events stream producer.", ("exchange", "market")
)
DUPLICATES = Counter(
    "liq_events_duplicate_total",
    "Liquidations dropped because their event_id was just seen (rotation overlap, reconnect replay).",
    ("exchange", "market"),
)
FRAMES_REJECTED = Counter(
    "liq_frames_rejected_total", "Frames or entries rejected as bad input, by reason.", ("exchange", "reason")
)
RECONNECTS = Counter("liq_ws_reconnects_total", "Websocket reconnections, by reason.", ("exchange", "market", "reason"))
CONNECTED = Gauge("liq_ws_connected", "Open websocket connections of a feed.", ("exchange", "market"))
LAST_EVENT = Gauge(
    "liq_last_event_timestamp_seconds",
    "Receive time of the feed's latest liquidation (Unix seconds); age = time() - value.",
    ("exchange", "market"),
)
LAG = Histogram(
    "liq_exchange_lag_seconds",
    "Local receive time minus exchange event time of each liquidation.",
    ("exchange", "market"),
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
NOTIONAL = Counter(
    "liq_notional_usd_total",
    "USD notional of published liquidations, by liquidated side.",
    ("exchange", "market", "side"),
)
SUBSCRIBE_FAILURES = Counter(
    "liq_subscribe_failures_total", "Topics whose subscription failed (retried).", ("exchange", "market")
)
SUBSCRIBED_TOPICS = Gauge("liq_subscribed_topics", "Topics acknowledged by the exchange.", ("exchange", "market"))
SILENT = Counter(
    "liq_feed_silent_total",
    "Connections found up and acknowledged but carrying no data while the market was active (then reconnected).",
    ("exchange", "market", "reason"),
)
LAST_DATA = Gauge(
    "liq_feed_last_data_timestamp_seconds",
    "Receive time of the latest frame of data (liquidation or control stream) on any connection of the feed.",
    ("exchange", "market"),
)
STATUS_EVENTS = Counter(
    "liq_feed_status_events_total", "Feed lifecycle events published, by status.", ("exchange", "market", "status")
)
REST_ERRORS = Counter(
    "liq_rest_errors_total", "Failed exchange REST requests (instrument lists), retried.", ("exchange", "endpoint")
)


class FeedMetrics:
    """The metric children of one feed, bound once so the hot path never calls ``labels``."""

    def __init__(self, exchange: str, market: str) -> None:
        self.exchange = exchange
        self.market = market
        self.frames = FRAMES_RECEIVED.labels(exchange, market)
        self.published = EVENTS_PUBLISHED.labels(exchange, market)
        self.duplicates = DUPLICATES.labels(exchange, market)
        self.connected = CONNECTED.labels(exchange, market)
        self.last_event = LAST_EVENT.labels(exchange, market)
        self.lag = LAG.labels(exchange, market)
        self.notional_long = NOTIONAL.labels(exchange, market, "long")
        self.notional_short = NOTIONAL.labels(exchange, market, "short")
        self.subscribe_failures = SUBSCRIBE_FAILURES.labels(exchange, market)
        self.subscribed = SUBSCRIBED_TOPICS.labels(exchange, market)
        self.last_data = LAST_DATA.labels(exchange, market)

    def silent(self, reason: str) -> None:
        """Count one silent connection (``reason``: what was missing)."""
        SILENT.labels(self.exchange, self.market, reason).inc()

    def status(self, status: str) -> None:
        """Count one published lifecycle event."""
        STATUS_EVENTS.labels(self.exchange, self.market, status).inc()

    def reconnect(self, reason: str) -> None:
        """Count one reconnection for ``reason`` (a short snake_case word)."""
        RECONNECTS.labels(self.exchange, self.market, reason).inc()
