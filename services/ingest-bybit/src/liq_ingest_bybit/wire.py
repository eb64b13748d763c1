"""Bybit v5 public frames as typed msgspec Structs (exchange-feeds.md §3.3-3.4).

One Struct, :class:`Frame`, decodes in one pass both an ``allLiquidation`` push::

    {"topic": "allLiquidation.ROSEUSDT", "type": "snapshot", "ts": 1739502303204,
     "data": [{"T": 1739502302929, "s": "ROSEUSDT", "S": "Sell", "v": "20000", "p": "0.04499"}]}

and the replies to our requests (subscribe acks, failures and pongs)::

    {"success": true, "ret_msg": "", "conn_id": "...", "req_id": "7", "op": "subscribe"}
    {"success": false, "ret_msg": "error:handler not found,topic:liquidation.BTCUSDT", ..., "op": "subscribe"}
    {"success": true, "ret_msg": "pong", "conn_id": "...", "req_id": "", "op": "ping"}

A push on another topic (never subscribed by us) has a different ``data`` shape; it fails the typed
decode and is recognised with :class:`Envelope`. Numbers other than times are strings and stay strings
(the event id hashes the exact text). Unknown fields are ignored.
"""

from __future__ import annotations

from typing import Literal

import msgspec

LIQUIDATION_TOPIC = "allLiquidation."
"""The only liquidation topic prefix; ``liquidation.{symbol}`` is dead (exchange-feeds.md §3.2)."""


class Item(msgspec.Struct, frozen=True, gc=False):
    """One liquidation inside an ``allLiquidation`` push."""

    T: int
    """Event time, ms."""
    s: str
    """Symbol."""
    S: Literal["Buy", "Sell"]
    """POSITION side: ``Buy`` means a LONG was liquidated (exchange-feeds.md §3.5)."""
    v: str
    """Executed size: base coin on linear, USD contracts on inverse (§3.3)."""
    p: str
    """Bankruptcy price."""


class Frame(msgspec.Struct, frozen=True, gc=False):
    """Any frame of the public linear/inverse streams that the ingestor expects."""

    topic: str | None = None
    ts: int = 0
    data: list[Item] | None = None
    op: str | None = None
    success: bool | None = None
    ret_msg: str = ""
    req_id: str = ""


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """The minimum of a frame, to classify one that :class:`Frame` refused."""

    topic: str | None = None
    op: str | None = None


FRAME_DECODER: msgspec.json.Decoder[Frame] = msgspec.json.Decoder(Frame)
ENVELOPE_DECODER: msgspec.json.Decoder[Envelope] = msgspec.json.Decoder(Envelope)


class Instrument(msgspec.Struct, frozen=True, gc=False):
    """One entry of ``GET /v5/market/instruments-info`` (``result.list``)."""

    symbol: str
    baseCoin: str = ""
    quoteCoin: str = ""
    status: str = "Trading"


class InstrumentPage(msgspec.Struct, frozen=True):
    """``result`` of an instruments-info page."""

    items: list[Instrument] = msgspec.field(name="list")
    nextPageCursor: str = ""


class InstrumentsReply(msgspec.Struct, frozen=True):
    """An instruments-info response; ``retCode`` 0 means success."""

    retCode: int
    retMsg: str = ""
    result: InstrumentPage | None = None


INSTRUMENTS_DECODER: msgspec.json.Decoder[InstrumentsReply] = msgspec.json.Decoder(InstrumentsReply)


def subscribe_request(req_id: str, topics: list[str]) -> bytes:
    """A subscribe request ``{"req_id": ..., "op": "subscribe", "args": [...]}`` (§3.4)."""
    return msgspec.json.encode({"req_id": req_id, "op": "subscribe", "args": topics})


def unsubscribe_request(req_id: str, topics: list[str]) -> bytes:
    """An unsubscribe request ``{"req_id": ..., "op": "unsubscribe", "args": [...]}`` (§3.4)."""
    return msgspec.json.encode({"req_id": req_id, "op": "unsubscribe", "args": topics})


def ping_request(req_id: str) -> bytes:
    """The application heartbeat ``{"req_id": ..., "op": "ping"}`` (§3.4: every 20 s)."""
    return msgspec.json.encode({"req_id": req_id, "op": "ping"})


def args_chars(topics: list[str]) -> int:
    """Characters the topics take in a JSON ``args`` array, for the 21,000-character limit (§3.4)."""
    return len(msgspec.json.encode(topics))
