"""The market section of a scenario: BTC price and its models, the network, fees and the tenge."""

from __future__ import annotations

import datetime as dt
import os
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, model_validator

from kzsim.scenario.distributions import Fixed, event_distribution, param
from kzsim.scenario.fields import (
    PER_EVENT,
    Section,
    Share,
    Volatility,
    at,
    read_series,
)
from kzsim.scenario.history import DIFFICULTY_NAMES, FEE_NAMES, HistoryError


class JumpDiffusion(Section):
    """Merton jumps on top of the GBM of ``btc_drift_per_year`` and ``btc_volatility_per_year``."""

    jumps_per_year: param(0.0, cap=3650.0) = Field(description="mean number of jumps a year [1/year] (param)")
    jump_mean_log: param(-5.0, 5.0) = Field(description="mean of a jump's log size (-0.05 = a 4.9 % fall) (param)")
    jump_volatility_log: param(0.0, 5.0) = Field(description="sd of a jump's log size (param)")


class Garch(Section):
    """GARCH(1,1) volatility around the drift ``btc_drift_per_year``."""

    long_run_volatility_per_year: Volatility = Field(
        description="unconditional volatility sigma_LR [1/sqrt(year)] (param)"
    )
    alpha: param(0.0, 1.0) = Field(description="ARCH coefficient: weight of yesterday's squared shock (param)")
    beta: param(0.0, 1.0) = Field(description="GARCH coefficient: weight of yesterday's variance (param)")
    start_volatility_per_year: Volatility | None = Field(
        None, description="conditional volatility on the start date (default: the long-run one) [1/sqrt(year)] (param)"
    )

    @model_validator(mode="after")
    def _stationary(self):
        top = self.alpha.support()[1] + self.beta.support()[1]
        if not top < 1.0:
            raise ValueError(
                f"alpha + beta can reach {top:g} (allowed: alpha + beta < 1 on every path, a stationary GARCH)"
            )
        return self


class Bootstrap(Section):
    """Stationary block bootstrap of historical daily log returns of BTC."""

    returns_csv: str = Field(
        min_length=1,
        description="CSV of daily closes (date and close columns recognised by name); "
        "relative paths are from the scenario file's folder",
    )
    date_column: str | None = Field(None, description="name of the date column (default: recognised)")
    price_column: str | None = Field(None, description="name of the close column (default: recognised)")
    from_date: dt.date | None = Field(None, description="first day of history used (default: the file's first)")
    to_date: dt.date | None = Field(None, description="last day of history used (default: the file's last)")
    mean_block_days: float = Field(
        20.0, ge=1.0, le=3650.0, description="mean length of a resampled block [days]; longer keeps more clustering"
    )
    drift: Literal["scenario", "historical"] = Field(
        "scenario",
        description="'scenario': returns re-centred on btc_drift_per_year; 'historical': the history's own drift",
    )
    _log_returns: object = PrivateAttr(None)

    @model_validator(mode="after")
    def _read(self):
        series = read_series(
            self,
            "returns_csv",
            date_column=self.date_column,
            value_column=self.price_column,
            start=self.from_date,
            end=self.to_date,
        )
        if series.values.size < MIN_BOOTSTRAP_DAYS:
            raise ValueError(
                at("returns_csv", f"{series.values.size} days of history (allowed: at least {MIN_BOOTSTRAP_DAYS})")
            )
        self._log_returns = series.log_returns()
        return self

    @property
    def log_returns(self):
        """Daily log returns of the history (n_days - 1,), read once when the scenario is loaded."""
        return self._log_returns


