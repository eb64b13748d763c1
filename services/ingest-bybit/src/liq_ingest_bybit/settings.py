"""Settings of liq-ingest-bybit, read from the environment once in ``main``."""

from __future__ import annotations

from liq_common.ingest.settings import FeedSettings
from liq_common.settings import Port, PositiveFloat, PositiveInt


class Settings(FeedSettings, frozen=True, kw_only=True, rename="upper"):
    """liq-ingest-bybit settings (env var = upper-case field name).

    Attributes:
        bybit_linear_ws_url: Public linear stream (USDT/USDC perpetuals and futures, exchange-feeds.md §3.1).
        bybit_inverse_ws_url: Public inverse stream (coin-margined contracts).
        bybit_rest_url: REST base for ``/v5/market/instruments-info``.
        bybit_symbols: Comma-separated symbols to follow instead of listing them over REST; inverse
            ones (``BTCUSD``, ``BTCUSDH26``) go to the inverse stream, the rest to linear.
        bybit_markets: Comma-separated markets to run: ``linear``, ``inverse``.
        instruments_refresh: Seconds between instrument listings; new symbols are subscribed then.
        heartbeat_interval: Seconds between ``{"op":"ping"}`` frames (Bybit recommends 20 s, §3.4).
        pong_timeout: Seconds to wait for the pong before the connection is declared dead.
        ack_timeout: Seconds to wait for a subscribe reply before the topics are retried.
        subscribe_retry: Seconds between re-sends of failed topics.
        subscribe_batch: Topics per subscribe request on a fresh connection.
        instruments_page_limit: ``limit`` of each instruments-info page (1..1000).
        args_limit: Characters of ``args`` per connection (21,000 on Bybit, §3.4).
        max_frame_bytes: Frames larger than this are rejected (``oversized``) without parsing.
    """

    metrics_port: Port = 9102
    bybit_linear_ws_url: str = "wss://stream.bybit.com/v5/public/linear"
    bybit_inverse_ws_url: str = "wss://stream.bybit.com/v5/public/inverse"
    bybit_rest_url: str = "https://api.bybit.com"
    bybit_symbols: str = ""
    bybit_markets: str = "linear,inverse"
    instruments_refresh: PositiveFloat = 300.0
    heartbeat_interval: PositiveFloat = 20.0
    pong_timeout: PositiveFloat = 10.0
    ack_timeout: PositiveFloat = 10.0
    subscribe_retry: PositiveFloat = 30.0
    subscribe_batch: PositiveInt = 10
    instruments_page_limit: PositiveInt = 1000
    args_limit: PositiveInt = 21_000
    max_frame_bytes: PositiveInt = 1 << 20
