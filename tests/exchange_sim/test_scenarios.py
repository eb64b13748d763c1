"""Replay and synthetic scenarios: pacing, ground truth, and byte-identical frames for a seed."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
import websockets

from liq_exchange_sim import SimConfig, Simulator, SyntheticConfig, Universe, generate, read_records, write_records
from liq_exchange_sim.scenarios.replay import ScenarioError
from tests.exchange_sim.conftest import fast_config, liq
from tests.waiting import eventually

SMALL = SyntheticConfig(seed=7, duration_s=120, background_rate=4, cascades=1, chops=1, episode_s=30)


class Capture:
    """Clients on every feed that keep every frame they receive."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.frames: dict[str, list[str]] = defaultdict(list)
        self.tasks: list[asyncio.Task[None]] = []
        self.sockets: list[websockets.ClientConnection] = []

    async def __aenter__(self) -> Capture:
        sim = self.sim
        await self._open("usdm", f"{sim.binance_usdm_ws}/market/ws/!forceOrder@arr")
        await self._open("coinm", f"{sim.binance_coinm_ws}/stream?streams=!forceOrder@arr")
        for name, feed in (("linear", "bybit_linear"), ("inverse", "bybit_inverse")):
            ws = await self._open(name, f"{sim.bybit_ws}/v5/public/{name}", subscribe=False)
            topics = [f"allLiquidation.{i.symbol}" for i in sim.universe.instruments(feed)]  # type: ignore[arg-type]
            await ws.send(json.dumps({"op": "subscribe", "args": topics}))
        await sim.wait_for(lambda s: s.stats.subscriptions >= 2 + len(self._bybit_topics()))
        return self

    def _bybit_topics(self) -> list[str]:
        u = self.sim.universe
        return [i.symbol for i in u.instruments("bybit_linear") + u.instruments("bybit_inverse")]

    async def _open(self, name: str, url: str, subscribe: bool = True) -> websockets.ClientConnection:
        ws = await websockets.connect(url, max_size=None)
        self.sockets.append(ws)

        async def read() -> None:
            async for message in ws:
                assert isinstance(message, str)
                if not message.startswith('{"success"'):
                    self.frames[name].append(message)

        self.tasks.append(asyncio.create_task(read()))
        return ws

    async def settle(self) -> None:
        """Wait until every client holds as many frames as the simulator wrote."""
        await eventually(lambda: sum(map(len, self.frames.values())) == self.sim.stats.frames_sent, what="frames")

    def digest(self) -> dict[str, str]:
        return {name: hashlib.sha256("\n".join(f).encode()).hexdigest() for name, f in sorted(self.frames.items())}

    async def __aexit__(self, *exc: object) -> None:
        for ws in self.sockets:
            await ws.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _run_synthetic(config: SyntheticConfig) -> tuple[dict[str, str], int, object]:
    async with Simulator(SimConfig(close_timeout=0.3)) as sim, Capture(sim) as capture:
        truth = await sim.run_synthetic(config)
        await capture.settle()
        return capture.digest(), sim.stats.frames_sent, truth


async def test_same_seed_gives_byte_identical_frames() -> None:
    """Two runs with one seed (production rule timings) produce the same bytes on every feed."""
    first, count, truth_a = await _run_synthetic(SMALL)
    second, _, truth_b = await _run_synthetic(SMALL)
    assert count > 100
    assert set(first) == {"usdm", "coinm", "linear", "inverse"}
    assert first == second
    assert truth_a == truth_b
    other, _, _ = await _run_synthetic(SyntheticConfig(seed=8, duration_s=120, background_rate=4, episode_s=30))
    assert other != first


async def test_paced_run_matches_unpaced_run() -> None:
    """Playing at 100x yields exactly the frames of the as-fast-as-possible run (rules use event time)."""
    config = SyntheticConfig(seed=3, duration_s=20, background_rate=10, cascades=1, chops=0, episode_s=10)
    fast, _, _ = await _run_synthetic(config)
    started = time.monotonic()
    paced, _, _ = await _run_synthetic(msgspec.structs.replace(config, speed=100.0))
    assert time.monotonic() - started >= 20 / 100 * 0.9
    assert paced == fast