class Replay(Section):
    """Historical paths instead of simulated ones: every path sees the same market history."""

    btc_price_csv: str | None = Field(
        None, description="daily BTC closes [USD] used as the price path (needs price_model: replay)"
    )
    difficulty_csv: str | None = Field(None, description="daily difficulty used instead of the simulated chain")
    fees_btc_per_day_csv: str | None = Field(
        None, description="daily total transaction fees [BTC/day]; per block = this / 144"
    )
    _series: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _files(self):
        given = [key for key in REPLAY_COLUMNS if getattr(self, key) is not None]
        if not given:
            raise ValueError(f"no file given (allowed: at least one of {', '.join(REPLAY_COLUMNS)})")
        for key in given:
            path = getattr(self, key)
            if not os.path.isfile(path):
                problem = "is a directory" if os.path.isdir(path) else "file not found"
                raise ValueError(at(key, f"{path}: {problem} (allowed: a CSV file)"))
        return self

    def read(self, start: dt.date, n_days: int) -> None:
        """Read the simulated days of every file (the scenario calls this once it knows its dates)."""
        end = start + dt.timedelta(days=n_days - 1)
        for key, value_names in REPLAY_COLUMNS.items():
            if getattr(self, key) is not None:
                kwargs = {"value_names": value_names, "what": key.removesuffix("_csv")} if value_names else {}
                series = read_series(self, key, start=start, end=end, **kwargs)
                try:
                    series.window(start, n_days)
                except HistoryError as exc:
                    raise ValueError(at(key, str(exc))) from None
                self._series[key] = series

    def window(self, key: str, start: dt.date, n_days: int):
        """The values of file ``key`` for the simulated days (None when not given)."""
        series = self._series.get(key)
        return None if series is None else series.window(start, n_days)


REPLAY_COLUMNS = {"btc_price_csv": None, "difficulty_csv": DIFFICULTY_NAMES, "fees_btc_per_day_csv": FEE_NAMES}


MIN_BOOTSTRAP_DAYS = 60


PRICE_MODELS = ("gbm", "jump_diffusion", "garch", "bootstrap", "replay")


