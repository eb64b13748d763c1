"""The simulator's frames match recorded exchange frames field by field (names, order, JSON types, values)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import websockets

from liq_exchange_sim import Instrument, Simulator, TruthRecord
from tests.exchange_sim.conftest import fixtures_dir, recv_json


def _recorded(exchange: str, predicate: Any) -> dict[str, Any]:
    path = fixtures_dir() / "tardis" / "mappers.test.liquidation-messages.jsonl"
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row["tardis_exchange"] == exchange and not row["tardis_generated"] and predicate(row["message"]):
            message: dict[str, Any] = row["message"]
            return message
    raise AssertionError(f"no recorded {exchange} frame in {path}")


def _shape(value: Any) -> Any:
    """Field names in order and JSON types, recursively (the frame's schema as sent)."""
    if isinstance(value, dict):
        return [(k, _shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def _binance_record(order: dict[str, Any], market: str) -> TruthRecord:
    return TruthRecord(
        exchange="binance",
        market=market,  # type: ignore[arg-type]
        symbol=order["s"],
        side="long" if order["S"] == "SELL" else "short",
        price=Decimal(order["ap"]),
        size=Decimal(order["z"]),
        ts=order["T"],
        order_price=Decimal(order["p"]),
    )


async def test_usdm_force_order_matches_recorded_frame(sim: Simulator) -> None:
    """A USD-M forceOrder on a combined stream has the recorded frame's fields, order, types and values."""
    recorded = _recorded("binance-futures", lambda m: "forceOrder" in m.get("stream", ""))
    order = recorded["data"]["o"]
    async with websockets.connect(f"{sim.binance_usdm_ws}/market/stream?streams=btcusdt@forceOrder") as ws:
        await sim.wait_for(lambda s: s.stats.subscriptions >= 1)
        sim.emit([_binance_record(order, "linear")])
        frame = await recv_json(ws)
    assert _shape(frame) == _shape(recorded)
    assert frame["stream"] == recorded["stream"]
    # The recording's l (0.015) differs from z (0.014) and E from T; the simulator fills one order fully.
    for key in ("s", "S", "o", "f", "q", "p", "ap", "X", "z", "T"):
        assert frame["data"]["o"][key] == order[key], key
    assert frame["data"]["o"]["l"] == order["z"]
    assert frame["data"]["e"] == "forceOrder"


async def test_coinm_force_order_matches_recorded_frame_with_pair(sim: Simulator) -> None:
    """A COIN-M forceOrder carries ``ps`` and contract quantities exactly like the recorded frame."""
    recorded = _recorded("binance-delivery", lambda m: "forceOrder" in m.get("stream", ""))
    order = recorded["data"]["o"]
    sim.universe.add(
        "binance_coinm",
        Instrument(symbol=order["s"], base="BTC", quote="USD", contract_size=Decimal(100), step_size=Decimal(1)),
    )
    async with websockets.connect(f"{sim.binance_coinm_ws}/stream?streams={recorded['stream']}") as ws:
        await sim.wait_for(lambda s: s.stats.subscriptions >= 1)
        sim.emit([_binance_record(order, "inverse")])
        frame = await recv_json(ws)
    assert _shape(frame) == _shape(recorded)
    assert frame["data"]["o"] == order
    assert frame["data"]["E"] == order["T"]
    totals = sim.ledger.totals()
    assert totals[("binance", "inverse", "long")].usd == Decimal(300)  # 3 contracts x 100 USD


async def test_bybit_all_liquidation_matches_recorded_frame(sim: Simulator) -> None:
    """A Bybit allLiquidation push has the recorded frame's fields, order, types and item values."""
    recorded = _recorded("bybit", lambda m: m.get("topic", "").startswith("allLiquidation."))
    item = recorded["data"][0]
    sim.universe.add(
        "bybit_linear",
        Instrument(symbol=item["s"], base=item["s"].removesuffix("USDT"), quote="USDT"),
    )
    async with websockets.connect(f"{sim.bybit_ws}/v5/public/linear") as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": [recorded["topic"]]}))
        ack = await recv_json(ws)
        assert ack["success"] is True
        sim.emit(
            [
                TruthRecord(
                    exchange="bybit",
                    market="linear",
                    symbol=item["s"],
                    side="long" if item["S"] == "Buy" else "short",
                    price=Decimal(item["p"]),
                    size=Decimal(item["v"]),
                    ts=item["T"],
                )
            ]
        )
        frame = await recv_json(ws)
    assert _shape(frame) == _shape(recorded)
    assert frame["data"] == recorded["data"]
    assert frame["topic"] == recorded["topic"]
    assert frame["type"] == "snapshot"
    assert frame["ts"] >= item["T"]
    assert sim.ledger.totals()[("bybit", "linear", "short")].usd == Decimal(item["v"]) * Decimal(item["p"])


async def test_bybit_replies_match_documented_shapes(sim: Simulator) -> None:
    """Subscribe ack, handler-not-found failure and pong have the documented linear/inverse fields."""
    async with websockets.connect(f"{sim.bybit_ws}/v5/public/inverse") as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": ["allLiquidation.BTCUSD"], "req_id": "r1"}))
        ack = await recv_json(ws)
        await ws.send(json.dumps({"op": "subscribe", "args": ["liquidation.BTCUSD"]}))
        failure = await recv_json(ws)
        await ws.send(json.dumps({"op": "ping"}))
        pong = await recv_json(ws)
    keys = ["success", "ret_msg", "conn_id", "req_id", "op"]
    assert list(ack) == keys
    assert list(failure) == keys
    assert list(pong) == keys
    assert (ack["success"], ack["ret_msg"], ack["req_id"], ack["op"]) == (True, "", "r1", "subscribe")
    assert failure["success"] is False
    assert failure["ret_msg"] == "error:handler not found,topic:liquidation.BTCUSD"
    assert (pong["success"], pong["ret_msg"], pong["req_id"], pong["op"]) == (True, "pong", "", "ping")
    assert ack["conn_id"] == pong["conn_id"]
