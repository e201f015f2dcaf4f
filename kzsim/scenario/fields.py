"""The pieces every scenario section is made of: the section base, parameter and share types, and the message form of a key's problem."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, model_validator

from kzsim.scenario.distributions import event_distribution, param, refuse_booleans
from kzsim.scenario.history import DailySeries, HistoryError, read_daily_csv

Share = param(0.0, 1.0)


Volatility = param(0.0, 5.0, what="values in [0, 5] (an annual volatility, 0.5 = 50 %)")


EventHours = event_distribution()


PER_EVENT = {"x-per-event": True}


FIRST_BLOCK_DATE = dt.date(2009, 1, 3)


LAST_SUBSIDY_DATE = dt.date(2139, 12, 31)  # the subsidy reaches zero around 2140


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans(cls, data):
        return refuse_booleans(cls, data)


def at(key: str, message: str) -> str:
    """A check's message located at ``key`` inside the section that raises it."""
    return f"@{key}: {message}"


def read_series(section: BaseModel, key: str, **kwargs) -> DailySeries:
    try:
        return read_daily_csv(getattr(section, key), **kwargs)
    except HistoryError as exc:
        raise ValueError(at(key, str(exc))) from None
