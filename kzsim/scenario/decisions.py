"""What an operator can do about the risk, as scenario sections: hedges and financing.

Each is valued on every simulated path (:mod:`kzsim.model.finance`): hedges settle against
the path's own BTC price and hashprice, the loan's schedule runs against the path's own
cash, and both enter the path's profit, tax, cash and investor measures. Scenarios without
these sections give the same bits as before they existed.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from kzsim.scenario.distributions import param
from kzsim.scenario.fields import Section, Share, Volatility, at

Days = param(0.0, cap=36_500.0)


class HashpriceSwap(Section):
    """Sell a share of the fleet's hashrate forward: each day of the period the farm receives
    ``fixed_usd_per_th_day`` and pays the day's hashprice on the notional, settled in cash at
    the end of each month of the period (hashprice: BTC a day per TH/s before the pool fee,
    subsidy and fees, times the BTC price)."""

    type: Literal["hashprice_swap"]
    share: Share = Field(description="notional: this share of the fleet's nameplate hashrate [share] (param)")
    fixed_usd_per_th_day: param(0.0, cap=1e3) = Field(
        description="the fixed hashprice the farm receives [USD per TH/s-day] (param)"
    )
    start_day: int = Field(0, ge=0, le=36_500, description="first day of the period (0 = start date) [days]")
    months: int = Field(12, ge=1, le=1200, description="length of the period [months of 365/12 days]")


class ProductionForward(Section):
    """Sell a share of each day's mined coins forward at a fixed price: the farm receives the
    fixed price and pays the day's BTC price on those coins, settled in cash at the end of
    each month of the period (the coins themselves are sold as the scenario says)."""

    type: Literal["production_forward"]
    share: Share = Field(description="share of each day's mined BTC sold forward [share] (param)")
    price_usd: param(0.0, floor=0.01, cap=1e9) = Field(description="the fixed price [USD per BTC] (param)")
    start_day: int = Field(0, ge=0, le=36_500, description="first day of the period (0 = start date) [days]")
    months: int = Field(12, ge=1, le=1200, description="length of the period [months of 365/12 days]")


class _Option(Section):
    notional_btc: param(0.0, cap=1e7) = Field(description="BTC the option is on [BTC] (param)")
    expiry_days: int = Field(ge=1, le=36_500, description="days from the start date to expiry, within the horizon")
    implied_volatility_per_year: Volatility = Field(
        description="volatility the premium is priced at (Black-Scholes) [1/sqrt(year)] (param)"
    )
    rate_per_year: param(-0.5, 1.0) = Field(
        0.0, description="risk-free rate of the Black-Scholes price, continuously compounded [1/year] (param)"
    )


class BtcPut(_Option):
    """A European put bought on day 0: its Black-Scholes premium is paid then, its payoff
    notional x max(strike - price, 0) is received at expiry on the path's BTC price."""

    type: Literal["btc_put"]
    strike_usd: param(0.0, floor=0.01, cap=1e9) = Field(description="strike [USD per BTC] (param)")


class BtcCollar(_Option):
    """A put bought and a call sold on the same notional and expiry (a zero-cost collar when
    the strikes make the premiums equal): the net Black-Scholes premium is paid (or received)
    on day 0, notional x (max(put strike - price, 0) - max(price - call strike, 0)) at expiry."""

    type: Literal["btc_collar"]
    put_strike_usd: param(0.0, floor=0.01, cap=1e9) = Field(description="strike of the put bought [USD] (param)")
    call_strike_usd: param(0.0, floor=0.01, cap=1e9) = Field(description="strike of the call sold [USD] (param)")

    @model_validator(mode="after")
    def _strikes(self):
        put, call = self.put_strike_usd, self.call_strike_usd
        if put.is_fixed and call.is_fixed and call.value < put.value:
            raise ValueError(
                at("call_strike_usd", f"{call.value:g} is below the put's strike {put.value:g} (allowed: >= it)")
            )
        return self


Hedge = Annotated[
    Union[HashpriceSwap, ProductionForward, BtcPut, BtcCollar],
    Field(discriminator="type"),
]
HEDGE_CLASSES = {
    "hashprice_swap": HashpriceSwap,
    "production_forward": ProductionForward,
    "btc_put": BtcPut,
    "btc_collar": BtcCollar,
}


