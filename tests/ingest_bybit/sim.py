"""The Bybit ingestor wired to the exchange simulator, for tests and the benchmark."""

from __future__ import annotations

from typing import Any

from liq_exchange_sim import Simulator
from liq_ingest_bybit.settings import Settings
from tests.ingest_common.harness import fast_settings


def urls(sim: Simulator) -> dict[str, str]:
    """Where ``sim`` serves both Bybit markets and the instruments listing, by setting name."""
    return {
        "bybit_linear_ws_url": f"{sim.bybit_ws}/v5/public/linear",
        "bybit_inverse_ws_url": f"{sim.bybit_ws}/v5/public/inverse",
        "bybit_rest_url": sim.bybit_rest,
    }


def settings_for(sim: Simulator, events_stream: str, **overrides: Any) -> Settings:
    """Settings pointing both Bybit markets at ``sim``, with fast heartbeat and subscription timers."""
    timers = {
        "heartbeat_interval": 0.5,
        "pong_timeout": 0.5,
        "ack_timeout": 2.0,
        "subscribe_retry": 0.3,
        "instruments_refresh": 30.0,
    }
    return fast_settings(Settings, events_stream, {**urls(sim), **timers}, overrides)
