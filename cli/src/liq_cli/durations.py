"""Parsing ``--since`` values: ``90s``, ``15m``, ``24h``, ``7d``, ``2w``."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """``"24h"`` -> 24 hours. Raises :class:`argparse.ArgumentTypeError` on anything else (for argparse)."""
    match = _DURATION.match(text.lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: use a number and s, m, h, d or w (e.g. 24h, 7d)")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must be positive")
    return timedelta(seconds=seconds)
