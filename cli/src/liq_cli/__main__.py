"""Entry point of the ``liq`` command (stub until issue 10 lands)."""

from __future__ import annotations

import sys


def main() -> None:
    """Print usage; subcommands arrive with issue 10."""
    sys.stdout.write("usage: liq {top,stats,chart,check,replay} ...\n")


if __name__ == "__main__":
    main()
