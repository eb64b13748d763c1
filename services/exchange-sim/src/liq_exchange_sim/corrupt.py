"""Malformed variants of liquidation frames for the ``malformed`` fault (one per :data:`Malformed` kind)."""

from __future__ import annotations

from typing import Any

import msgspec

from liq_exchange_sim.faults import Malformed

_encoder = msgspec.json.Encoder()


def _item(frame: dict[str, Any]) -> dict[str, Any]:
    """The liquidation object inside a frame: Binance ``o`` (raw or enveloped) or Bybit ``data[0]``."""
    body = frame.get("data", frame)
    if isinstance(body, list):
        first: dict[str, Any] = body[0]
        return first
    inner: dict[str, Any] = body["o"]
    return inner


def with_extra_fields(frame: bytes, fields: dict[str, Any]) -> bytes:
    """``frame`` with ``fields`` added to every liquidation object (valid, just more than documented)."""
    doc: dict[str, Any] = msgspec.json.decode(frame)
    body = doc.get("data", doc)
    for item in body if isinstance(body, list) else [body["o"]]:
        item.update(fields)
    return _encoder.encode(doc)


def corrupt(frame: bytes, kind: Malformed, huge_bytes: int) -> bytes:
    """``frame`` broken as ``kind``.

    - ``json``: cut in half, not parseable.
    - ``wrong_type``: price and size as JSON numbers instead of strings.
    - ``missing_field``: the side ``S`` removed.
    - ``nan``: price ``"NaN"``.
    - ``negative``: size negated.
    - ``huge``: a valid frame padded with an extra field to ``huge_bytes``.
    """
    if kind == "json":
        return frame[: max(1, len(frame) // 2)]
    doc: dict[str, Any] = msgspec.json.decode(frame)
    item = _item(doc)
    price_key, size_key = ("ap", "z") if "ap" in item else ("p", "v")
    if kind == "wrong_type":
        item[price_key] = float(item[price_key])
        item[size_key] = float(item[size_key])
    elif kind == "missing_field":
        del item["S"]
    elif kind == "nan":
        item[price_key] = "NaN"
    elif kind == "negative":
        item[size_key] = "-" + item[size_key]
    elif kind == "huge":
        doc["pad"] = "x" * max(0, huge_bytes - len(frame))
    return _encoder.encode(doc)
