"""liq_alerter."""
