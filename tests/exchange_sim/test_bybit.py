"""Bybit v5 public linear/inverse endpoints and rules, observed from a real websockets client."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from liq_exchange_sim import Instrument, Simulator
from liq_exchange_sim.bybit import args_length
from tests.exchange_sim.conftest import fast_config, http_get, liq, now_ms, recv_json, universe_with_linear
from tests.waiting import scaled


async def _subscribe(ws: websockets.ClientConnection, *topics: str) -> dict[str, Any]:
    await ws.send(json.dumps({"op": "subscribe", "args": list(topics)}))
    reply: dict[str, Any] = await recv_json(ws)
    return reply


async def test_push_batches_liquidations_of_one_interval(sim: Simulator) -> None:
    """Liquidations of one symbol within one push interval arrive as one push with S=Buy for longs."""
    async with websockets.connect(f"{sim.bybit_ws}/v5/public/linear") as ws:
        assert (await _subscribe(ws, "allLiquidation.ETHUSDT"))["success"] is True
        t0 = (now_ms() // 20) * 20  # start of a 20 ms push interval
        sim.emit([liq("bybit", symbol="ETHUSDT", side=s, size=f"{i + 1}", ts=t0 + i) for i, s in
                  enumerate(["long", "short", "long"])])  # fmt: skip
        push = await recv_json(ws)
    assert push["topic"] == "allLiquidation.ETHUSDT"
    assert [d["S"] for d in push["data"]] == ["Buy", "Sell", "Buy"]
    assert [d["v"] for d in push["data"]] == ["1", "2", "3"]
    assert push["ts"] == t0 + 20
    assert sim.stats.frames_sent == 1
    assert sim.ledger.totals()[("bybit", "linear", "long")].count == 2


async def test_inverse_path_and_usd_sizes(sim: Simulator) -> None:
    """``/v5/public/inverse`` serves inverse symbols; the ledger values inverse ``v`` as USD."""
    async with websockets.connect(f"{sim.bybit_ws}/v5/public/inverse") as ws:
        assert (await _subscribe(ws, "allLiquidation.BTCUSD"))["success"] is True
        assert (await _subscribe(ws, "allLiquidation.BTCUSDT"))["success"] is False  # linear symbol
        sim.emit([liq("bybit", "inverse", "BTCUSD", size="12000")])
        push = await recv_json(ws)
    assert push["data"][0]["v"] == "12000"
    assert sim.ledger.totals()[("bybit", "inverse", "long")].usd == Decimal(12000)


@pytest.mark.parametrize("topic", ["liquidation.BTCUSDT", "allLiquidation.NOPEUSDT", "publicTrade.BTCUSDT"])
async def test_unknown_and_deprecated_topics_get_handler_not_found(sim: Simulator, topic: str) -> None:
    """Deprecated, unknown-symbol and unsupported topics are answered with the real failure frame."""
    async with websockets.connect(f"{sim.bybit_ws}/v5/public/linear") as ws:
        reply = await _subscribe(ws, topic)
    assert reply["success"] is False
    assert reply["ret_msg"] == f"error:handler not found,topic:{topic}"
    assert sim.stats.subscription_failures == 1


async def test_duplicate_subscription_is_refused(sim: Simulator) -> None:
    """Subscribing a topic twice on one connection gets ``already subscribed``."""
    async with websockets.connect(f"{sim.bybit_ws}/v5/public/linear") as ws:
        assert (await _subscribe(ws, "allLiquidation.BTCUSDT"))["success"] is True
        again = await _subscribe(ws, "allLiquidation.BTCUSDT")
    assert again["success"] is False
    assert again["ret_msg"] == "error:already subscribed,topic:allLiquidation.BTCUSDT"


async def test_unsubscribe_stops_pushes(sim: Simulator) -> None:
    """After unsubscribe no push reaches the connection (its next reply comes first)."""
    async with websockets.connect(f"{sim.bybit_ws}/v5/public/linear") as ws:
        await _subscribe(ws, "allLiquidation.BTCUSDT")
        await ws.send(json.dumps({"op": "unsubscribe", "args": ["allLiquidation.BTCUSDT"], "req_id": "u"}))
        reply = await recv_json(ws)
        assert (reply["success"], reply["op"], reply["req_id"]) == (True, "unsubscribe", "u")
        sim.emit([liq("bybit")])
        await sim.flush()
        await ws.send(json.dumps({"op": "ping"}))
        assert (await recv_json(ws))["ret_msg"] == "pong"
    assert sim.stats.frames_sent == 0


async def test_connection_without_ping_is_closed() -> None:
    """A client that does not send ``{"op":"ping"}`` in time is disconnected; one that pings stays."""
    async with (
        Simulator(fast_config(bybit_ping_timeout=scaled(1.0))) as sim,
        websockets.connect(f"{sim.bybit_ws}/v5/public/linear") as silent,
        websockets.connect(f"{sim.bybit_ws}/v5/public/linear") as pinger,
    ):

        async def keep_pinging() -> None:
            while True:
                await pinger.send('{"op":"ping"}')
                await recv_json(pinger)
                await asyncio.sleep(0.05)  # the client's ping cadence, not synchronisation

        task = asyncio.create_task(keep_pinging())
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(scaled(5)):
                await silent.recv()
        assert sim.stats.closes["ping_timeout"] == 1
        assert not task.done()
        task.cancel()
        assert sim.stats.client_pings >= 1
        assert sim.stats.pongs_sent == sim.stats.client_pings


async def test_args_limit_per_connection() -> None:
    """Subscriptions beyond 21,000 characters of args on one connection are refused."""
    async with Simulator(fast_config(instruments=universe_with_linear(800))) as sim:
        topics = [f"allLiquidation.{i.symbol}" for i in sim.universe.instruments("bybit_linear")]
        fits = 0
        while args_length(topics[: fits + 1]) <= 21_000:
            fits += 1
        async with websockets.connect(f"{sim.bybit_ws}/v5/public/linear", max_size=None) as ws:
            for start in range(0, fits, 100):  # clients batch their requests
                assert (await _subscribe(ws, *topics[start : min(fits, start + 100)]))["success"] is True
            over = await _subscribe(ws, topics[fits])
            assert over["success"] is False
            assert "21000" in over["ret_msg"]
        async with websockets.connect(f"{sim.bybit_ws}/v5/public/linear") as fresh:
            assert (await _subscribe(fresh, topics[fits]))["success"] is True  # the limit is per connection
    assert sim.stats.subscriptions == fits + 1


async def test_instruments_info_pages_with_cursor_and_limit() -> None:
    """600 linear symbols come back over 3 pages of 200 via nextPageCursor; the default page is 500."""
    async with Simulator(fast_config(instruments=universe_with_linear(590))) as sim:
        symbols, cursor, pages = [], "", 0
        while True:
            target = "/v5/market/instruments-info?category=linear&limit=200" + (f"&cursor={cursor}" if cursor else "")
            status, _, body = await http_get(sim.bybit_rest, target)
            assert status == 200
            doc = json.loads(body)
            assert doc["retCode"] == 0
            assert doc["result"]["category"] == "linear"
            symbols += [item["symbol"] for item in doc["result"]["list"]]
            pages += 1
            cursor = doc["result"]["nextPageCursor"]
            if not cursor:
                break
        assert pages == 3
        assert len(symbols) == 600 == len(set(symbols))
        _, _, body = await http_get(sim.bybit_rest, "/v5/market/instruments-info?category=linear")
        assert len(json.loads(body)["result"]["list"]) == 500
        _, _, body = await http_get(sim.bybit_rest, "/v5/market/instruments-info?category=linear&limit=1001")
        assert json.loads(body)["retCode"] == 10001


async def test_listing_added_at_run_time(sim: Simulator) -> None:
    """``add_instrument`` makes a symbol appear in REST and its topic subscribable."""
    async with websockets.connect(f"{sim.bybit_ws}/v5/public/linear") as ws:
        assert (await _subscribe(ws, "allLiquidation.NEWUSDT"))["success"] is False
        sim.add_instrument("bybit_linear", Instrument(symbol="NEWUSDT", base="NEW", quote="USDT", status="Trading"))
        _, _, body = await http_get(sim.bybit_rest, "/v5/market/instruments-info?category=linear&symbol=NEWUSDT")
        assert [i["symbol"] for i in json.loads(body)["result"]["list"]] == ["NEWUSDT"]
        assert (await _subscribe(ws, "allLiquidation.NEWUSDT"))["success"] is True
        sim.emit([liq("bybit", symbol="NEWUSDT", price="0.5", size="100")])
        push = await recv_json(ws)
    assert push["data"][0]["s"] == "NEWUSDT"
