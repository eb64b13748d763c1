"""Access to the third-party recorded exchange messages in ``../shared/fixtures`` (never copied here).

A test using them skips only when the folder is absent and ``CI`` is unset; on CI it must run.
"""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"


def fixtures_dir() -> Path:
    """The shared fixtures folder; skips the test when it is absent outside CI, fails on CI."""
    if not FIXTURES.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI=true but the recorded fixtures are missing at {FIXTURES}")
        pytest.skip(f"recorded exchange fixtures not present at {FIXTURES} (a clone without ../shared)")
    return FIXTURES


def tardis_messages(*exchanges: str) -> list[dict[str, Any]]:
    """Raw websocket messages recorded by tardis-node for the given tardis exchange names.

    REST-polled records (``tardis_generated``) are not websocket frames and are left out.
    """
    path = fixtures_dir() / "tardis" / "mappers.test.liquidation-messages.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["tardis_exchange"] in exchanges and not r["tardis_generated"]]


def tardis_expected(exchange: str, symbol: str, ts_ms: int) -> dict[str, Any]:
    """The normalised record tardis emitted for ``symbol`` at ``ts_ms`` on ``exchange`` (exactly one)."""
    path = fixtures_dir() / "tardis" / "mappers.test.snapshot.liquidations.jsonl"
    stamp = datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    found = []
    for line in path.read_text().splitlines():
        record = json.loads(line)["normalized"]
        if record["exchange"] == exchange and record["symbol"] == symbol and record["timestamp"] == stamp:
            found.append(record)
    assert len(found) >= 1, f"no tardis record for {exchange} {symbol} {stamp}"
    return found[0]


def cryptofeed_session(name: str = "BYBIT") -> list[dict[str, Any]]:
    """The recorded cryptofeed session (JSON lines) of ``name``, decompressed."""
    import zstandard

    path = fixtures_dir() / "cryptofeed" / f"{name}.jsonl.zst"
    with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        text = io.TextIOWrapper(reader, encoding="utf-8").read()
    return [json.loads(line) for line in text.splitlines() if line.strip()]
