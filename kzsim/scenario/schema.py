"""The scenario as data: frozen pydantic v2 models of the YAML format.

Every scalar marked *param* below may be a plain number or a distribution drawn once
per path (see :mod:`kzsim.scenario.distributions`). Fields marked *per event* are distributions
drawn once per event (an outage, a failed payment). The unit of every quantity ends its
name and is repeated in brackets in its description, which ``kzsim schema`` shows.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, PrivateAttr, ValidationError, field_validator, model_validator

from kzsim.scenario.decisions import (
    BtcCollar,
    BtcPut,
    Financing,
    HashpriceSwap,
    Hedge,
    ProductionForward,
    Resale,
    Upgrade,
)
from kzsim.scenario.distributions import CENTRAL_TAIL, Fixed, _Dist, param
from kzsim.scenario.errors import ScenarioError, format_validation_error
from kzsim.scenario.fields import (
    FIRST_BLOCK_DATE,
    LAST_SUBSIDY_DATE,
    PER_EVENT,
    EventHours,
    Section,
    Share,
    at,
)
from kzsim.scenario.market import Bootstrap, Garch, JumpDiffusion, Market, Replay
from kzsim.scenario.overrides import apply_overrides


class Simulation(Section):
    """How many paths, how long, from when, with which seed."""

    paths: int = Field(10_000, ge=1, le=100_000_000, description="number of simulated paths")
    horizon_days: int = Field(ge=1, le=36_500, description="length of a path [days]")
    seed: int = Field(ge=0, le=2**63 - 1, description="master seed of every random stream")
    start_date: dt.date = Field(description="first simulated day (ISO date, YYYY-MM-DD)")
    variance_reduction: Literal["none", "antithetic"] = Field(
        "none",
        description="'antithetic': within each block of 1,024 paths, paths i and i + 512 get opposite BTC price "
        "shocks (standard errors then come from the pairs); 'none': plain Monte Carlo",
    )
    winter_months: tuple[int, ...] = Field(
        (11, 12, 1, 2, 3),
        description="calendar months (1-12) counted as winter for tariffs, quota and outages",
    )

    @model_validator(mode="after")
    def _dates(self):
        end = self.start_date + dt.timedelta(days=self.horizon_days - 1)
        if self.start_date < FIRST_BLOCK_DATE or end > LAST_SUBSIDY_DATE:
            raise ValueError(
                f"start_date {self.start_date} + horizon_days {self.horizon_days} ends on {end} "
                f"(allowed: days between {FIRST_BLOCK_DATE} and {LAST_SUBSIDY_DATE}, the years with a block subsidy)"
            )
        return self

    @field_validator("winter_months")
    @classmethod
    def _months(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        bad = [m for m in v if not 1 <= m <= 12]
        if bad:
            raise ValueError(f"months {bad} are not calendar months (allowed: 1 to 12)")
        if len(set(v)) != len(v):
            raise ValueError("a month is listed twice (allowed: distinct months 1 to 12)")
        return v


class Asic(Section):
    """One ASIC model of the fleet. A model of the catalogue (``kzsim models``) fills
    ``hashrate_th`` and ``efficiency_j_per_th`` with its published specs unless they are given."""

    model: str = Field(min_length=1, description="ASIC model name, e.g. 'Antminer S21'")
    count: int = Field(ge=1, le=10_000_000, description="number of machines")
    hashrate_th: param(0.0, floor=1e-6, cap=1e6) = Field(
        description="hashrate of one machine [TH/s] (param; default: the catalogue's for the model)"
    )
    efficiency_j_per_th: param(0.0, floor=0.01, cap=1e6) = Field(
        description="energy per hash [J/TH] (param; default: the catalogue's for the model)"
    )
    unit_price_usd: param(0.0, cap=1e8) = Field(0.0, description="purchase price of one machine [USD]")

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data):
        """Fill the specs a row leaves out from the catalogue (kzsim.scenario.catalogue)."""
        from kzsim.scenario.catalogue import fill_specs

        return fill_specs(data, "model")


class Farm(Section):
    """The mining farm: fleet, facility, operating costs and capital."""

    fleet: tuple[Asic, ...] = Field(min_length=1, description="ASIC models and counts")
    cooling_overhead_fraction: param(0.0, 2.0) = Field(
        0.1, description="PUE - 1: facility power = IT power * (1 + this) [fraction] (param)"
    )
    hardware_availability_fraction: Share = Field(
        0.97, description="share of machines hashing when power is on [fraction] (param)"
    )
    restart_hours: param(0.0, 240.0) = Field(
        1.0, description="time to bring the farm back after a grid outage [h] (param)"
    )
    pool_fee_share: Share = Field(0.025, description="FPPS pool fee [share of reward] (param)")
    fixed_opex_usd_per_month: param(0.0, cap=1e10) = Field(
        0.0, description="staff, maintenance, site, insurance [USD/month] (param)"
    )
    site_capex_usd: param(0.0, cap=1e12) = Field(
        0.0, description="capital for site, substation, cooling, beyond the ASICs [USD] (param)"
    )
    depreciation_years: float = Field(3.0, gt=0, le=50, description="straight-line depreciation of all capex [years]")
    discount_rate_per_year: param(0.0, 1.0) = Field(0.15, description="discount rate for NPV [1/year] (param)")
    hardware_failure_rate_per_year: param(0.0, cap=100.0) = Field(
        0.0, description="machine failures a year per machine (0.05 = 5 % of the fleet fails a year) [1/year] (param)"
    )
    replacement_lead_time_days: param(0.0, cap=3650.0) = Field(
        30.0, description="mean time a failed machine stays off until its replacement hashes [days] (param)"
    )
    replacement_cost_share: param(0.0, 5.0) = Field(
        1.0, description="cost of replacing a failed machine / its unit_price_usd (0 = under warranty) (param)"
    )
    efficiency_degradation_per_year: param(0.0, 1.0) = Field(
        0.0, description="rise of J/TH a year as chips age (hashrate falls at the same power) [share/year] (param)"
    )
    economic_shutoff: bool = Field(
        False,
        description="idle on days when the coins the farm would mine sell for less than the power, mining fee and "
        "lot fees they cost (decided day-ahead on that day's price and hashprice)",
    )
    shutoff_restart_cost_usd: param(0.0, cap=1e9) = Field(
        0.0, description="cost of bringing the farm back after an economic shut-off [USD/restart] (param)"
    )
    resale: Resale | None = Field(
        None,
        description="sell the machines at the horizon's end at a price that follows hashprice (default: kept, "
        "worth nothing in NPV and IRR)",
    )
    upgrade: Upgrade | None = Field(
        None, description="replace one model by another on a day or when hashprice falls below a trigger"
    )

    @model_validator(mode="after")
    def _upgrade_row(self):
        if self.upgrade is not None and self.upgrade.replaces >= len(self.fleet):
            raise ValueError(
                at(
                    "upgrade.replaces",
                    f"{self.upgrade.replaces} is not a row of the fleet (allowed: 0 to {len(self.fleet) - 1})",
                )
            )
        return self


class Bracket(Section):
    """One row of the mining-fee table: applies from ``min_price_kzt_per_kwh`` upwards."""

    min_price_kzt_per_kwh: float = Field(ge=0, allow_inf_nan=False)
    fee_kzt_per_kwh: float = Field(ge=0, allow_inf_nan=False)


class Plan7030(Section):
    """The 70/30 plan: new plants whose output goes 70 % to the grid, 30 % to miners."""

    build_probability: Share = Field(description="chance the plants get built [share] (param)")
    online_delay_days: param(0.0, cap=36_500.0) = Field(
        description="days from start until the plants deliver [days] (param)"
    )
    plant_capacity_mw: param(0.0, cap=1e6) = Field(description="new capacity [MW] (param)")
    capacity_factor: Share = Field(0.8, description="average output / capacity [share] (param)")
    miner_share: Share = Field(0.3, description="share of output reserved for miners (param)")
    farm_allocation_share: Share = Field(description="this farm's share of the miners' allocation [share] (param)")


DEFAULT_BRACKETS = (
    Bracket(min_price_kzt_per_kwh=0, fee_kzt_per_kwh=25),
    Bracket(min_price_kzt_per_kwh=5, fee_kzt_per_kwh=10),
    Bracket(min_price_kzt_per_kwh=10, fee_kzt_per_kwh=7),
    Bracket(min_price_kzt_per_kwh=15, fee_kzt_per_kwh=5),
    Bracket(min_price_kzt_per_kwh=20, fee_kzt_per_kwh=3),
    Bracket(min_price_kzt_per_kwh=24, fee_kzt_per_kwh=1),
)


class Electricity(Section):
    """Tariff, mining fee, procurement on the state platform and the purchase quota."""

    tariff_kzt_per_kwh: param(0.0, cap=1e4) = Field(
        description="price of power bought on the platform [KZT/kWh] (param)"
    )
    winter_tariff_premium_share: param(0.0, 5.0) = Field(
        0.0, description="extra on the tariff in winter months [share] (param)"
    )
    tariff_indexation_per_year: param(-0.5, 2.0) = Field(
        0.0, description="tariff rise applied every 1 January [share/year] (param)"
    )
    mining_fee_brackets: tuple[Bracket, ...] = Field(
        DEFAULT_BRACKETS,
        min_length=1,
        description="mining fee [KZT/kWh] by the average price paid [KZT/kWh]; "
        "first row from 0, rows by increasing price",
    )
    procurement_mode: Literal["lots", "day_ahead"] = Field(
        "lots",
        description="'lots': 1 MWh transactions with per-lot fees (the article); "
        "'day_ahead': one prepaid purchase a day (the regulator's auction)",
    )
    lot_size_mwh: param(0.0, floor=0.001, cap=1e5) = Field(1.0, description="energy per transaction [MWh] (param)")
    lot_fee_kzt: param(0.0, cap=1e9) = Field(0.0, description="platform fee per lot [KZT/lot] (param)")
    lot_admin_cost_kzt: param(0.0, cap=1e9) = Field(0.0, description="staff and bank cost per lot [KZT/lot] (param)")
    payment_failure_probability: Share = Field(
        0.0,
        description="chance a lot's payment fails (lots) or a prepayment is missed "
        "(day_ahead) [probability per lot or per day] (param)",
    )
    payment_failure_idle_hours: EventHours = Field(
        Fixed(value=3.0),
        description="hours one lot's power stays off after a failed payment [h] (per event)",
        json_schema_extra=PER_EVENT,
    )
    day_ahead_price_volatility: param(0.0, 2.0) = Field(
        0.0, description="sd of the daily log of the cleared price around the tariff (param)"
    )
    day_ahead_floor_kzt_per_kwh: param(0.0, cap=1e4) = Field(
        0.0, description="lowest cleared price of the auction [KZT/kWh] (param)"
    )
    day_ahead_fee_kzt_per_day: param(0.0, cap=1e10) = Field(
        0.0, description="platform and bank fee of a daily purchase [KZT/day] (param)"
    )
    quota_fraction: Share = Field(1.0, description="share of the farm's full-power demand the platform sells (param)")
    winter_quota_multiplier: Share = Field(1.0, description="quota tightening in winter: quota * this [share] (param)")
    plan_70_30: Plan7030 | None = Field(None, description="optional extra quota from new plants")

    @field_validator("mining_fee_brackets")
    @classmethod
    def _brackets(cls, v: tuple[Bracket, ...]) -> tuple[Bracket, ...]:
        lows = [b.min_price_kzt_per_kwh for b in v]
        if lows[0] != 0:
            raise ValueError("the first bracket starts above 0 (allowed: a first row with min_price_kzt_per_kwh: 0)")
        if any(b <= a for a, b in zip(lows, lows[1:])):
            raise ValueError("brackets are out of order (allowed: rows by strictly increasing min_price_kzt_per_kwh)")
        return v


class ForcedOutage(Section):
    """A blackout that happens on every path (a stress test), on top of the random ones."""

    start_day: int = Field(ge=0, le=36_500, description="day of the horizon it starts on (0 = start date)")
    start_hour: float = Field(18.0, ge=0, lt=24, description="hour of that day it starts at [h]")
    duration_hours: float = Field(gt=0, le=8760, description="how long the grid is down [h], before restart")


class Grid(Section):
    """Grid outages: seasonal Poisson arrivals with heavy-tailed durations."""

    outage_rate_per_year: param(0.0, cap=3650.0) = Field(
        description="outages a year outside winter, before grid stress [1/year] (param)"
    )
    winter_rate_multiplier: param(0.0, cap=100.0) = Field(
        1.0, description="outage rate in winter months / rate outside winter (param)"
    )
    grid_stress_multiplier: param(0.0, cap=100.0) = Field(
        1.0, description="extra stress from illegal consumption: rate * this (param)"
    )
    outage_duration_hours: EventHours = Field(
        description="duration of one outage [h] (per event)", json_schema_extra=PER_EVENT
    )
    outage_max_duration_hours: float = Field(720.0, gt=0, le=8760, description="durations are capped here [h]")
    forced_outages: tuple[ForcedOutage, ...] = Field(
        (), description="blackouts on every path at given times (stress tests), each followed by the restart time"
    )


class Regulation(Section):
    """AIFC sale obligation, treasury policy, profit tax and compliance."""

    aifc_sale_share: Share = Field(description="share of mined BTC sold on AIFC (param)")
    aifc_spread_share: Share = Field(0.005, description="price discount on AIFC against the market [share] (param)")
    aifc_fee_share: Share = Field(0.001, description="AIFC exchange fee [share] (param)")
    aifc_settlement_lag_days: int = Field(1, ge=0, le=365, description="days between mining and the AIFC sale [days]")
    treasury_policy: Literal["sell", "hold"] = Field(
        "sell",
        description="the rest of the BTC: 'sell' daily at market, or 'hold' to the horizon end (marked to market)",
    )
    profit_tax_rate: Share = Field(description="corporate income tax on profit (param)")
    compliance_fixed_usd_per_year: param(0.0, cap=1e10) = Field(
        0.0, description="licence, reporting, audit [USD/year] (param)"
    )
    compliance_opex_share: Share = Field(0.0, description="compliance cost as a share of operating expenses (param)")


class RankCorrelation(Section):
    """The Spearman rank correlation of two per-path parameters."""

    between: tuple[str, str] = Field(description="two dotted parameter names, e.g. [market.btc_drift_per_year, ...]")
    rank_correlation: float = Field(ge=-1.0, le=1.0, description="Spearman correlation of the two [-1, 1]")


class Dependence(Section):
    """Rank correlations between uncertain per-path parameters (Iman-Conover; marginals unchanged)."""

    rank_correlations: tuple[RankCorrelation, ...] = Field(
        min_length=1, description="pairs of parameters and their rank correlation; pairs not listed are independent"
    )
    repair: bool = Field(
        False,
        description="true: an impossible set of correlations is replaced by the nearest valid one and the report "
        "says by how much; false: it is refused",
    )
    _names: tuple[str, ...] = PrivateAttr(())
    _matrix: object = PrivateAttr(None)
    _max_change: float = PrivateAttr(0.0)

    def resolve(self, uncertain: dict) -> None:
        """Check the names against the scenario's parameters and build the matrix."""
        import numpy as np

        from kzsim.scenario.dependence import (
            MIN_EIGENVALUE,
            nearest_correlation,
            normal_correlation,
            smallest_eigenvalue,
        )

        names: list[str] = []
        seen: set[frozenset] = set()
        for i, pair in enumerate(self.rank_correlations):
            a, b = pair.between
            for name in (a, b):
                if name not in uncertain:
                    close = difflib.get_close_matches(name, list(uncertain), n=1)
                    hint = f" did you mean `{close[0]}`?" if close else ""
                    raise ValueError(
                        at(
                            f"rank_correlations.{i}.between",
                            f"{name!r} is not a per-path parameter{hint} "
                            "(allowed: a dotted key of the scenario given as a number or distribution)",
                        )
                    )
                if uncertain[name].is_fixed:
                    raise ValueError(
                        at(
                            f"rank_correlations.{i}.between",
                            f"{name} is a constant: correlating it changes nothing "
                            "(allowed: a parameter given as a distribution)",
                        )
                    )
                if name not in names:
                    names.append(name)
            if a == b:
                raise ValueError(
                    at(
                        f"rank_correlations.{i}.between",
                        f"{a} is paired with itself (allowed: two different parameters)",
                    )
                )
            if frozenset((a, b)) in seen:
                raise ValueError(
                    at(f"rank_correlations.{i}.between", f"the pair {a}, {b} is listed twice (allowed: each pair once)")
                )
            seen.add(frozenset((a, b)))
        k = len(names)
        m = np.eye(k)
        for pair in self.rank_correlations:
            i, j = names.index(pair.between[0]), names.index(pair.between[1])
            m[i, j] = m[j, i] = pair.rank_correlation
        low = smallest_eigenvalue(normal_correlation(m))
        change = 0.0
        if low < MIN_EIGENVALUE:
            if not self.repair:
                raise ValueError(
                    at(
                        "rank_correlations",
                        f"these correlations cannot hold together (the matrix's smallest "
                        f"eigenvalue is {low:.3g}) (allowed: a positive definite set; or `repair: true` to use the "
                        "nearest valid one, which the report then shows)",
                    )
                )
            fixed_normal = nearest_correlation(normal_correlation(m))
            fixed = 6.0 / np.pi * np.arcsin(np.clip(fixed_normal / 2.0, -0.5, 0.5))
            np.fill_diagonal(fixed, 1.0)
            change = float(np.abs(fixed - m).max())
            m = fixed
        self._names, self._matrix, self._max_change = tuple(names), m, change

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def matrix(self):
        """The Spearman matrix used (after repair), in the order of :attr:`names`."""
        return self._matrix

    @property
    def max_change(self) -> float:
        """Largest change a repair made to an entry (0 when none was needed)."""
        return self._max_change


