"""Exponential backoff with full jitter and a cap (AWS Architecture Blog, "Exponential Backoff And Jitter").

Every reconnect and retry loop in the project uses :class:`Backoff`: the n-th delay is uniform in
``[0, min(cap, base * 2**n)]``, so many clients never retry in lock-step, and the attempt counter resets
once a connection has been healthy for ``reset_after`` seconds.
"""

from __future__ import annotations

import random
import time


class Backoff:
    """Delay generator for retry loops.

    Args:
        base: First ceiling, seconds.
        cap: Largest ceiling, seconds.
        reset_after: Seconds of health after which :meth:`healthy_since` resets the attempts.
        rng: Random source (seeded in tests).
    """

    def __init__(
        self, base: float = 1.0, cap: float = 60.0, reset_after: float = 60.0, rng: random.Random | None = None
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"need 0 < base <= cap, got base={base} cap={cap}")
        self.base = base
        self.cap = cap
        self.reset_after = reset_after
        self.attempts = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        """Upper bound of the next delay, seconds."""
        return float(min(self.cap, self.base * 2.0 ** min(self.attempts, 62)))

    def next_delay(self) -> float:
        """Return the next delay (seconds) and count an attempt."""
        delay = self._rng.uniform(0, self.ceiling())
        self.attempts += 1
        return delay

    def penalty(self, seconds: float) -> float:
        """A long delay (e.g. after HTTP 418/429) with ±10% jitter; counts an attempt."""
        self.attempts += 1
        return seconds * self._rng.uniform(0.9, 1.1)

    def healthy_since(self, since_monotonic: float) -> None:
        """Reset the attempts if the connection has been healthy since ``since_monotonic``."""
        if time.monotonic() - since_monotonic >= self.reset_after:
            self.attempts = 0

    def reset(self) -> None:
        """Forget previous attempts."""
        self.attempts = 0
