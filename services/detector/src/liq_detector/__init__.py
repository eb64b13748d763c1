"""liq_detector."""