class Scenario(Section):
    """A kzsim scenario."""

    name: str = Field(min_length=1, description="short name of the scenario")
    description: str = Field("", description="what the scenario represents and its sources")
    simulation: Simulation = Field(description="paths, horizon, seed, start date, seasons")
    farm: Farm = Field(description="fleet, facility, operating costs, capital")
    market: Market = Field(description="BTC price, network hashrate and difficulty, fees, tenge")
    electricity: Electricity = Field(description="tariff, mining fee, procurement, quota, 70/30 plan")
    grid: Grid = Field(description="grid outages")
    regulation: Regulation = Field(description="AIFC sale, treasury, profit tax, compliance")
    dependence: Dependence | None = Field(None, description="rank correlations between uncertain parameters")
    hedges: tuple[Hedge, ...] = Field(
        (),
        max_length=50,
        description="hashprice swaps, production forwards, BTC puts and collars, valued on every path",
    )
    financing: Financing | None = Field(None, description="starting cash, a loan, covenants and the owners' hurdle")

    @model_validator(mode="after")
    def _hedges_in_horizon(self):
        n_days = self.simulation.horizon_days
        for i, hedge in enumerate(self.hedges):
            if isinstance(hedge, (BtcPut, BtcCollar)) and hedge.expiry_days > n_days - 1:
                raise ValueError(
                    at(
                        f"hedges.{i}.expiry_days",
                        f"{hedge.expiry_days} is not within the horizon of {n_days} days "
                        f"(allowed: 1 to {n_days - 1}, a day of the horizon after the start)",
                    )
                )
            if isinstance(hedge, (HashpriceSwap, ProductionForward)) and hedge.start_day >= n_days:
                raise ValueError(
                    at(
                        f"hedges.{i}.start_day",
                        f"{hedge.start_day} is not within the horizon's {n_days} days (allowed: 0 to {n_days - 1})",
                    )
                )
        upgrade = self.farm.upgrade
        if upgrade is not None and upgrade.on_day is not None and upgrade.on_day >= n_days:
            raise ValueError(
                at(
                    "farm.upgrade.on_day",
                    f"{upgrade.on_day} is not within the horizon's {n_days} days (allowed: 1 to {n_days - 1})",
                )
            )
        return self

    @model_validator(mode="after")
    def _dependence(self):
        if self.dependence is not None:
            try:
                self.dependence.resolve(self.uncertain_parameters())
            except ValueError as exc:
                raise ValueError(str(exc).replace("@", "@dependence.", 1)) from None
        return self

    @model_validator(mode="after")
    def _finite_over_horizon(self):
        """Refuse drifts and volatilities that would overflow over the horizon: a log process
        (the BTC price, the network hashrate, the tenge) may move by at most
        :data:`MAX_LOG_MOVE` = |drift| x years + 6 sd x sqrt(years) (e^200 ~ 7e86)."""
        years = self.simulation.horizon_days / 365.0
        m = self.market
        price_var = _size(m.btc_volatility_per_year) ** 2
        if m.price_model == "garch" and m.garch is not None:
            vols = [m.garch.long_run_volatility_per_year, m.garch.start_volatility_per_year]
            price_var = max(_size(v) ** 2 for v in vols if v is not None)
        if m.price_model == "jump_diffusion" and m.jump_diffusion is not None:
            j = m.jump_diffusion
            price_var += _size(j.jumps_per_year) * (_size(j.jump_mean_log) ** 2 + _size(j.jump_volatility_log) ** 2)
        processes = (
            ("btc_drift_per_year", "btc_volatility_per_year", "the BTC price", m.btc_drift_per_year, price_var**0.5),
            (
                "hashrate_growth_per_year",
                "hashrate_volatility_per_year",
                "the network hashrate",
                m.hashrate_growth_per_year,
                _size(m.hashrate_volatility_per_year),
            ),
            (
                "kzt_devaluation_per_year",
                "kzt_volatility_per_year",
                "KZT per USD",
                m.kzt_devaluation_per_year,
                _size(m.kzt_volatility_per_year),
            ),
        )
        for drift_key, sd_key, what, drift_param, sd in processes:
            drift = _size(drift_param)
            move = drift * years + 6.0 * sd * math.sqrt(years)
            key = "market." + (drift_key if drift * years >= 6.0 * sd * math.sqrt(years) else sd_key)
            if move > MAX_LOG_MOVE:
                raise ValueError(
                    at(
                        key,
                        f"over {self.simulation.horizon_days:,} days the log of {what} can move by {move:,.0f} "
                        f"(drift {drift:g} a year, volatility {sd:g}) (allowed: |drift| x years + 6 x volatility "
                        f"x sqrt(years) <= {MAX_LOG_MOVE:g}, so that every value stays finite: lower them or "
                        "simulation.horizon_days)",
                    )
                )
        return self

    @model_validator(mode="after")
    def _events_fit(self):
        """Refuse event rates whose events a path could not be held: each process's expected
        events over the horizon, at the top of its parameters' ranges, at most
        :data:`MAX_EVENTS_PER_PATH` (a block of 1,024 paths holds them at once)."""
        for key, events in self.expected_events_per_path().items():
            if events > MAX_EVENTS_PER_PATH:
                raise ValueError(
                    at(
                        key,
                        f"up to {events:,.0f} events a path over {self.simulation.horizon_days:,} days "
                        f"(allowed: at most {MAX_EVENTS_PER_PATH:,} expected a path, so that a block of paths' "
                        "events fits in memory: lower the rate or its multipliers)",
                    )
                )
        return self

    def expected_events_per_path(self) -> dict[str, float]:
        """Expected events a path over the horizon of each event process, at the top of the
        ranges of its rates (what a block of paths' event arrays hold), by the key of its rate."""
        years = self.simulation.horizon_days / 365.0
        days = np.datetime64(self.simulation.start_date) + np.arange(self.simulation.horizon_days)
        months = days.astype("datetime64[M]").astype(np.int64) % 12 + 1
        winter = int(np.isin(months, self.simulation.winter_months).sum())
        g, m = self.grid, self.market
        outages = (
            _size(g.outage_rate_per_year)
            * _size(g.grid_stress_multiplier)
            * (self.simulation.horizon_days - winter + winter * _size(g.winter_rate_multiplier))
            / 365.0
        )
        events = {
            "grid.outage_rate_per_year": outages + len(g.forced_outages),
            "market.fees_spike_rate_per_year": _size(m.fees_spike_rate_per_year) * years,
            "market.hashrate_drawdown_rate_per_year": _size(m.hashrate_drawdown_rate_per_year) * years,
        }
        if m.price_model == "jump_diffusion" and m.jump_diffusion is not None:
            events["market.jump_diffusion.jumps_per_year"] = _size(m.jump_diffusion.jumps_per_year) * years
        return events

    @model_validator(mode="after")
    def _history_covers_run(self):
        replay = self.market.replay
        if replay is not None:
            try:
                replay.read(self.simulation.start_date, self.simulation.horizon_days)
            except ValueError as exc:
                raise ValueError(str(exc).replace("@", "@market.replay.", 1)) from None
        return self

    # ---- helpers used by the engine and reports -------------------------------------
    def uncertain_parameters(self) -> dict[str, _Dist]:
        """Per-path parameters, by dotted name, in a stable order (constants included)."""
        out: dict[str, _Dist] = {}
        _walk(self, "", out)
        return out

    def replace(self, **updates) -> Scenario:
        """A copy with dotted-name updates, validated: ``s.replace(**{"a.b": 1})``."""
        from kzsim.scenario.schema import scenario_from_dict

        data = apply_overrides(self.to_dict(), updates, source="<replace>")
        dep = data.get("dependence")
        if dep:  # a parameter fixed by an analysis (tornado, sweep, Sobol point) leaves its correlations
            fixed = {k for k, v in updates.items() if not isinstance(v, (dict, _Dist))}
            dep["rank_correlations"] = [c for c in dep["rank_correlations"] if not fixed & set(c["between"])]
            if not dep["rank_correlations"]:
                del data["dependence"]
        return scenario_from_dict(data, source="<replace>")

    def to_dict(self) -> dict:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_yaml(self, path=None, *, overwrite: bool = False):
        """The scenario as YAML (every key, in the schema's order; distributions on one line;
        the description kept): the text, or with ``path`` the file written atomically (an
        existing file only with ``overwrite=True``). :func:`kzsim.load_scenario` reads it back
        to an equal scenario."""
        from kzsim.scenario.saving import save_scenario, scenario_yaml

        return scenario_yaml(self) if path is None else save_scenario(self, path, overwrite=overwrite)


