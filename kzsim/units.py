"""Vocabulary: units and Bitcoin protocol constants.

Every other module takes its constants from here, so a number such as the
halving height appears once in the code base.
"""

from __future__ import annotations

HOURS_PER_DAY = 24.0
SECONDS_PER_DAY = 86_400.0
DAYS_PER_YEAR = 365.0
MONTHS_PER_YEAR = 12.0
KWH_PER_MWH = 1_000.0
J_PER_KWH = 3.6e6
TH_TO_H = 1e12  # hashes per second in one TH/s
EH_TO_TH = 1e6  # TH/s in one EH/s

# Protocol (Bitcoin consensus rules)
TWO_POW_32 = 2.0**32
TARGET_BLOCK_SECONDS = 600.0
BLOCKS_PER_DAY_TARGET = SECONDS_PER_DAY / TARGET_BLOCK_SECONDS  # 144
RETARGET_BLOCKS = 2016
RETARGET_MAX_FACTOR = 4.0  # difficulty changes by at most x4 or /4 per retarget
HALVING_INTERVAL_BLOCKS = 210_000
SUBSIDY_BTC_AT_840000 = 3.125  # since block 840,000 (2024-04-20)
HALVING_HEIGHT_NEXT = 1_050_000  # subsidy halves to 1.5625 BTC here (~ April 2028)

# Reference figures reported beside the simulated cost per BTC
ARTICLE_COST_PER_BTC_USD = 27_000.0  # the source article's 2025 Kazakhstan figure
LISTED_MINERS_CASH_COST_PER_BTC_USD = 74_600.0  # CoinShares, listed miners, Q2 2025


def subsidy_btc_at_height(height: float) -> float:
    """Block subsidy [BTC] of the block at ``height`` (halving every 210,000 blocks).

    Examples
    --------
    >>> subsidy_btc_at_height(840_000)
    3.125
    >>> subsidy_btc_at_height(1_050_000)
    1.5625
    """
    era = int(height) // HALVING_INTERVAL_BLOCKS
    return 50.0 / (2**era)


def difficulty_from_hashrate_hs(hashrate_hs):
    """Difficulty at which ``hashrate_hs`` [H/s] mines one block per 600 s.

    Notes
    -----
    difficulty = hashrate * 600 s / 2**32.

    Examples
    --------
    >>> round(difficulty_from_hashrate_hs(1.0613e21) / 1e14, 3)
    1.483
    """
    return hashrate_hs * TARGET_BLOCK_SECONDS / TWO_POW_32
