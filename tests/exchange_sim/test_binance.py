"""Binance USD-M / COIN-M endpoints and rules, observed from a real websockets client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from liq_exchange_sim import Simulator
from tests.exchange_sim.conftest import fast_config, http_get, liq, now_ms, recv_json
from tests.waiting import scaled


async def test_routed_raw_path_delivers_unwrapped_force_order(sim: Simulator) -> None:
    """``/market/ws/!forceOrder@arr`` delivers raw forceOrder payloads with S=SELL for a long."""
    async with websockets.connect(f"{sim.binance_usdm_ws}/market/ws/!forceOrder@arr") as ws:
        await sim.wait_for(lambda s: s.stats.subscriptions >= 1)
        sim.emit([liq(symbol="ETHUSDT", side="short", price="3200.5", size="1.25")])
        frame = await recv_json(ws)
    assert frame["e"] == "forceOrder"
    assert frame["o"]["s"] == "ETHUSDT"
    assert frame["o"]["S"] == "BUY"
    assert (frame["o"]["ap"], frame["o"]["z"], frame["o"]["q"], frame["o"]["l"]) == ("3200.5", "1.25", "1.25", "1.25")
    assert "ps" not in frame["o"]


async def test_legacy_unrouted_paths_ack_but_deliver_nothing(sim: Simulator) -> None:
    """Unrouted ``/ws`` and ``/stream`` accept and ack SUBSCRIBE but never get forceOrder data."""
    async with (
        websockets.connect(f"{sim.binance_usdm_ws}/market/ws/!forceOrder@arr") as routed,
        websockets.connect(f"{sim.binance_usdm_ws}/ws/!forceOrder@arr") as legacy_raw,
        websockets.connect(f"{sim.binance_usdm_ws}/stream") as legacy_combined,
    ):
        await legacy_combined.send(json.dumps({"method": "SUBSCRIBE", "params": ["!forceOrder@arr"], "id": 7}))
        assert await recv_json(legacy_combined) == {"result": None, "id": 7}
        sim.emit([liq()])
        assert (await recv_json(routed))["o"]["s"] == "BTCUSDT"
        # Any frame for the legacy connections was queued before these replies, so the reply coming first
        # proves nothing was delivered to them.
        for ws in (legacy_raw, legacy_combined):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 9}))
            assert await recv_json(ws) == {"result": ["!forceOrder@arr"], "id": 9}
    assert len(sim.ledger.entries) == 1  # only the routed connection got the liquidation


async def test_live_subscribe_unsubscribe_and_combined_envelope(sim: Simulator) -> None:
    """SUBSCRIBE on ``/market/stream`` is acked and delivers enveloped frames; UNSUBSCRIBE stops them."""
    async with websockets.connect(f"{sim.binance_usdm_ws}/market/stream") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["solusdt@forceOrder"], "id": 1}))
        assert await recv_json(ws) == {"result": None, "id": 1}
        sim.emit([liq(symbol="SOLUSDT", price="150.01", size="10")])
        frame = await recv_json(ws)
        assert frame["stream"] == "solusdt@forceOrder"
        assert frame["data"]["o"]["s"] == "SOLUSDT"
        await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["solusdt@forceOrder"], "id": 2}))
        assert await recv_json(ws) == {"result": None, "id": 2}
        sim.emit([liq(symbol="SOLUSDT", ts=now_ms() + 1000)])
        await sim.flush()
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        assert await recv_json(ws) == {"result": [], "id": 3}
    assert sim.stats.frames_sent == 1


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("not json", {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}),
        ('{"params": [], "id": 4}', {"code": 2, "msg": "Invalid request: missing field `method`", "id": 4}),
        ('{"method": "SUBSCRIBE", "params": [], "id": -1}', {"code": 2,
         "msg": "Invalid request: request ID must be an unsigned integer"}),
    ],
)  # fmt: skip
async def test_bad_method_frames_get_binance_error_replies(
    sim: Simulator, request_text: str, expected: dict[str, Any]
) -> None:
    """Malformed requests get the error frames of Binance's error table and the connection stays open."""
    async with websockets.connect(f"{sim.binance_usdm_ws}/market/ws") as ws:
        await ws.send(request_text)
        assert await recv_json(ws) == expected
        await ws.send(json.dumps({"method": "FLY", "id": 5}))
        reply = await recv_json(ws)
        assert reply["code"] == 2
        assert reply["msg"].startswith("Invalid request: unknown variant `FLY`")


