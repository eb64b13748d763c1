"""The ``python -m liq_exchange_sim`` process: ports, printed URLs, scenario end and SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import websockets

from liq_common.settings import load_settings
from liq_exchange_sim.__main__ import parse_args, sim_config
from liq_exchange_sim.settings import Settings
from tests.waiting import scaled


async def _start(*args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "LOG_FORMAT": "json"}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "liq_exchange_sim", *args, stdout=asyncio.subprocess.PIPE, env=env
    )


async def _listen_lines(proc: asyncio.subprocess.Process) -> dict[str, str]:
    urls: dict[str, str] = {}
    assert proc.stdout is not None
    async with asyncio.timeout(scaled(20)):
        while len(urls) < 6:
            line = (await proc.stdout.readline()).decode()
            assert line, "process ended before printing its URLs"
            if line.startswith("LISTEN "):
                _, name, url = line.split()
                urls[name] = url
    return urls


def test_ports_derive_from_port_flag() -> None:
    """``--port P`` serves USD-M on P, COIN-M on P+1 and Bybit on P+2; flags override env."""
    settings = parse_args(load_settings(Settings, {"SIM_SEED": "4"}), ["--port", "9500", "--speed", "0"])
    config = sim_config(settings)
    assert (config.binance_usdm_port, config.binance_coinm_port, config.bybit_port) == (9500, 9501, 9502)
    assert (settings.sim_seed, settings.sim_speed) == (4, 0.0)
    assert sim_config(parse_args(settings, ["--port", "0"])).bybit_port == 0


async def test_exits_zero_when_scenario_done() -> None:
    """With --exit-when-done a short synthetic run prints its URLs, plays and exits 0."""
    proc = await _start("--scenario", "synthetic", "--seed", "2", "--speed", "0", "--port", "0", "--duration", "30",
                        "--exit-when-done")  # fmt: skip
    urls = await _listen_lines(proc)
    assert set(urls) == {"binance_usdm_ws", "binance_usdm_rest", "binance_coinm_ws", "binance_coinm_rest",
                         "bybit_ws", "bybit_rest"}  # fmt: skip
    assert proc.stdout is not None
    async with asyncio.timeout(scaled(30)):
        rest = (await proc.stdout.read()).decode()
        assert await proc.wait() == 0
    assert "SCENARIO_DONE" in rest


async def test_sigterm_stops_with_exit_zero() -> None:
    """A real-time run serves frames to a client until SIGTERM, then exits 0."""
    proc = await _start("--scenario", "synthetic", "--speed", "1", "--port", "0", "--duration", "600")
    try:
        urls = await _listen_lines(proc)
        async with websockets.connect(f"{urls['binance_usdm_ws']}/market/ws/!forceOrder@arr") as ws:
            async with asyncio.timeout(scaled(20)):
                frame = json.loads(await ws.recv())
            assert frame["e"] == "forceOrder"
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(scaled(20)):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
