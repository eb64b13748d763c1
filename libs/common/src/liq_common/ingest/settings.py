"""Settings every ingestor has, on top of :class:`liq_common.settings.CommonSettings`."""

from __future__ import annotations

from typing import cast, get_args

import redis.asyncio as aioredis

from liq_common.backoff import Backoff
from liq_common.events import Market
from liq_common.ingest.activity import MarketActivity
from liq_common.ingest.connection import ConnectOptions
from liq_common.ingest.health import SilenceRules, SlotHealth
from liq_common.ingest.metrics import FeedMetrics
from liq_common.ingest.sink import LiquidationSink
from liq_common.ingest.tiers import TieredLog
from liq_common.settings import CommonSettings, PositiveFloat, PositiveInt
from liq_common.streams import StreamProducer


def parse_markets(value: str, variable: str) -> list[Market]:
    """The markets a comma-separated setting enables, e.g. ``"linear,inverse"``.

    Raises:
        ValueError: An entry is not ``linear`` or ``inverse`` (the message names ``variable``).
    """
    chosen: list[Market] = []
    for name in (part.strip() for part in value.split(",")):
        if name not in get_args(Market):
            raise ValueError(f"{variable}: unknown market {name!r}; use linear, inverse")
        chosen.append(cast(Market, name))
    return chosen


class FeedSettings(CommonSettings, frozen=True, kw_only=True, rename="upper"):
    """Connection, de-duplication and logging settings shared by the ingest services.

    Attributes:
        log_full_usd: A liquidation of at least this many USD is logged at info with every field.
        log_compact_usd: At least this many USD (and below ``log_full_usd``) is logged at info, compact;
            smaller ones are logged at debug.
        reconnect_base: First backoff ceiling after a dropped connection, seconds (full jitter).
        reconnect_cap: Largest backoff ceiling, seconds.
        reconnect_reset_after: Seconds a connection must stay up before the backoff resets.
        rate_limited_backoff: Delay after an HTTP 418/429 handshake answer, seconds (±10 % jitter).
        open_timeout: Handshake timeout, seconds.
        ping_interval: Seconds between our keepalive pings.
        ping_timeout: Seconds without the matching pong after which the link is declared dead.
        dedup_window: Event ids remembered per feed to drop overlap and replay duplicates (50,000 ids,
            about 7 MB, cover minutes of a busy feed; overlaps last seconds).
        publish_batch: Largest number of events in one pipelined ``XADD`` round trip.
        silence_check_interval: Seconds between two silence checks of a connection.
        control_timeout: Seconds without a frame of the connection's control stream (where the feed has
            one, e.g. Binance USD-M ``!markPrice@arr@1s``) after which an acknowledged connection is silent.
        quiet_after: Seconds without a liquidation after which an acknowledged connection is silent, but
            only while other feeds are active (``active_min_events`` of their liquidations in that time).
        active_min_events: Other feeds' liquidations within ``quiet_after`` that make the market active.
        activity_refresh: Seconds between two reads of the other feeds' activity (one ``XREVRANGE``).
    """

    log_full_usd: PositiveFloat = 100_000.0
    log_compact_usd: PositiveFloat = 10_000.0
    reconnect_base: PositiveFloat = 1.0
    reconnect_cap: PositiveFloat = 60.0
    reconnect_reset_after: PositiveFloat = 60.0
    rate_limited_backoff: PositiveFloat = 300.0
    open_timeout: PositiveFloat = 10.0
    ping_interval: PositiveFloat = 20.0
    ping_timeout: PositiveFloat = 20.0
    dedup_window: PositiveInt = 50_000
    publish_batch: PositiveInt = 1000
    silence_check_interval: PositiveFloat = 1.0
    control_timeout: PositiveFloat = 15.0
    quiet_after: PositiveFloat = 600.0
    active_min_events: PositiveInt = 20
    activity_refresh: PositiveFloat = 5.0

    def backoff(self) -> Backoff:
        """A fresh reconnect backoff from these settings (one per connection)."""
        return Backoff(base=self.reconnect_base, cap=self.reconnect_cap, reset_after=self.reconnect_reset_after)

    def connect_options(
        self, *, protocol_pings: bool = True, rotate_after: float | None = None, overlap: float = 5.0
    ) -> ConnectOptions:
        """Connection options from these settings."""
        return ConnectOptions(
            open_timeout=self.open_timeout,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            protocol_pings=protocol_pings,
            rate_limited_backoff=self.rate_limited_backoff,
            rotate_after=rotate_after,
            overlap=overlap,
        )

    def sink(self, producer: StreamProducer, exchange: str, market: str) -> LiquidationSink:
        """The publishing sink of one feed."""
        return LiquidationSink(
            producer,
            FeedMetrics(exchange, market),
            TieredLog(self.log_full_usd, self.log_compact_usd),
            self.dedup_window,
        )

    def status_producer(self, client: aioredis.Redis) -> StreamProducer:
        """Producer of the feed-status stream (lifecycle events are few: small batches)."""
        return StreamProducer(client, self.feed_status_stream, self.stream_maxlen, max_batch=100)

    def activity(self, client: aioredis.Redis, own: set[tuple[str, str]]) -> MarketActivity:
        """The other feeds' activity probe of a process running the feeds ``own``."""
        return MarketActivity(
            client,
            self.events_stream,
            own,
            window=self.quiet_after,
            min_events=self.active_min_events,
            refresh=self.activity_refresh,
        )

    def slot_health(
        self,
        producer: StreamProducer | None,
        metrics: FeedMetrics,
        conn: str,
        *,
        control: bool,
        activity: MarketActivity | None,
    ) -> SlotHealth:
        """Health of one connection slot; ``control``: the connection carries a control stream."""
        rules = SilenceRules(
            check_interval=self.silence_check_interval,
            control_timeout=self.control_timeout if control else None,
            quiet_after=self.quiet_after,
        )
        return SlotHealth(producer, metrics, conn, rules, activity)