MAX_LOG_MOVE = 200.0


MAX_EVENTS_PER_PATH = 10_000  # ~2.5 GB of event arrays for a block of 1,024 paths (engine.resources)


def _size(value: _Dist | None) -> float:
    """The largest |x| a parameter takes: a constant's, a bounded distribution's support's,
    or an unbounded one's central 99.8 % (the range :class:`Bounds` checks)."""
    if value is None:
        return 0.0
    if value.is_fixed:
        return abs(value.value)
    low, high = value.support()
    if not (math.isfinite(low) and math.isfinite(high)):
        low, high = (float(q) for q in value.ppf(np.array([CENTRAL_TAIL, 1 - CENTRAL_TAIL])))
    return max(abs(low), abs(high))


def _walk(model: BaseModel, prefix: str, out: dict[str, _Dist]) -> None:
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        key = f"{prefix}{info.alias or name}"
        extra = info.json_schema_extra or {}
        if isinstance(value, _Dist):
            if not (isinstance(extra, dict) and extra.get("x-per-event")):
                out[key] = value
        elif isinstance(value, BaseModel):
            _walk(value, key + ".", out)
        elif isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
            for i, item in enumerate(value):
                _walk(item, f"{key}.{i}.", out)


def estimated_block_height(date: dt.date) -> int:
    """Block height on ``date`` estimated from 840,000 on 2024-04-20 at 144 blocks/day."""
    days = (date - dt.date(2024, 4, 20)).days
    return max(0, 840_000 + math.floor(days * 144))