class Resale(Section):
    """The machines sold at the horizon's end, at a price that follows hashprice: ASIC prices
    track what a TH/s earns (Hashrate Index's ASIC price index moves with hashprice), so a
    machine fetches ``value_share`` of its purchase price x (hashprice at the end / at the
    start) ^ ``hashprice_elasticity``, and never less than ``floor_share`` (parts, scrap)."""

    value_share: param(0.0, 1.5) = Field(
        description="resale price / purchase price at the end if hashprice were as at the start, i.e. the "
        "discount for the machines' age [share] (param)"
    )
    hashprice_elasticity: param(0.0, 5.0) = Field(
        1.0, description="resale price ~ (hashprice at the end / at the start) ^ this (param)"
    )
    floor_share: param(0.0, 1.0) = Field(
        0.05, description="lowest resale price / purchase price, whatever hashprice does [share] (param)"
    )
    end_window_days: int = Field(
        30, ge=1, le=3650, description="hashprice at the end: its mean over the horizon's last days [days]"
    )


class Upgrade(Section):
    """Replace one model of the fleet by another during the horizon, on a given day or on the
    first day the hashprice (its mean over the last ``hashprice_window_days``) falls below a
    trigger. The new machines fill the old ones' power (a more efficient model hashes more on
    the same MW); the farm's share of them is down for ``swap_days``; the old ones are sold
    then at a price that follows hashprice, the new ones bought and depreciated from then."""

    replaces: int = Field(0, ge=0, le=999, description="row of farm.fleet replaced (0 = the first)")
    to_model: str = Field(min_length=1, description="the new model, e.g. 'Antminer S21 Pro' (kzsim models)")
    hashrate_th: param(0.0, floor=1e-6, cap=1e6) = Field(
        description="hashrate of one new machine [TH/s] (param; default: the catalogue's for to_model)"
    )
    efficiency_j_per_th: param(0.0, floor=0.01, cap=1e6) = Field(
        description="energy per hash of the new machines [J/TH] (param; default: the catalogue's)"
    )
    unit_price_usd: param(0.0, cap=1e8) = Field(description="price of one new machine [USD] (param)")
    on_day: int | None = Field(None, ge=1, le=36_500, description="the day of the swap (0 = start date) [days]")
    when_hashprice_below_usd_per_th_day: param(0.0, cap=1e3) | None = Field(
        None, description="or: the first day the hashprice's recent mean is below this [USD per TH/s-day] (param)"
    )
    not_before_day: int = Field(0, ge=0, le=36_500, description="with the trigger: not before this day [days]")
    hashprice_window_days: int = Field(30, ge=1, le=3650, description="days of the trigger's mean hashprice")
    swap_days: int = Field(7, ge=0, le=365, description="days the replaced machines' share of the farm is down")
    old_value_share: param(0.0, 1.5) = Field(
        0.5, description="old machines sold at this share of their price x hashprice then / at the start (param)"
    )
    old_floor_share: param(0.0, 1.0) = Field(0.05, description="and at least this share of their price (param)")

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data):
        from kzsim.scenario.catalogue import fill_specs

        return fill_specs(data, "to_model")

    @model_validator(mode="after")
    def _when(self):
        if (self.on_day is None) == (self.when_hashprice_below_usd_per_th_day is None):
            raise ValueError(
                at(
                    "on_day",
                    "give the day or the trigger (allowed: exactly one of on_day and "
                    "when_hashprice_below_usd_per_th_day)",
                )
            )
        return self


class Financing(Section):
    """Cash, a loan and what lenders and investors watch. The capex is paid on day 0 from the
    loan and the owners' equity; ``starting_cash_usd`` is what is left in the bank then."""

    starting_cash_usd: param(0.0, cap=1e12) = Field(
        0.0, description="cash in the bank on day 0, after the capex is paid [USD] (param)"
    )
    loan_usd: param(0.0, cap=1e12) = Field(0.0, description="principal drawn on day 0 [USD] (param)")
    loan_rate_per_year: param(0.0, 2.0) = Field(
        0.0, description="interest rate, paid monthly at a twelfth of it [1/year] (param)"
    )
    loan_term_months: int = Field(36, ge=1, le=600, description="months until the loan is repaid [months]")
    loan_repayment: Literal["amortising", "bullet"] = Field(
        "amortising",
        description="'amortising': equal monthly payments of interest and principal; "
        "'bullet': monthly interest, the principal at the end of the term",
    )
    interest_tax_deductible: bool = Field(True, description="interest reduces the taxable profit")
    collateral_btc: param(0.0, cap=1e7) = Field(
        0.0, description="BTC pledged to the lender, outside the farm's treasury [BTC] (param)"
    )
    margin_call_ltv: param(0.0, 10.0, open_low=True) = Field(
        0.8,
        description="loan outstanding / collateral value above which the lender calls for more [share] (param)",
    )
    dscr_covenant: param(0.0, 100.0) = Field(
        1.2,
        description="lowest debt-service coverage allowed in a quarter: the quarter's operating cash after tax "
        "and hedges / its interest and principal (param)",
    )
    hurdle_irr_per_year: param(-1.0, 100.0) = Field(
        0.15, description="the owners' required return, for P(IRR < hurdle) [1/year] (param)"
    )
