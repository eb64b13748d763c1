"""Scenario sources (JSON-lines replay, synthetic generator) and the runner that paces them."""
