"""The in-process API: waiting, input validation, per-connection state and small protocol corners."""

from __future__ import annotations

import json

import pytest
import websockets

from liq_exchange_sim import Simulator
from liq_exchange_sim.ledger import summarize
from tests.exchange_sim.conftest import http_get, liq, recv_json


async def test_wait_for_times_out_with_the_counters(sim: Simulator) -> None:
    """A predicate that stays false raises TimeoutError carrying the counters."""
    with pytest.raises(TimeoutError, match="frames_sent"):
        await sim.wait_for(lambda s: s.stats.frames_sent > 0, timeout=0.05)


async def test_emit_rejects_unlisted_symbols(sim: Simulator) -> None:
    """Records for symbols the venue does not list raise KeyError and change nothing."""
    with pytest.raises(KeyError, match="NOPEUSDT"):
        sim.emit([liq(symbol="NOPEUSDT")])
    with pytest.raises(KeyError):
        sim.emit([liq(exchange="okx")])
    await sim.flush()
    assert sim.ledger.totals() == {}


async def test_combined_property_switches_the_envelope(sim: Simulator) -> None:
    """GET_PROPERTY/SET_PROPERTY ``combined`` toggle the stream envelope on a raw connection."""
    async with websockets.connect(f"{sim.binance_usdm_ws}/market/ws/!forceOrder@arr") as ws:
        await ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 1}))
        assert await recv_json(ws) == {"result": False, "id": 1}
        await ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["combined", True], "id": 2}))
        assert await recv_json(ws) == {"result": None, "id": 2}
        sim.emit([liq()])
        frame = await recv_json(ws)
    assert frame["stream"] == "!forceOrder@arr"
    assert frame["data"]["o"]["s"] == "BTCUSDT"


async def test_bybit_rejects_non_json_and_unknown_ops(sim: Simulator) -> None:
    """Non-JSON text and unknown ops get ``success: false`` replies and the connection stays usable."""
    async with websockets.connect(f"{sim.bybit_ws}/v5/public/linear") as ws:
        await ws.send("hello")
        assert (await recv_json(ws))["success"] is False
        await ws.send(json.dumps({"op": "fly", "args": []}))
        reply = await recv_json(ws)
        assert reply["success"] is False
        assert reply["op"] == "fly"
        await ws.send(json.dumps({"op": "ping", "req_id": "p1"}))
        pong = await recv_json(ws)
    assert (pong["ret_msg"], pong["req_id"]) == ("pong", "p1")


async def test_per_connection_counters_ledger_and_close_reasons(sim: Simulator) -> None:
    """Each connection has its own counters and ledger slice; client closes are counted as such."""
    async with (
        websockets.connect(f"{sim.binance_usdm_ws}/market/ws/!forceOrder@arr") as all_market,
        websockets.connect(f"{sim.binance_usdm_ws}/market/ws/ethusdt@forceOrder") as eth_only,
    ):
        await sim.wait_for(lambda s: s.stats.subscriptions >= 2)
        await eth_only.ping()
        await sim.wait_for(lambda s: s.stats.ping_frames_received == 1)
        sim.emit([liq(), liq(symbol="ETHUSDT", size="2", price="3000")])
        await recv_json(all_market)
        await recv_json(all_market)
        await recv_json(eth_only)
        first, second = sim.connections("binance_usdm")
        assert (first.stats.frames_sent, second.stats.frames_sent) == (2, 1)
        assert summarize(sim.ledger.for_connection(second.id))[("binance", "linear", "long")].usd == 6000
        assert first.path == "/market/ws/!forceOrder@arr"
    await sim.wait_for(lambda s: s.stats.connections_closed == 2)
    assert sim.stats.closes["client"] == 2
    assert sim.ledger.totals(unique=False)[("binance", "linear", "long")].count == 3


async def test_instruments_info_rejects_unknown_category(sim: Simulator) -> None:
    """An unknown category is a params error (retCode 10001), an empty spot list is fine."""
    _, _, body = await http_get(sim.bybit_rest, "/v5/market/instruments-info?category=futures")
    assert json.loads(body)["retCode"] == 10001
    _, _, body = await http_get(sim.bybit_rest, "/v5/market/instruments-info?category=spot")
    assert json.loads(body)["result"]["list"] == []
