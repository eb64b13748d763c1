"""Settings of liq-ingest-binance, read from the environment once in ``main``."""

from __future__ import annotations

from liq_common.ingest.settings import FeedSettings
from liq_common.settings import Port, PositiveFloat, PositiveInt


class Settings(FeedSettings, frozen=True, kw_only=True, rename="upper"):
    """liq-ingest-binance settings (env var = upper-case field name).

    Attributes:
        binance_usdm_ws_url: USD-M all-market liquidation stream. The ``/market`` routed path is
            required since the 2026 URL split: unrouted connections get no ``forceOrder`` data and
            no error (exchange-feeds.md §1.1).
        binance_coinm_ws_url: COIN-M all-market liquidation stream (no routed path, §2.1).
        binance_usdm_rest_url: USD-M REST base, for ``/fapi/v1/exchangeInfo``.
        binance_coinm_rest_url: COIN-M REST base, for ``/dapi/v1/exchangeInfo`` (contract sizes).
        binance_markets: Comma-separated feeds to run: ``linear`` (USD-M), ``inverse`` (COIN-M).
        rotate_after: Age at which a connection is replaced, seconds; before Binance's 24 h forced
            close (§1.8).
        rotate_overlap: Seconds the old and the new connection both read during a rotation.
        instruments_refresh: Seconds between exchangeInfo refreshes.
        instruments_min_gap: Shortest time between two exchangeInfo fetches (unknown-symbol refreshes).
        max_frame_bytes: Frames larger than this are rejected (``oversized``) without parsing.
        subscribe_retry: Seconds between ``SUBSCRIBE`` attempts when a connection turns out not to carry
            the stream (checked with ``LIST_SUBSCRIPTIONS`` on every connect, §1.3).
        binance_usdm_control_stream: Control stream subscribed on the same USD-M connection to prove the
            link carries data (``!markPrice@arr@1s``: every symbol's mark price each second, also a
            ``/market`` stream); empty disables it. Silent after ``CONTROL_TIMEOUT`` s without it.
        binance_coinm_control_stream: The same for COIN-M; empty by default (dstream has no all-market
            mark price stream), so COIN-M silence is judged by cross-exchange activity only.
    """

    metrics_port: Port = 9101
    binance_usdm_ws_url: str = "wss://fstream.binance.com/market/stream?streams=!forceOrder@arr"
    binance_coinm_ws_url: str = "wss://dstream.binance.com/stream?streams=!forceOrder@arr"
    binance_usdm_rest_url: str = "https://fapi.binance.com"
    binance_coinm_rest_url: str = "https://dapi.binance.com"
    binance_markets: str = "linear,inverse"
    rotate_after: PositiveFloat = 23.5 * 3600
    rotate_overlap: PositiveFloat = 10.0
    instruments_refresh: PositiveFloat = 3600.0
    instruments_min_gap: PositiveFloat = 5.0
    max_frame_bytes: PositiveInt = 1 << 20
    subscribe_retry: PositiveFloat = 30.0
    binance_usdm_control_stream: str = "!markPrice@arr@1s"
    binance_coinm_control_stream: str = ""
