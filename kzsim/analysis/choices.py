"""What the analyses accept, by name: cheap to import for the command line's choices."""

from __future__ import annotations

BREAK_EVEN_PARAMETERS = {
    "market.btc_price_usd": "BTC price on the start date [USD]",
    "electricity.tariff_kzt_per_kwh": "tariff [KZT/kWh]",
}
