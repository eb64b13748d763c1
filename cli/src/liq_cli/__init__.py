"""The liq command."""
