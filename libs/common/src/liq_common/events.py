"""The event schema shared by every service: normalised liquidations, cascades and feed status.

Every entry on a Redis stream carries one of these Structs as JSON (see :mod:`liq_common.codec`).
The schema follows msgspec's evolution rules: a new field always has a default, an existing field never
changes type, and ``array_like`` is never used, so old readers skip new fields and new readers fill in
defaults for old entries. ``SCHEMA_VERSION`` is bumped on every change and written into each event.

Money and sizes are :class:`decimal.Decimal` (JSON strings on the wire) so totals are exact to the
last cent; times are integer milliseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Literal

import msgspec

SCHEMA_VERSION = 2
"""Version of the event schema written into every event (``v``)."""

# Every Struct here is gc=False: events never reference themselves (no cycles), and millions of them pass
# through a consumer, so keeping them out of the cycle collector saves its scans (msgspec perf tips).

Exchange = Literal["binance", "bybit", "okx", "deribit", "bitmex", "bitget", "gate", "htx"]
Market = Literal["linear", "inverse"]
PositionSide = Literal["long", "short"]
"""Side of the liquidated POSITION. Never the side of the liquidation order (see exchange-feeds.md §0.2)."""
CascadeStatus = Literal["open", "update", "close"]
Tier = Literal["low", "medium", "high", "critical"]
FeedState = Literal["connected", "subscribed", "first_data", "disconnected", "reconnected", "silent"]
"""Lifecycle steps of one feed connection, in the order they normally happen (see :class:`FeedStatus`)."""
TIERS: tuple[Tier, ...] = ("low", "medium", "high", "critical")
"""Severity tiers in ascending order."""


class Liquidation(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="liquidation", tag_field="kind"):
    """One liquidation of one position on one exchange, normalised.

    Attributes:
        event_id: Deterministic id: the same exchange event seen twice (reconnect overlap, redelivery)
            has the same id. See :func:`make_event_id`.
        exchange: Venue name, lower case.
        market: ``linear`` (quoted in a stablecoin, sized in base coin) or ``inverse`` (coin-margined,
            sized in USD contracts).
        symbol: The exchange's own symbol, e.g. ``BTCUSDT``, ``BTCUSD_PERP``.
        base: Normalised base asset, e.g. ``BTC``; the detector groups windows by it.
        quote: Normalised quote asset, e.g. ``USDT``, ``USD``.
        side: Side of the liquidated position: ``long`` or ``short``.
        price: Execution price (Binance average fill price, Bybit bankruptcy price), quote per base.
        qty: Size in base-asset units (coins), converted from contracts where the exchange uses them.
        notional_usd: Size in US dollars (stablecoin quote treated as USD).
        ts: Exchange event time, ms since epoch.
        recv_ts: Local receive time, ms since epoch.
        contracts: Size in the exchange's contract unit when it is not coins (inverse markets), else None.
        throttled: True when the feed publishes at most one liquidation per symbol per interval
            (Binance: 1 per 1000 ms), so counts and USD built from it are lower bounds.
        v: Schema version that wrote the event.
    """

    event_id: str
    exchange: Exchange
    market: Market
    symbol: str
    base: str
    quote: str
    side: PositionSide
    price: Decimal
    qty: Decimal
    notional_usd: Decimal
    ts: int
    recv_ts: int
    contracts: Decimal | None = None
    throttled: bool = False
    v: int = SCHEMA_VERSION


class SideStats(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Count and USD notional of the liquidations of one group (a side or an exchange)."""

    count: int = 0
    usd: Decimal = Decimal(0)


