"""Per-connection fault knobs; a plan is copied into each new connection and can be changed at any time."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

Malformed = Literal["json", "wrong_type", "missing_field", "nan", "negative", "huge"]
MALFORMED_KINDS: tuple[Malformed, ...] = ("json", "wrong_type", "missing_field", "nan", "negative", "huge")


@dataclasses.dataclass
class FaultPlan:
    """What to break on one connection (or, as a feed default, on each new connection).

    Attributes:
        drop_after_frames: After this many liquidation frames, close the TCP connection without a
            WebSocket close frame (the client sees code 1006).
        stall: Stop sending (frames are discarded, not in the ledger) and stop reading (no pongs, no
            replies); Binance server pings pause too.
        refuse_status: HTTP status (429, 503, ...) answering the handshake instead of upgrading.
        refuse_count: How many handshakes to refuse; ``None`` = all while ``refuse_status`` is set.
        malformed: Corrupt the next ``malformed_count`` liquidation frames this way.
        malformed_count: Frames left to corrupt; decremented per corrupted frame.
        huge_bytes: Size a ``huge`` frame is padded to (default 2 MiB, over websockets' 1 MiB default).
        fail_subscription: Answer subscriptions with the exchange's error frame and do not subscribe.
        duplicate_every: Send every Nth liquidation frame twice.
        reorder_window: Send frames in reversed groups of this many.
        extra_fields: Add these fields to every liquidation object (Binance ``o``, each Bybit ``data``
            item), like the undocumented ``st`` Binance sometimes sends; the frame stays good
            (ledger ``delivered``): clients must ignore unknown fields.
    """

    drop_after_frames: int | None = None
    stall: bool = False
    refuse_status: int | None = None
    refuse_count: int | None = None
    malformed: Malformed | None = None
    malformed_count: int = 1
    huge_bytes: int = 2 * 1024 * 1024
    fail_subscription: bool = False
    duplicate_every: int | None = None
    reorder_window: int | None = None
    extra_fields: dict[str, Any] | None = None

    def copy(self) -> FaultPlan:
        """An independent copy (for a new connection)."""
        extra = dict(self.extra_fields) if self.extra_fields is not None else None
        return dataclasses.replace(self, extra_fields=extra)

    def take_refusal(self) -> int | None:
        """The status to refuse this handshake with, consuming one refusal; ``None`` to accept."""
        if self.refuse_status is None:
            return None
        if self.refuse_count is not None:
            if self.refuse_count <= 0:
                return None
            self.refuse_count -= 1
        return self.refuse_status

    def take_malformed(self) -> Malformed | None:
        """The corruption for the next frame, consuming one; ``None`` to send it intact."""
        if self.malformed is None or self.malformed_count <= 0:
            return None
        self.malformed_count -= 1
        kind = self.malformed
        if self.malformed_count <= 0:
            self.malformed, self.malformed_count = None, 1
        return kind
