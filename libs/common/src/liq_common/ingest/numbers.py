"""Parsing the decimal strings exchanges send for prices and sizes."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from liq_common.ingest.rejects import Rejected

_ZERO = Decimal(0)


def positive(text: str, name: str) -> Decimal:
    """Parse a wire decimal string that must be a finite number > 0 (a price or a size).

    Raises:
        Rejected: ``bad_number`` (not a number, NaN, infinite) or ``non_positive`` (zero, negative).
    """
    try:
        value = Decimal(text)
        if value > _ZERO and value.is_finite():
            return value
    except InvalidOperation:  # not a number, or a NaN compared
        raise Rejected("bad_number", f"{name}={text!r} is not a number") from None
    if not value.is_finite():
        raise Rejected("bad_number", f"{name}={text!r} is not finite")
    raise Rejected("non_positive", f"{name}={text!r} must be > 0")