async def test_throttle_keeps_latest_liquidation_per_symbol_window(sim: Simulator) -> None:
    """Five BTC liquidations inside one window yield one frame (the latest); other symbols are independent."""
    async with websockets.connect(f"{sim.binance_usdm_ws}/market/ws/!forceOrder@arr") as ws:
        await sim.wait_for(lambda s: s.stats.subscriptions >= 1)
        t0 = now_ms()
        burst = [liq(size=f"0.{i + 1}", ts=t0 + 10 * i) for i in range(5)] + [liq(symbol="ETHUSDT", ts=t0)]
        sim.emit(burst)
        frames = [await recv_json(ws), await recv_json(ws)]
    by_symbol = {f["o"]["s"]: f for f in frames}
    assert by_symbol["BTCUSDT"]["o"]["z"] == "0.5"
    assert by_symbol["BTCUSDT"]["o"]["T"] == t0 + 40
    assert sim.stats.throttled == 4
    assert [r.size for r in sim.ledger.dropped] == [Decimal(f"0.{i}") for i in range(1, 5)]
    assert sim.ledger.dropped_totals()[("binance", "linear", "long")].count == 4
    assert sim.ledger.totals()[("binance", "linear", "long")].count == 2


async def test_throttle_window_reopens_after_interval(sim: Simulator) -> None:
    """A liquidation after the window closed is delivered on its own (windows are event time)."""
    async with websockets.connect(f"{sim.binance_usdm_ws}/market/ws/btcusdt@forceOrder") as ws:
        await sim.wait_for(lambda s: s.stats.subscriptions >= 1)
        t0 = now_ms() - 10_000
        sim.emit([liq(ts=t0), liq(ts=t0 + 199), liq(ts=t0 + 200), liq(ts=t0 + 450)])
        got = [(await recv_json(ws))["o"]["T"] for _ in range(3)]
    assert got == [t0 + 199, t0 + 200, t0 + 450]


async def test_coinm_paths_pair_field_and_contract_notional(sim: Simulator) -> None:
    """dstream ``/ws/<symbol>@forceOrder`` delivers ``ps``; the ledger values contracts at contractSize."""
    async with websockets.connect(f"{sim.binance_coinm_ws}/ws/ethusd_perp@forceOrder") as ws:
        await sim.wait_for(lambda s: s.stats.subscriptions >= 1)
        sim.emit([liq(market="inverse", symbol="ETHUSD_PERP", price="3200.12", size="25")])
        frame = await recv_json(ws)
    assert frame["o"]["ps"] == "ETHUSD"
    assert list(frame["o"])[:3] == ["s", "ps", "S"]
    assert sim.ledger.totals()[("binance", "inverse", "long")].usd == Decimal(250)


async def test_server_pings_and_counts_pongs() -> None:
    """The server sends ping frames on its interval and counts the client's pongs."""
    async with (
        Simulator(fast_config(binance_ping_interval=0.05)) as sim,
        websockets.connect(f"{sim.binance_usdm_ws}/market/ws", ping_interval=None) as ws,
    ):
        reader = asyncio.create_task(ws.wait_closed())
        await sim.wait_for(lambda s: s.stats.pings_sent >= 3 and s.stats.pongs_received >= 3)
        reader.cancel()
    assert sim.stats.closes["pong_timeout"] == 0