class Market(Section):
    """BTC price, network, fees and the tenge."""

    btc_price_usd: param(0.0, floor=0.01, cap=1e9) = Field(description="BTC price on the start date [USD] (param)")
    price_model: Literal[PRICE_MODELS] = Field(
        "gbm",
        description="BTC price process: 'gbm'; 'jump_diffusion', 'garch', 'bootstrap' (each with its section "
        "below); 'replay' (the history in replay.btc_price_csv)",
    )
    jump_diffusion: JumpDiffusion | None = Field(None, description="jumps of price_model: jump_diffusion")
    garch: Garch | None = Field(None, description="volatility model of price_model: garch")
    bootstrap: Bootstrap | None = Field(None, description="history of price_model: bootstrap")
    replay: Replay | None = Field(None, description="historical price, difficulty or fee paths (replay mode)")
    btc_drift_per_year: param(cap=50.0) = Field(
        0.0, description="expected log-return of BTC plus sigma^2/2 (GBM mu) [1/year] (param)"
    )
    btc_volatility_per_year: Volatility = Field(
        0.5, description="annualised volatility of BTC daily log-returns [1/sqrt(year)] (param)"
    )
    network_hashrate_eh: param(0.0, floor=1e-6, cap=1e9) = Field(
        description="network hashrate on the start date [EH/s] (param)"
    )
    network_difficulty: param(0.0, floor=1.0, cap=1e30) | None = Field(
        None,
        description="difficulty on the start date (default: the one matching the hashrate, "
        "hashrate * 600 / 2^32) (param)",
    )
    start_block_height: int | None = Field(
        None,
        ge=0,
        le=6_929_999,
        description="block height on the start date (default: estimated from 840,000 on "
        "2024-04-20 at 144 blocks a day)",
    )
    hashrate_growth_per_year: param(cap=10.0) = Field(0.3, description="drift of log network hashrate [1/year] (param)")
    hashrate_volatility_per_year: Volatility = Field(
        0.15, description="volatility of log network hashrate [1/sqrt(year)] (param)"
    )
    hashrate_price_elasticity: param(0.0, 5.0) = Field(
        0.0,
        description="how far log hashrate follows the lagged log BTC price (0 = not at all) [dimensionless] (param)",
    )
    hashrate_responds_to: Literal["price", "hashprice"] = Field(
        "price",
        description="what the network hashrate follows with hashrate_price_elasticity: the BTC 'price', or the "
        "'hashprice' (price x reward / difficulty: miners switch off when it falls, e.g. after a halving)",
    )
    hashrate_response_lag_days: param(1.0, 3650.0) = Field(
        90.0, description="time constant of the hashrate's response to price [days] (param)"
    )
    hashrate_drawdown_rate_per_year: param(0.0, cap=52.0) = Field(
        0.0,
        description="network hashrate drawdown events a year: curtailment (heat waves, winter storms), bans, "
        "capitulations after price falls; Poisson [1/year] (param)",
    )
    hashrate_drawdown_depth: event_distribution(0.0, "shares in [0, 0.95] of the hashrate on before it", 0.95) = Field(
        Fixed(value=0.1),
        description="share of the network's hashrate that a drawdown switches off on its first day [share] (per event)",
        json_schema_extra=PER_EVENT,
    )
    hashrate_drawdown_recovery_days: event_distribution(
        0.0, "durations in [0, 1e12] days (1e12: as good as never)", cap=1e12
    ) = Field(
        Fixed(value=30.0),
        description="days for a drawdown's lost hashrate to come back, linearly (days: curtailment; months: a ban "
        "or a capitulation) [days] (per event)",
        json_schema_extra=PER_EVENT,
    )
    hashrate_drawdown_month_weights: list[Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False)]] | None = (
        Field(
            None,
            min_length=12,
            max_length=12,
            description="relative rate of drawdowns in each calendar month, January first (12 values >= 0, not all "
            "0; the yearly rate stays hashrate_drawdown_rate_per_year; default: the same every month)",
        )
    )
    fees_btc_per_block: param(0.0, cap=1000.0) = Field(
        0.03, description="median transaction fees per block [BTC/block] (param)"
    )
    fees_log_volatility: param(0.0, 5.0) = Field(
        0.4, description="sd of the log of fees per block around the median, outside spikes [dimensionless] (param)"
    )
    fees_persistence_days: param(0.0, 3650.0) = Field(
        0.0,
        description="time constant of the log of fees (AR(1) with phi = exp(-1/this); 0 = independent days) "
        "[days] (param)",
    )
    fees_spike_rate_per_year: param(0.0, cap=365.0) = Field(
        0.0, description="fee spikes a year (inscription waves, halving day, congestion) [1/year] (param)"
    )
    fees_spike_extra: event_distribution(0.0, "values in [0, 1,000]", cap=1_000.0) = Field(
        Fixed(value=4.0),
        description="extra fees on a spike's first day, as a multiple of the fees without it "
        "(4 = five times the usual fees) [dimensionless] (per event)",
        json_schema_extra=PER_EVENT,
    )
    fees_spike_half_life_days: param(0.0, 365.0) = Field(
        3.0, description="days for a spike's extra fees to halve [days] (param)"
    )
    usd_kzt: param(0.0, floor=1.0, cap=1e6) = Field(description="exchange rate on the start date [KZT per USD] (param)")
    kzt_devaluation_per_year: param(cap=10.0) = Field(0.05, description="drift of log(KZT per USD) [1/year] (param)")
    kzt_volatility_per_year: Volatility = Field(
        0.1, description="volatility of log(KZT per USD) [1/sqrt(year)] (param)"
    )
    btc_kzt_correlation: float = Field(
        0.0,
        ge=-1.0,
        le=1.0,
        description="correlation of daily shocks of BTC/USD and KZT per USD [-1, 1]",
    )
    exchange_fee_share: Share = Field(0.001, description="fee of selling BTC outside AIFC [share of proceeds] (param)")

    @model_validator(mode="after")
    def _model_section(self):
        weights = self.hashrate_drawdown_month_weights
        if weights is not None and not sum(weights) > 0:
            raise ValueError(
                at("hashrate_drawdown_month_weights", "every month's weight is 0 (allowed: 12 values >= 0, not all 0)")
            )
        if self.price_model == "replay":
            if self.replay is None or self.replay.btc_price_csv is None:
                raise ValueError(
                    at(
                        "replay.btc_price_csv",
                        "price_model is 'replay' but no file is given (allowed: a CSV of daily closes)",
                    )
                )
        elif getattr(self, self.price_model, None) is None and self.price_model != "gbm":
            raise ValueError(
                at(
                    self.price_model,
                    f"price_model is {self.price_model!r} but the section is missing "
                    f"(allowed: a `{self.price_model}:` section under market; see kzsim schema or kzsim calibrate)",
                )
            )
        if self.replay is not None and self.replay.btc_price_csv is not None and self.price_model != "replay":
            raise ValueError(
                at(
                    "replay.btc_price_csv",
                    f"a price history is given but price_model is {self.price_model!r} "
                    "(allowed: price_model: replay, or no btc_price_csv)",
                )
            )
        return self