class RiskFactors(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The six factors of the risk score, each already weighted; their sum is the score.

    The formula, weights and ranges are documented in ``services/detector/RISK.md``.
    """

    size: float = 0.0
    intensity: float = 0.0
    acceleration: float = 0.0
    breadth: float = 0.0
    one_sidedness: float = 0.0
    displacement: float = 0.0


class Cascade(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="cascade", tag_field="kind"):
    """One state of a liquidation cascade on one base asset, across exchanges.

    A cascade is published as a lifecycle: one ``open``, zero or more ``update`` and one ``close``, all
    with the same ``cascade_id`` and an increasing ``seq``. Every state carries the full statistics of the
    cascade so far, so a consumer that sees only the latest state has everything.

    Attributes:
        cascade_id: Deterministic id (base asset and opening window start), stable across replays.
        seq: 0 for ``open``, then +1 per published state.
        status: ``open``, ``update`` or ``close``.
        base: Base asset the cascade is on, e.g. ``BTC``.
        window_start: Event time of the first liquidation counted, ms.
        window_end: Event time of the last liquidation counted, ms.
        count: Number of liquidations.
        long: Liquidated longs (count, USD).
        short: Liquidated shorts (count, USD).
        usd: Total USD notional.
        by_exchange: Count and USD per exchange.
        symbols: Exchange symbols that contributed, sorted.
        exchanges: Exchanges that contributed, sorted.
        price_first, price_last, price_min, price_max: Liquidation prices seen (quote per base).
        price_move_pct: (last - first) / first * 100.
        duration_ms: ``window_end - window_start``.
        score: Risk score, 0 to 2+ (sum of ``factors``).
        factors: The weighted factor breakdown.
        tier: Severity tier of ``score``.
        lower_bound: True when any contributing feed is throttled, so counts and USD are lower bounds.
        coverage: Per feed (``exchange:market``), fraction of the window it was connected (1.0 = fully).
        emitted_ts: Wall-clock time the state was published, ms (the only non-deterministic field).
        v: Schema version.
    """

    cascade_id: str
    seq: int
    status: CascadeStatus
    base: str
    window_start: int
    window_end: int
    count: int
    long: SideStats
    short: SideStats
    usd: Decimal
    by_exchange: dict[str, SideStats]
    symbols: list[str]
    exchanges: list[str]
    price_first: Decimal
    price_last: Decimal
    price_min: Decimal
    price_max: Decimal
    price_move_pct: float
    duration_ms: int
    score: float
    factors: RiskFactors
    tier: Tier
    lower_bound: bool = False
    coverage: dict[str, float] = msgspec.field(default_factory=dict)
    emitted_ts: int = 0
    v: int = SCHEMA_VERSION


class FeedStatus(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="feed_status", tag_field="kind"):
    """One step in the life of one exchange connection, published on the feed-status stream.

    A connection slot (``conn``) goes ``connected`` (first connection of the process) or ``reconnected``
    (every later one), ``subscribed`` (the exchange acknowledged the liquidation topics), ``first_data``
    (first frame of any data after the acknowledgement), and ends ``disconnected`` with a reason.
    ``silent`` reports a connection that is up and acknowledged but carries no data while the market
    is active; a ``disconnected`` (reason ``silent``) and a ``reconnected`` follow. An outage of a slot
    runs from its ``disconnected`` to its next ``connected`` or ``reconnected``.

    Attributes:
        exchange: Venue name, lower case.
        market: ``linear`` or ``inverse``.
        conn: Connection slot within the feed, stable across reconnects (Bybit shard index; "0" for a
            feed with one connection). A rotation's successor uses the same slot.
        status: The lifecycle step.
        ts: Wall-clock time of the step at the ingestor, ms since epoch.
        reason: Why: the close reason for ``disconnected`` (``server_closed``, ``ping_timeout``,
            ``silent``, ``shutdown``...), what was missing for ``silent``; empty otherwise.
        session: Number of the connection within the slot since the process started (1, 2, ...).
        since_ts: ``silent`` only: time of the last data the connection carried (or of its
            acknowledgement when none came), ms; 0 otherwise.
        v: Schema version.
    """

    exchange: str
    market: str
    conn: str
    status: FeedState
    ts: int
    reason: str = ""
    session: int = 0
    since_ts: int = 0
    v: int = SCHEMA_VERSION


def tier_for(score: float) -> Tier:
    """Map a risk score to its tier: Low < 0.3 <= Medium < 0.6 <= High < 1.0 <= Critical."""
    if score >= 1.0:
        return "critical"
    if score >= 0.6:
        return "high"
    if score >= 0.3:
        return "medium"
    return "low"


def make_event_id(exchange: str, market: str, symbol: str, side: str, ts: int, *parts: str) -> str:
    """Deterministic id for an exchange event.

    Exchanges publish no liquidation id, so the id hashes what identifies the event on the wire:
    venue, market, symbol, side, exchange time and the raw price/size strings (``parts``). Raw strings
    are hashed, not parsed numbers, so ``"0.10"`` and ``"0.1"`` from two captures stay distinct only if
    the exchange really sent different text. Returns 32 hex characters (128 bits of BLAKE2b).
    """
    key = "|".join((exchange, market, symbol, side, str(ts), *parts))
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
