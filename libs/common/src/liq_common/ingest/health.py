"""Feed health as data: lifecycle events of each connection slot, and silent-feed detection.

Every :class:`~liq_common.ingest.connection.WsSupervisor` may carry a :class:`SlotHealth`. It publishes
:class:`~liq_common.events.FeedStatus` events to the feed-status stream (connected or reconnected,
subscribed, first data, disconnected with the reason, silent) and watches each open connection:

* **Control signal** (``control_timeout``): where the exchange offers a cheap stream that always
  flows (Binance USD-M ``!markPrice@arr@1s``), its absence for ``control_timeout`` seconds after the
  acknowledgement proves the link carries nothing. This is how an acknowledged connection on the
  legacy unrouted Binance path (exchange-feeds.md §1.1: "fails silently") is caught within seconds.
* **Cross-exchange activity** (``quiet_after``): no liquidation for ``quiet_after`` seconds is only
  suspicious while other feeds are delivering liquidations (:class:`MarketActivity`); a market where
  nothing is liquidated anywhere is quiet, not dead.

A silent connection is reported once (metric ``liq_feed_silent_total``, one log line, a ``silent``
event) and closed; the supervisor reconnects it and publishes ``disconnected`` (reason ``silent``).
The hot path only stores two integers per frame (:meth:`SlotHealth.data`); everything else runs in the
watch loop, once per ``check_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import structlog
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from liq_common.events import FeedState, FeedStatus
from liq_common.ingest.activity import MarketActivity
from liq_common.ingest.metrics import FeedMetrics
from liq_common.streams import StreamProducer

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SilenceRules:
    """When an acknowledged connection counts as silent (seconds).

    Attributes:
        check_interval: Seconds between two checks of a connection.
        control_timeout: Longest time without a control-stream frame; None when the connection has
            no control stream.
        quiet_after: Longest time without a liquidation while other feeds are active.
    """

    check_interval: float = 1.0
    control_timeout: float | None = None
    quiet_after: float = 600.0


def now_ms() -> int:
    """Wall-clock time, ms since epoch."""
    return int(time.time() * 1000)


class SlotHealth:
    """Lifecycle events and silence watch of one connection slot of a feed.

    Args:
        producer: Producer of the feed-status stream, or None to only log and count.
        metrics: The feed's metric children.
        conn: Slot name, stable across reconnects ("0", or the shard index).
        rules: Silence rules.
        activity: Cross-exchange activity, or None to never judge by it.
    """

    def __init__(
        self,
        producer: StreamProducer | None,
        metrics: FeedMetrics,
        conn: str,
        rules: SilenceRules,
        activity: MarketActivity | None = None,
    ) -> None:
        self.producer = producer
        self.metrics = metrics
        self.conn = conn
        self.rules = rules
        self.activity = activity
        self.session = 0
        self.silences = 0
        self.checks = 0
        self.tripped: str | None = None
        self.acked_at: int | None = None
        self.first_data_at: int | None = None
        self.last_liquidation = 0
        self.last_control = 0
        self._first_data_sent = False
        self._log = log.bind(exchange=metrics.exchange, market=metrics.market, conn=conn)

    async def publish(self, status: FeedState, ts: int | None = None, reason: str = "", since_ts: int = 0) -> None:
        """Queue one lifecycle event of this slot's current session."""
        event = FeedStatus(
            exchange=self.metrics.exchange,
            market=self.metrics.market,
            conn=self.conn,
            status=status,
            ts=now_ms() if ts is None else ts,
            reason=reason,
            session=self.session,
            since_ts=since_ts,
        )
        self.metrics.status(status)
        if self.producer is not None:
            await self.producer.put(event)

    async def opened(self, rotation: bool = False) -> None:
        """A connection of the slot is open: a new session (``connected`` first, then ``reconnected``)."""
        self.session += 1
        self.tripped = None
        self.acked_at = None
        self.first_data_at = None
        self._first_data_sent = False
        self.last_liquidation = self.last_control = 0
        await self.publish("connected" if self.session == 1 else "reconnected", reason="rotation" if rotation else "")

    async def closed(self, reason: str) -> None:
        """The slot has no open connection any more (a first data not yet reported is reported first)."""
        await self._report_first_data()
        await self.publish("disconnected", reason=reason)

    async def _report_first_data(self) -> None:
        if self.first_data_at is not None and not self._first_data_sent:
            self._first_data_sent = True
            await self.publish("first_data", ts=self.first_data_at)

    async def acknowledged(self) -> None:
        """The exchange acknowledged the liquidation subscription on the current connection (once per session)."""
        if self.acked_at is None:
            self.acked_at = now_ms()
            await self.publish("subscribed", ts=self.acked_at)

    def data(self, recv_ts: int, liquidation: bool) -> None:
        """A frame of data arrived (a liquidation, or a control-stream frame). Hot path: no I/O."""
        if liquidation:
            self.last_liquidation = recv_ts
        else:
            self.last_control = recv_ts
        if self.first_data_at is None:
            self.first_data_at = recv_ts

    def silent_reason(self, now: int) -> tuple[str, int] | None:
        """Why the current connection is silent at ``now`` and since when (ms), or None if it is not."""
        if self.acked_at is None:
            return None
        rules = self.rules
        if rules.control_timeout is not None:
            last = max(self.last_control, self.acked_at)
            if now - last > rules.control_timeout * 1000:
                return "no_control_data", last
        if self.activity is not None and self.activity.active:
            last = max(self.last_liquidation, self.acked_at)
            if now - last > rules.quiet_after * 1000:
                return "no_liquidations_while_market_active", last
        return None

    async def watch(self, ws: ClientConnection) -> None:
        """Check the connection every ``check_interval``; close it when silent (sets :attr:`tripped`)."""
        session = self.session
        while session == self.session:
            await asyncio.sleep(self.rules.check_interval)
            if session != self.session:
                return  # a rotation's successor took over the slot
            self.checks += 1
            last = max(self.last_liquidation, self.last_control)
            if last:
                self.metrics.last_data.set(last / 1000)
            await self._report_first_data()
            found = self.silent_reason(now_ms())
            if found is None:
                continue
            reason, since = found
            self.tripped = reason
            self.silences += 1
            self.metrics.silent(reason)
            self._log.error(
                "feed_silent",
                reason=reason,
                silent_for_s=round((now_ms() - since) / 1000, 1),
                other_feeds_active=self.activity.active if self.activity is not None else None,
                action="reconnect",
            )
            await self.publish("silent", reason=reason, since_ts=since)
            with contextlib.suppress(ConnectionClosed, OSError):
                await ws.close(code=1000, reason="silent feed")
            return