def test_ground_truth_episodes_are_what_they_claim() -> None:
    """Cascades are one-sided and accelerating; chop is two-sided; records are time-ordered."""
    universe = Universe.default()
    config = SyntheticConfig(seed=11, duration_s=900, cascades=3, chops=2, episode_s=120)
    records, truth = generate(config, universe)
    assert [r.ts for r in records] == sorted(r.ts for r in records)
    assert truth.count == len(records)
    assert sorted(e.kind for e in truth.episodes) == ["cascade"] * 3 + ["chop"] * 2
    spans = sorted((e.start_ms, e.end_ms) for e in truth.episodes)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    for episode in truth.episodes:
        inside = [r for r in records if episode.start_ms <= r.ts < episode.end_ms]
        assert episode.count <= len(inside)
        if episode.kind == "cascade":
            assert episode.side is not None
            share = (episode.long_usd if episode.side == "long" else episode.short_usd) / episode.usd
            assert share > Decimal("0.8")
            assert (episode.price_move < 0) == (episode.side == "long")
            middle = (episode.start_ms + episode.end_ms) // 2
            of_base = [r for r in inside if r.symbol.startswith(episode.base)]
            assert sum(r.ts >= middle for r in of_base) > 2 * sum(r.ts < middle for r in of_base)
            assert {(r.exchange, r.market) for r in of_base} == {
                ("binance", "linear"), ("binance", "inverse"), ("bybit", "linear"), ("bybit", "inverse")
            }  # fmt: skip
        else:
            assert episode.side is None
            assert Decimal("0.3") < episode.long_usd / episode.usd < Decimal("0.7")


def test_generator_is_deterministic_and_sizes_are_heavy_tailed() -> None:
    """Same seed => equal records; sizes span orders of magnitude with a long right tail."""
    universe = Universe.default()
    config = SyntheticConfig(seed=5, duration_s=600, cascades=0, chops=0, background_rate=20)
    records, _ = generate(config, universe)
    assert generate(config, universe)[0] == records
    usd = sorted(float(r.size * r.price) for r in records if r.exchange == "binance" and r.market == "linear")
    median, p99 = usd[len(usd) // 2], usd[int(len(usd) * 0.99)]
    assert 500 < median < 10_000
    assert p99 > 10 * median


async def test_replay_file_at_speed_factor(tmp_path: Path) -> None:
    """A JSON-lines file replays with its event spacing divided by the speed; rebasing shifts times."""
    t0 = 1_767_225_600_000
    records = [liq(symbol=s, ts=t0 + 250 * i) for i, s in enumerate(["BTCUSDT", "ETHUSDT", "SOLUSDT"] * 2)]
    path = tmp_path / "scenario.jsonl"
    write_records(path, records)
    assert list(read_records(path)) == records
    assert next(read_records(path, rebase_to_ms=5)).ts == 5
    async with Simulator(fast_config()) as sim, Capture(sim) as capture:
        started = time.monotonic()
        count = await sim.replay(str(path), speed=5.0)
        elapsed = time.monotonic() - started
        await capture.settle()
    assert count == 6
    assert elapsed >= 1.25 / 5 * 0.9
    assert [json.loads(f)["o"]["T"] for f in capture.frames["usdm"]] == [r.ts for r in records]


def test_bad_scenario_line_names_file_and_line(tmp_path: Path) -> None:
    """A line that is not a truth record fails with its line number."""
    path = tmp_path / "bad.jsonl"
    path.write_text('# comment\n{"exchange":"binance","market":"linear"}\n')
    with pytest.raises(ScenarioError, match=r"bad\.jsonl:2"):
        list(read_records(path))


async def test_live_synthetic_run_keeps_timestamps_current() -> None:
    """``live=True`` pins start_ms to the wall clock: past records play at once, later ones in real time."""
    now = int(time.time() * 1000)
    config = SyntheticConfig(seed=9, start_ms=now - 2000, duration_s=3, background_rate=20, cascades=0, chops=0,
                             speed=1.0)  # fmt: skip
    async with Simulator(SimConfig(close_timeout=0.3)) as sim, Capture(sim) as capture:
        started = time.monotonic()
        await sim.run_synthetic(config, live=True)
        elapsed = time.monotonic() - started
        finished_ms = int(time.time() * 1000)
        await capture.settle()
    assert 0.8 <= elapsed < 2.8  # one second of real time left after catching up on the first two
    event_times = [json.loads(f)["o"]["T"] for f in capture.frames["usdm"]]
    assert event_times
    assert max(event_times) <= finished_ms
