"""liq_common."""