async def test_connection_without_pong_is_closed() -> None:
    """A client that never answers pings is closed with 1011 after the pong timeout."""
    async with Simulator(fast_config(binance_ping_interval=0.05, binance_pong_timeout=0.2)) as sim:
        ws = await websockets.connect(f"{sim.binance_usdm_ws}/market/ws", ping_interval=None)
        ws.transport.pause_reading()  # the client stops reading: no pongs go back
        await sim.wait_for(lambda s: s.stats.closes["pong_timeout"] == 1)
        ws.transport.resume_reading()
        async with asyncio.timeout(scaled(5)):
            await ws.wait_closed()
        assert ws.close_code == 1011
        assert sim.stats.pings_sent >= 1


def _pongs_above(seen: int) -> Callable[[Simulator], bool]:
    return lambda s: s.stats.pongs_received > seen


async def test_unsolicited_pongs_keep_the_connection_alive() -> None:
    """Unsolicited pongs count (exchange-feeds.md §1.8), so a client sending them outlives the timeout."""
    timeout = scaled(0.5)
    async with (
        Simulator(fast_config(binance_ping_interval=100, binance_pong_timeout=timeout)) as sim,
        websockets.connect(f"{sim.binance_usdm_ws}/market/ws", ping_interval=None) as ws,
    ):
        started = time.monotonic()
        while time.monotonic() - started < 2 * timeout:
            await ws.pong()
            await sim.wait_for(_pongs_above(sim.stats.pongs_received))
            await asyncio.sleep(0.05)  # the client's pong cadence (not synchronisation)
        assert sim.stats.closes["pong_timeout"] == 0
        assert sim.stats.pongs_received >= 5


async def test_connection_is_closed_at_its_lifetime() -> None:
    """Every connection is closed (1001) when its "24 h" lifetime is over."""
    async with (
        Simulator(fast_config(binance_max_lifetime=0.2)) as sim,
        websockets.connect(f"{sim.binance_coinm_ws}/ws/!forceOrder@arr") as ws,
    ):
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(scaled(5)):
                await ws.recv()
        assert ws.close_code == 1001
        assert sim.stats.closes["lifetime"] == 1


async def test_more_than_ten_messages_per_second_closes_the_connection(sim: Simulator) -> None:
    """The 11th message within a second closes the connection with 1008."""
    async with websockets.connect(f"{sim.binance_usdm_ws}/market/ws") as ws:
        for i in range(11):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        with pytest.raises(ConnectionClosed):
            await _recv_until_closed(ws)
        assert ws.close_code == 1008
    assert sim.stats.closes["rate_limit"] == 1


async def _recv_until_closed(ws: websockets.ClientConnection) -> None:
    async with asyncio.timeout(scaled(5)):
        while True:
            await ws.recv()


async def test_unknown_path_is_404(sim: Simulator) -> None:
    """Paths that do not exist on the host are refused with HTTP 404."""
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(f"{sim.binance_coinm_ws}/market/ws/!forceOrder@arr")
    assert info.value.response.status_code == 404


async def test_exchange_info_lists_symbols_with_contract_size(sim: Simulator) -> None:
    """fapi/dapi exchangeInfo list the instruments; COIN-M carries contractSize 100 for BTC, 10 otherwise."""
    status, headers, body = await http_get(sim.binance_coinm_rest, "/dapi/v1/exchangeInfo")
    assert status == 200
    assert headers["content-type"] == "application/json"
    symbols = {s["symbol"]: s for s in json.loads(body)["symbols"]}
    assert symbols["BTCUSD_PERP"]["contractSize"] == 100
    assert symbols["ETHUSD_PERP"]["contractSize"] == 10
    assert symbols["BTCUSD_PERP"]["pair"] == "BTCUSD"
    assert symbols["BTCUSD_PERP"]["contractStatus"] == "TRADING"
    status, _, body = await http_get(sim.binance_usdm_rest, "/fapi/v1/exchangeInfo")
    usdm = {s["symbol"]: s for s in json.loads(body)["symbols"]}
    assert status == 200
    assert usdm["BTCUSDT"]["status"] == "TRADING"
    assert usdm["BTCUSDT"]["quoteAsset"] == "USDT"
    assert sim.stats.rest_requests == 2
