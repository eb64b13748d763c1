"""The Binance ingestor wired to the exchange simulator, for tests and the benchmark."""

from __future__ import annotations

from typing import Any

from liq_exchange_sim import Simulator
from liq_ingest_binance.settings import Settings
from tests.ingest_common.harness import FAST


def settings_for(sim: Simulator, events_stream: str, **overrides: Any) -> Settings:
    """Settings pointing both Binance feeds at ``sim`` (routed USD-M path, combined streams)."""
    values: dict[str, Any] = {
        **FAST,
        "events_stream": events_stream,
        "binance_usdm_ws_url": f"{sim.binance_usdm_ws}/market/stream?streams=!forceOrder@arr",
        "binance_coinm_ws_url": f"{sim.binance_coinm_ws}/stream?streams=!forceOrder@arr",
        "binance_usdm_rest_url": sim.binance_usdm_rest,
        "binance_coinm_rest_url": sim.binance_coinm_rest,
        "rotate_overlap": 0.3,
        "instruments_min_gap": 0.05,
        "subscribe_retry": 0.2,
    }
    values.update(overrides)
    return Settings(**values)
