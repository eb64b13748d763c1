"""Settings of liq-ingest-bybit, read from the environment once in ``main``."""

from __future__ import annotations

from liq_common.settings import CommonSettings, Port


class Settings(CommonSettings, frozen=True, kw_only=True, rename="upper"):
    """liq-ingest-bybit settings; see the README for every variable."""

    metrics_port: Port = 9102
