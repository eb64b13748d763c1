"""Tiered liquidation log lines: big liquidations are worth a line at info, small ones only at debug.

* ``>= full_usd`` (default $100k): info, every field of the event (``liquidation_large``).
* ``>= compact_usd`` (default $10k): info, one compact line (``liquidation``).
* smaller: debug, compact (``liquidation_small``); free when the level is info.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import structlog

from liq_common.events import Liquidation


class TieredLog:
    """Logs each published liquidation at the level its USD size deserves.

    The logger is bound once, when the first event is recorded (after logging is configured): a
    module-level structlog proxy would build a new logger on every call, and the debug tier is skipped
    without a call at all when debug is filtered out.
    """

    def __init__(self, full_usd: float, compact_usd: float) -> None:
        if compact_usd > full_usd:
            raise ValueError(f"compact threshold {compact_usd} exceeds full threshold {full_usd}")
        self.full_usd = Decimal(str(full_usd))
        self.compact_usd = Decimal(str(compact_usd))
        self._log: Any = None
        self._debug = False

    def record(self, event: Liquidation) -> None:
        """Write the log line of ``event`` (or nothing, when its level is filtered out)."""
        usd = event.notional_usd
        if usd < self.compact_usd and self._log is not None and not self._debug:
            return
        log = self._log
        if log is None:
            log = self._log = structlog.get_logger("liq_common.ingest.liquidations").bind()
            enabled = getattr(log, "is_enabled_for", None)
            self._debug = enabled(logging.DEBUG) if enabled is not None else True
        if usd >= self.full_usd:
            log.info(
                "liquidation_large",
                exchange=event.exchange,
                market=event.market,
                symbol=event.symbol,
                side=event.side,
                price=event.price,
                qty=event.qty,
                contracts=event.contracts,
                usd=usd,
                ts=event.ts,
                lag_ms=event.recv_ts - event.ts,
                throttled=event.throttled,
                event_id=event.event_id,
            )
        elif usd >= self.compact_usd:
            log.info("liquidation", ex=event.exchange, sym=event.symbol, side=event.side, usd=round(usd))
        elif self._debug:
            log.debug("liquidation_small", ex=event.exchange, sym=event.symbol, side=event.side, usd=round(usd))
