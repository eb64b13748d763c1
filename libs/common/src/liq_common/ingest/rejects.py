"""Counting bad exchange input: one counter per reason, one log line per reason.

An ingestor never crashes on a frame and never lets a bad frame take good ones with it: the one place
that parses input catches the error, calls :meth:`Rejects.reject` and moves on to the next frame.
The first reject of each reason is logged with a truncated sample; later ones are only counted, so a
feed gone bad cannot flood the log (the counter ``liq_frames_rejected_total`` shows the rate).
"""

from __future__ import annotations

from collections import Counter as Tally

import msgspec
import structlog

from liq_common.ingest.metrics import FRAMES_REJECTED
from liq_common.logs import truncate

log = structlog.get_logger(__name__)


class Rejected(ValueError):
    """Raised by a normaliser for input it cannot turn into an event.

    Args:
        reason: Low-cardinality snake_case label, e.g. ``bad_json``, ``bad_number``, ``non_positive``.
        detail: Human-readable explanation for the log line.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Rejects:
    """Counts and logs rejected input of one feed.

    Args:
        exchange: ``exchange`` label of the counter.
        market: Logged with the first sample of each reason.
    """

    def __init__(self, exchange: str, market: str) -> None:
        self.exchange = exchange
        self.market = market
        self.counts: Tally[str] = Tally()

    def reject(self, reason: str, raw: bytes | str, detail: str = "") -> None:
        """Count one rejected frame or entry; log it if it is the first with this ``reason``."""
        self.counts[reason] += 1
        FRAMES_REJECTED.labels(self.exchange, reason).inc()
        if self.counts[reason] == 1:
            log.warning(
                "frame_rejected",
                exchange=self.exchange,
                market=self.market,
                reason=reason,
                detail=detail,
                sample=truncate(raw),
                note="first of its reason; later ones are only counted in liq_frames_rejected_total",
            )

    @property
    def total(self) -> int:
        """Rejects of every reason so far."""
        return sum(self.counts.values())


def schema_reason(exc: msgspec.ValidationError) -> str:
    """Reject reason for a frame that is JSON but not the expected shape: ``missing_field``,
    ``bad_value`` (e.g. an unknown enum value) or ``wrong_type``."""
    message = str(exc)
    if "missing required field" in message:
        return "missing_field"
    if "Invalid enum value" in message:
        return "bad_value"
    return "wrong_type"
