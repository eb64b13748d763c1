"""The Binance ingestor wired to the exchange simulator, for tests and the benchmark."""

from __future__ import annotations

from typing import Any

from liq_exchange_sim import Simulator
from liq_ingest_binance.settings import Settings
from tests.ingest_common.harness import fast_settings


def urls(sim: Simulator) -> dict[str, str]:
    """Where ``sim`` serves both Binance feeds, by setting name (routed USD-M path, combined streams)."""
    return {
        "binance_usdm_ws_url": f"{sim.binance_usdm_ws}/market/stream?streams=!forceOrder@arr",
        "binance_coinm_ws_url": f"{sim.binance_coinm_ws}/stream?streams=!forceOrder@arr",
        "binance_usdm_rest_url": sim.binance_usdm_rest,
        "binance_coinm_rest_url": sim.binance_coinm_rest,
    }


def settings_for(sim: Simulator, events_stream: str, **overrides: Any) -> Settings:
    """Settings pointing both Binance feeds at ``sim``, with fast rotation, exchangeInfo and SUBSCRIBE timers."""
    timers = {"rotate_overlap": 0.3, "instruments_min_gap": 0.05, "subscribe_retry": 0.2}
    return fast_settings(Settings, events_stream, {**urls(sim), **timers}, overrides)
