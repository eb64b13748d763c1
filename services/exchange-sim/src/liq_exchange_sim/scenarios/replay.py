"""JSON-lines scenario files: one :class:`~liq_exchange_sim.truth.TruthRecord` per line, in time order.

Example line: ``{"exchange":"binance","market":"linear","symbol":"BTCUSDT","side":"long","price":"65000.1",
"size":"0.5","ts":1767225600000}`` (prices and sizes as strings or numbers; ``order_price`` optional).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from liq_exchange_sim.truth import TruthRecord

_decoder = msgspec.json.Decoder(TruthRecord, strict=False)
_encoder = msgspec.json.Encoder(decimal_format="string")


class ScenarioError(ValueError):
    """A scenario file line is not a truth record; the message names the file and line."""


def read_records(path: str | Path, rebase_to_ms: int | None = None) -> Iterator[TruthRecord]:
    """Records of a JSON-lines file, lazily; blank lines and ``#`` comments are skipped.

    Args:
        path: The file.
        rebase_to_ms: Shift every ``ts`` so the first record is at this time (ms); ``None`` keeps them.

    Raises:
        ScenarioError: A line does not decode.
    """
    shift: int | None = None
    with Path(path).open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text or text.startswith(b"#"):
                continue
            try:
                record = _decoder.decode(text)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise ScenarioError(f"{path}:{number}: {exc}") from exc
            if rebase_to_ms is not None:
                if shift is None:
                    shift = rebase_to_ms - record.ts
                record = msgspec.structs.replace(record, ts=record.ts + shift)
            yield record


def write_records(path: str | Path, records: Iterable[TruthRecord]) -> int:
    """Write ``records`` as JSON lines (replayable by :func:`read_records`); returns the count."""
    count = 0
    with Path(path).open("wb") as handle:
        for record in records:
            handle.write(_encoder.encode(record) + b"\n")
            count += 1
    return count
