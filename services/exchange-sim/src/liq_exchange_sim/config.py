"""Simulator configuration: listeners, instrument universe and the exchange rules' timings."""

from __future__ import annotations

import dataclasses

from liq_exchange_sim.instruments import Universe


@dataclasses.dataclass
class SimConfig:
    """Everything :class:`~liq_exchange_sim.server.Simulator` needs; defaults are the production values.

    Attributes:
        host: Address every listener binds.
        binance_usdm_port: fstream listener port (0 = any free port).
        binance_coinm_port: dstream listener port.
        bybit_port: Bybit listener port (linear and inverse paths, REST).
        instruments: Listed symbols per feed; ``None`` = :meth:`Universe.default`.
        binance_throttle_ms: At most one liquidation per symbol per this many ms (exchange-feeds.md §1.7).
        binance_ping_interval: Seconds between server ping frames (§1.8: 3 minutes).
        binance_pong_timeout: Close when no pong arrived for this many seconds (§1.8: 10 minutes).
        binance_max_lifetime: Forced close after this many seconds (§1.8: 24 hours).
        binance_max_incoming_per_s: Close a connection sending more messages per second (§1.8: 10);
            ``None`` disables.
        bybit_push_interval_ms: ``allLiquidation`` push cadence (§3.3: 500 ms).
        bybit_ping_timeout: Close a connection that sent no ``{"op":"ping"}`` for this many seconds
            (§3.4 says 10 minutes without ping-pong; data does not count here).
        bybit_args_limit: Characters of subscribed ``args`` per connection (§3.4: 21,000).
        close_timeout: Seconds to wait for the client's close frame before dropping TCP.
        max_size: Largest client message accepted, bytes.
        keep_ledger_entries: Keep every ledger entry (tests); ``False`` keeps totals only (long runs).
        tick_interval: Seconds between wall-clock checks (window closes, stall toggles) when no scenario runs.
        queue_high_water: Frames queued per connection before a scenario waits for the client.
    """

    host: str = "127.0.0.1"
    binance_usdm_port: int = 0
    binance_coinm_port: int = 0
    bybit_port: int = 0
    instruments: Universe | None = None
    binance_throttle_ms: int = 1000
    binance_ping_interval: float = 180.0
    binance_pong_timeout: float = 600.0
    binance_max_lifetime: float = 86_400.0
    binance_max_incoming_per_s: int | None = 10
    bybit_push_interval_ms: int = 500
    bybit_ping_timeout: float = 600.0
    bybit_args_limit: int = 21_000
    close_timeout: float = 2.0
    max_size: int = 2**20
    keep_ledger_entries: bool = True
    tick_interval: float = 0.01
    queue_high_water: int = 10_000
