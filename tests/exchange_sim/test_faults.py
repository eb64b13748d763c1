"""Every fault knob, set before or during a run, observed from a real websockets client."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from liq_exchange_sim import MALFORMED_KINDS, Malformed, Simulator, TruthRecord
from tests.exchange_sim.conftest import liq, now_ms, recv_json
from tests.waiting import scaled

ALL_MARKET = "/market/ws/!forceOrder@arr"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "BNBUSDT", "ADAUSDT", "AVAXUSDT"]


def _burst(count: int) -> list[TruthRecord]:
    """``count`` liquidations on distinct symbols (none throttled), in symbol order."""
    t0 = now_ms() - 5_000
    return [liq(symbol=SYMBOLS[i], ts=t0 + i) for i in range(count)]


async def test_drop_after_n_frames_closes_without_close_frame(sim: Simulator) -> None:
    """After N frames the TCP connection ends abruptly (1006); later frames are not in the ledger."""
    sim.faults("binance_usdm").drop_after_frames = 2
    async with websockets.connect(f"{sim.binance_usdm_ws}{ALL_MARKET}") as ws:
        await sim.wait_for(lambda s: s.stats.subscriptions >= 1)
        sim.emit(_burst(5))
        got = [await recv_json(ws), await recv_json(ws)]
        with pytest.raises(ConnectionClosedError):
            async with asyncio.timeout(scaled(5)):
                await ws.recv()
        assert ws.close_code == 1006
    assert [f["o"]["s"] for f in got] == SYMBOLS[:2]
    assert sim.ledger.totals()[("binance", "linear", "long")].count == 2
    assert sim.stats.closes["drop_fault"] == 1


async def test_stall_stops_frames_and_replies_then_resumes(sim: Simulator) -> None:
    """A stalled connection gets no frames, no pongs and no replies; lifting the stall resumes service."""
    async with websockets.connect(f"{sim.bybit_ws}/v5/public/linear", ping_interval=None) as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": ["allLiquidation.BTCUSDT"]}))
        await recv_json(ws)
        sim.set_faults("bybit_linear", stall=True)
        sim.emit([liq("bybit")])
        await sim.flush()
        await sim.wait_for(lambda s: s.stats.frames_discarded == 1)
        await ws.send('{"op":"ping"}')
        pong_waiter = asyncio.ensure_future(await ws.ping())
        reply_task = asyncio.ensure_future(ws.recv())
        done, _ = await asyncio.wait([reply_task, pong_waiter], timeout=0.3)
        assert not done  # bounded check that nothing answers while stalled
        assert sim.stats.client_pings == 0
        sim.set_faults("bybit_linear", stall=False)
        async with asyncio.timeout(scaled(5)):
            reply = json.loads(await reply_task)  # the ping sent during the stall is read now
            await pong_waiter
        assert reply["ret_msg"] == "pong"
        sim.emit([liq("bybit", ts=now_ms() + 1)])
        push = await recv_json(ws)
        assert push["topic"] == "allLiquidation.BTCUSDT"
    assert sim.ledger.totals()[("bybit", "linear", "long")].count == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_refuse_handshake_with_http_status(sim: Simulator, status: int) -> None:
    """The next handshakes are refused with the configured HTTP status, then accepted again."""
    sim.set_faults("binance_usdm", refuse_status=status, refuse_count=2)
    for _ in range(2):
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(f"{sim.binance_usdm_ws}{ALL_MARKET}")
        assert info.value.response.status_code == status
    async with websockets.connect(f"{sim.binance_usdm_ws}{ALL_MARKET}"):
        pass
    assert sim.stats.handshakes_refused == 2
    assert sim.stats.connections_opened == 1


def _check_malformed(kind: Malformed, text: str, clean: dict[str, Any]) -> None:
    if kind == "json":
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        return
    frame = json.loads(text)
    order = frame["o"]
    if kind == "wrong_type":
        assert isinstance(order["ap"], float)
        assert isinstance(order["z"], float)
    elif kind == "missing_field":
        assert "S" not in order
    elif kind == "nan":
        assert order["ap"] == "NaN"
        assert math.isnan(float(order["ap"]))
    elif kind == "negative":
        assert float(order["z"]) < 0
    elif kind == "huge":
        assert len(text) >= 2 * 1024 * 1024
        assert list(order) == list(clean["o"])
        assert order["s"] == "BTCUSDT"


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
async def test_malformed_frames(sim: Simulator, kind: Malformed) -> None:
    """The next frame is broken as asked, marked ``corrupted`` in the ledger; the following one is clean."""
    async with websockets.connect(f"{sim.binance_usdm_ws}{ALL_MARKET}", max_size=None) as ws:
        await sim.wait_for(lambda s: s.stats.subscriptions >= 1)
        sim.set_faults("binance_usdm", malformed=kind, malformed_count=1)  # during the run
        sim.emit(_burst(2))
        bad = await ws.recv()
        good = json.loads(await ws.recv())
    assert isinstance(bad, str)
    _check_malformed(kind, bad, good)
    assert good["o"]["s"] == "ETHUSDT"
    kinds = [e.kind for e in sim.ledger.entries]
    assert kinds == ["corrupted", "delivered"]
    assert sim.ledger.totals()[("binance", "linear", "long")].count == 1
    assert sim.ledger.totals(kinds=("delivered", "corrupted"))[("binance", "linear", "long")].count == 2


async def test_malformed_bybit_frame_missing_field(sim: Simulator) -> None:
    """Bybit pushes are corrupted inside ``data``: a missing ``S`` in the first item."""
    sim.set_faults("bybit_linear", malformed="missing_field")
    async with websockets.connect(f"{sim.bybit_ws}/v5/public/linear") as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": ["allLiquidation.BTCUSDT"]}))
        await recv_json(ws)
        sim.emit([liq("bybit")])
        push = await recv_json(ws)
    assert "S" not in push["data"][0]
    assert push["data"][0]["s"] == "BTCUSDT"


async def test_fail_subscription_binance(sim: Simulator) -> None:
    """SUBSCRIBE is answered with an error frame and URL streams are silently not subscribed."""
    sim.set_faults("binance_usdm", fail_subscription=True)
    async with websockets.connect(f"{sim.binance_usdm_ws}/market/stream?streams=!forceOrder@arr") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@forceOrder"], "id": 3}))
        reply = await recv_json(ws)
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
        listed = await recv_json(ws)
    assert reply["code"] == 2
    assert reply["id"] == 3
    assert listed == {"result": [], "id": 4}
    assert sim.stats.subscription_failures == 1


async def test_fail_subscription_bybit(sim: Simulator) -> None:
    """A subscribe under the fault is answered ``success: false`` and delivers nothing."""
    sim.set_faults("bybit_linear", fail_subscription=True)
    async with websockets.connect(f"{sim.bybit_ws}/v5/public/linear") as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": ["allLiquidation.BTCUSDT"]}))
        reply = await recv_json(ws)
    assert reply["success"] is False
    assert reply["op"] == "subscribe"
    assert sim.stats.subscriptions == 0


async def test_duplicate_every_nth_frame(sim: Simulator) -> None:
    """Every 2nd frame is sent twice; the ledger marks the copy ``duplicate`` and totals count it once."""
    async with websockets.connect(f"{sim.binance_usdm_ws}{ALL_MARKET}") as ws:
        await sim.wait_for(lambda s: s.stats.subscriptions >= 1)
        sim.connections("binance_usdm")[0].faults.duplicate_every = 2
        sim.emit(_burst(4))
        got = [(await recv_json(ws))["o"]["s"] for _ in range(6)]
    assert got == [SYMBOLS[0], SYMBOLS[1], SYMBOLS[1], SYMBOLS[2], SYMBOLS[3], SYMBOLS[3]]
    assert [e.kind for e in sim.ledger.entries].count("duplicate") == 2
    assert sim.ledger.totals()[("binance", "linear", "long")].count == 4


async def test_reorder_within_window(sim: Simulator) -> None:
    """Frames go out in reversed groups of the window size; a partial group is flushed reversed."""
    sim.set_faults("binance_usdm", reorder_window=3)
    async with websockets.connect(f"{sim.binance_usdm_ws}{ALL_MARKET}") as ws:
        await sim.wait_for(lambda s: s.stats.subscriptions >= 1)
        sim.emit(_burst(5))
        got = [(await recv_json(ws))["o"]["s"] for _ in range(5)]
    assert got == [SYMBOLS[2], SYMBOLS[1], SYMBOLS[0], SYMBOLS[4], SYMBOLS[3]]
    assert sorted(got) == sorted(SYMBOLS[:5])


async def test_unknown_knob_is_rejected(sim: Simulator) -> None:
    """A misspelled knob raises instead of silently doing nothing."""
    with pytest.raises(AttributeError):
        sim.set_faults("bybit_linear", stal=True)


async def test_faults_apply_per_connection(sim: Simulator) -> None:
    """A knob set on one live connection leaves the other connection of the same feed intact."""
    async with (
        websockets.connect(f"{sim.binance_usdm_ws}{ALL_MARKET}") as first,
        websockets.connect(f"{sim.binance_usdm_ws}{ALL_MARKET}") as second,
    ):
        await sim.wait_for(lambda s: s.stats.subscriptions >= 2)
        sim.connections("binance_usdm")[0].faults.drop_after_frames = 1
        sim.emit(_burst(2))
        assert len([await recv_json(second), await recv_json(second)]) == 2
        await recv_json(first)
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(scaled(5)):
                await first.recv()
    assert sim.ledger.totals(unique=False)[("binance", "linear", "long")].count == 3
    assert sim.ledger.totals()[("binance", "linear", "long")].count == 2


async def test_extra_fields_are_added_and_frames_stay_good(sim: Simulator) -> None:
    """Undocumented extra fields appear in each liquidation object; the ledger still counts the frame good."""
    sim.set_faults("bybit_linear", extra_fields={"st": "NEW", "seq": 7})
    async with websockets.connect(f"{sim.bybit_ws}/v5/public/linear") as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": ["allLiquidation.BTCUSDT"]}))
        await recv_json(ws)
        t0 = (now_ms() // 20) * 20
        sim.emit([liq("bybit", ts=t0), liq("bybit", side="short", ts=t0 + 1)])
        push = await recv_json(ws)
    assert [(d["st"], d["seq"]) for d in push["data"]] == [("NEW", 7), ("NEW", 7)]
    assert list(push["data"][0])[:5] == ["T", "s", "S", "v", "p"]
    assert sum(t.count for t in sim.ledger.totals().values()) == 2
