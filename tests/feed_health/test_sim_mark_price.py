"""The simulator's USD-M ``!markPrice@arr@1s``: served on routed ``/market`` paths only, in Binance's shape."""

from __future__ import annotations

import json

import websockets

from liq_exchange_sim import Simulator


async def test_mark_prices_flow_on_the_routed_path_only() -> None:
    async with Simulator() as sim:
        routed_url = f"{sim.binance_usdm_ws}/market/stream?streams=!markPrice@arr@1s"
        legacy_url = f"{sim.binance_usdm_ws}/stream?streams=!markPrice@arr@1s"
        async with websockets.connect(routed_url) as routed, websockets.connect(legacy_url) as legacy:
            frame = json.loads(await routed.recv())
            second = json.loads(await routed.recv())
            await legacy.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 7}))
            assert json.loads(await legacy.recv()) == {"result": ["!markPrice@arr@1s"], "id": 7}  # acked...
            [legacy_conn] = [c for c in sim.connections("binance_usdm") if c.path.startswith("/stream")]
            assert legacy_conn.stats.mark_price_frames == 0  # ...and silent
    assert frame["stream"] == "!markPrice@arr@1s"
    symbols = {item["s"] for item in frame["data"]}
    assert symbols == {i.symbol for i in sim.universe.instruments("binance_usdm")}
    item = frame["data"][0]
    assert item["e"] == "markPriceUpdate"
    assert set(item) == {"e", "E", "s", "p", "i", "P", "r", "T"}
    assert isinstance(item["E"], int)
    assert isinstance(item["p"], str)
    assert 800 <= second["data"][0]["E"] - item["E"] <= 1500  # one a second