def reference_markdown() -> str:
    """The scenario reference as Markdown tables, one per section (``kzsim schema --markdown``)."""
    from kzsim.scenario.distributions import DIST_CLASSES

    lines = [
        "# Scenario reference",
        "",
        "Generated by `kzsim schema --markdown` from the scenario model; do not edit by hand.",
        "Every key ends in its unit; *param* keys take a number or a distribution drawn once per path,",
        "*per event* keys a distribution drawn once per event. Unknown keys are errors.",
        "",
    ]

    def table(model: type[BaseModel], title: str) -> None:
        lines.extend(
            [f"## `{title}`", "", (model.__doc__ or "").strip(), "", "| key | default | description |", "|---|---|---|"]
        )
        for name, info in model.model_fields.items():
            key = info.alias or name
            if info.is_required():
                default = "required"
            else:
                value = info.get_default(call_default_factory=True)
                if isinstance(value, Fixed):
                    value = value.value
                elif isinstance(value, _Dist):
                    value = value.model_dump(by_alias=True, exclude_none=True)
                elif isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
                    value = f"{len(value)} rows (see below)"
                default = f"`{value!r}`" if value == "" else f"`{value}`"
            desc = (info.description or "").replace("|", "\\|")
            lines.append(f"| `{key}` | {default} | {desc} |")
        lines.append("")

    table(Scenario, "top level")
    for section, model in (
        ("simulation", Simulation),
        ("farm", Farm),
        ("farm.fleet[]", Asic),
        ("farm.resale", Resale),
        ("farm.upgrade", Upgrade),
        ("market", Market),
        ("market.jump_diffusion", JumpDiffusion),
        ("market.garch", Garch),
        ("market.bootstrap", Bootstrap),
        ("market.replay", Replay),
        ("electricity", Electricity),
        ("electricity.mining_fee_brackets[]", Bracket),
        ("electricity.plan_70_30", Plan7030),
        ("grid", Grid),
        ("regulation", Regulation),
        ("dependence", Dependence),
        ("dependence.rank_correlations[]", RankCorrelation),
        ("hedges[] (type: hashprice_swap)", HashpriceSwap),
        ("hedges[] (type: production_forward)", ProductionForward),
        ("hedges[] (type: btc_put)", BtcPut),
        ("hedges[] (type: btc_collar)", BtcCollar),
        ("financing", Financing),
    ):
        table(model, section)
    lines.extend(["Default mining-fee brackets:", "", "| min_price_kzt_per_kwh | fee_kzt_per_kwh |", "|---|---|"])
    lines.extend(f"| {b.min_price_kzt_per_kwh:g} | {b.fee_kzt_per_kwh:g} |" for b in DEFAULT_BRACKETS)
    lines.extend(["", "## Distributions", "", "| `dist` | keys | meaning |", "|---|---|---|"])
    for tag, cls in DIST_CLASSES.items():
        keys = ", ".join(f"`{f.alias or n}`" for n, f in cls.model_fields.items() if n != "dist")
        lines.append(f"| `{tag}` | {keys} | {(cls.__doc__ or '').strip()} |")
    lines.append("")
    return "\n".join(lines)


def scenario_from_dict(data: dict, *, source: str = "<scenario>") -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc, source=source, root=Scenario)) from None
