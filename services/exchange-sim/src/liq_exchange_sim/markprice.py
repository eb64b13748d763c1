"""Binance USD-M ``!markPrice@arr`` streams: the cheap "this link carries data" signal.

Binance pushes the mark price of every symbol as one array frame every 3 s (``!markPrice@arr``) or every
second (``!markPrice@arr@1s``), whether or not anything is liquidated. The stream belongs to the routed
``/market`` path since the 2026 URL split (exchange-feeds.md §1.1: "@markPrice belongs to /market"), so
an unrouted connection gets nothing, exactly as for ``forceOrder``. Payload shape of Binance's "Mark
Price Stream for All market" page: ``[{"e":"markPriceUpdate","E":ms,"s":..,"p":..,"i":..,"P":..,
"r":..,"T":ms}, ...]``; the simulator keeps each symbol's mark at its reference price.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import msgspec

from liq_exchange_sim.frames import dec
from liq_exchange_sim.instruments import Instrument

INTERVALS: dict[str, float] = {"!markPrice@arr": 3.0, "!markPrice@arr@1s": 1.0}
"""Stream name -> push interval, seconds."""


class _MarkPrice(msgspec.Struct):
    e: str
    E: int
    s: str
    p: str
    i: str
    P: str
    r: str
    T: int


_encoder = msgspec.json.Encoder()


def mark_price_payload(instruments: list[Instrument], now_ms: int) -> bytes:
    """One ``!markPrice@arr`` payload for ``instruments`` at ``now_ms``."""
    next_funding = now_ms - now_ms % 28_800_000 + 28_800_000
    return _encoder.encode(
        [
            _MarkPrice(
                e="markPriceUpdate",
                E=now_ms,
                s=inst.symbol,
                p=dec(inst.ref_price),
                i=dec(inst.ref_price),
                P=dec(inst.ref_price),
                r="0.00010000",
                T=next_funding,
            )
            for inst in instruments
        ]
    )


async def push_mark_prices(
    stream: str, interval: float, send: Callable[[str, bytes], None], instruments: Callable[[], list[Instrument]]
) -> None:
    """Send one mark-price frame every ``interval`` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval)
        send(stream, mark_price_payload(instruments(), int(time.time() * 1000)))
