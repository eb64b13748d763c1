"""Local exchange simulator (Binance USD-M/COIN-M, Bybit linear/inverse) for tests and demos.

Public API: :class:`Simulator`, :class:`SimConfig`, :class:`TruthRecord`, :class:`FaultPlan`,
:class:`Instrument`, :class:`Universe`, :class:`SyntheticConfig`, :func:`generate`. See the README.
"""

from liq_exchange_sim.config import SimConfig
from liq_exchange_sim.faults import MALFORMED_KINDS, FaultPlan, Malformed
from liq_exchange_sim.instruments import Instrument, Universe, generated_linear
from liq_exchange_sim.ledger import Ledger, LedgerEntry, Totals
from liq_exchange_sim.scenarios.replay import read_records, write_records
from liq_exchange_sim.scenarios.synthetic import Episode, GroundTruth, SyntheticConfig, generate
from liq_exchange_sim.server import Simulator
from liq_exchange_sim.stats import Stats
from liq_exchange_sim.truth import FEEDS, Feed, TruthRecord, usd_notional

__all__ = [
    "FEEDS",
    "MALFORMED_KINDS",
    "Episode",
    "FaultPlan",
    "Feed",
    "GroundTruth",
    "Instrument",
    "Ledger",
    "LedgerEntry",
    "Malformed",
    "SimConfig",
    "Simulator",
    "Stats",
    "SyntheticConfig",
    "Totals",
    "TruthRecord",
    "Universe",
    "generate",
    "generated_linear",
    "read_records",
    "usd_notional",
    "write_records",
]
