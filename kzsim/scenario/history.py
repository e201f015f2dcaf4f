"""Reading daily series (prices, difficulty, fees) from the CSV exports people have.

A Yahoo-style ``Date,Open,High,Low,Close,Adj Close,Volume``, a ``date,price`` file, an
investing.com ``"Date","Price",...`` file (newest first, thousands separators), a
``timestamp,value`` file: the date and value columns are recognised by name, or given.
Every problem becomes a :class:`HistoryError` naming the file, the column and the rows,
never a wrong series: duplicated days, unsorted rows, gaps, empty or non-positive
values are refused with what is allowed.

This module reads files; the simulation never calls it (the scenario loader does, and
the arrays travel inside the scenario).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kzsim.inputs import InputError, read_bounded, regular_file_or_error

DATE_NAMES = ("date", "day", "time", "timestamp", "datetime", "x")
PRICE_NAMES = ("close", "adj close", "adj_close", "close price", "price", "value", "closing price", "y")
DIFFICULTY_NAMES = ("difficulty", "value")
FEE_NAMES = ("fees_btc", "fees_btc_per_day", "fees", "transaction_fees", "transaction-fees", "value")
MAX_SHOWN = 3


class HistoryError(ValueError):
    """A CSV file that cannot be read as a daily series; the message says why and what is allowed."""


@dataclass(frozen=True, eq=False)
class DailySeries:
    """A daily series: one value a calendar day, no gaps, dates ascending."""

    dates: np.ndarray  # datetime64[D]
    values: np.ndarray  # float64
    source: str
    column: str
    # calendar days missing from the file: given the day before's value (fill="previous") or
    # left out, so that ``dates`` has gaps (fill="keep")
    missing_days: int = 0

    @property
    def first(self) -> dt.date:
        return self.dates[0].astype(dt.date)

    @property
    def last(self) -> dt.date:
        return self.dates[-1].astype(dt.date)

    def window(self, start: dt.date, n_days: int) -> np.ndarray:
        """The values of ``n_days`` days from ``start``; HistoryError if the file does not cover them."""
        end = start + dt.timedelta(days=n_days - 1)
        if start < self.first or end > self.last:
            raise HistoryError(
                f"{self.source}: covers {self.first} to {self.last}; the run needs {start} to {end} "
                "(allowed: a file covering every simulated day)"
            )
        i = int((np.datetime64(start, "D") - self.dates[0]).astype(np.int64))
        return self.values[i : i + n_days]

    def elapsed_days(self) -> np.ndarray:
        """Days between consecutive values (1 on every day unless the file had gaps)."""
        return np.diff(self.dates).astype(np.int64).astype(np.float64)

    def log_returns(self) -> np.ndarray:
        """Daily log returns, ``log(v[t+1] / v[t])``."""
        return np.diff(np.log(self.values))


def _pick(columns: list[str], wanted: str | None, names: tuple[str, ...], what: str, source: str, flag: str) -> str:
    if wanted is not None:
        if wanted in columns:
            return wanted
        lower = {c.strip().lower(): c for c in columns}
        if wanted.strip().lower() in lower:
            return lower[wanted.strip().lower()]
        raise HistoryError(f"{source}: no column {wanted!r} (allowed: one of {', '.join(columns)})")
    lower = {c.strip().lower(): c for c in columns}
    for name in names:
        if name in lower:
            return lower[name]
    shown = ", ".join(dict.fromkeys(n.title() if n in ("close", "date") else n for n in names[:2] + names[-1:]))
    raise HistoryError(
        f"{source}: cannot tell which column holds the {what} among {', '.join(columns)} "
        f"(allowed: a column named {shown} or the like, or name it with {flag})"
    )


def _rows(index: np.ndarray, limit: int = MAX_SHOWN) -> str:
    """'rows 5, 9, 12 and 3 more' with 1-based file line numbers (header = line 1)."""
    shown = ", ".join(str(int(i) + 2) for i in index[:limit])
    more = f" and {index.size - limit} more" if index.size > limit else ""
    return f"line{'s' if index.size > 1 else ''} {shown}{more}"


def _parse_dates(raw: pd.Series, source: str, column: str, rows: np.ndarray) -> np.ndarray:
    """Days of ``raw``; ``rows`` are the rows' positions among the file's data rows, for messages."""
    text = raw.astype(str).str.strip()
    numeric = pd.to_numeric(text, errors="coerce")
    if numeric.notna().all() and (numeric > 1e9).all():  # UNIX time, seconds or milliseconds
        unit = "ms" if (numeric > 1e11).all() else "s"
        stamps = pd.to_datetime(numeric, unit=unit, utc=True)
    else:
        stamps = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
        if stamps.isna().any():
            try:
                stamps = pd.to_datetime(text, format="mixed", errors="coerce", utc=True)
            except (ValueError, TypeError):
                pass
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if bad.size:
        raise HistoryError(
            f"{source}: column {column!r}: {bad.size} value(s) are not dates, e.g. {text.iloc[bad[0]]!r} on "
            f"{_rows(rows[bad])} (allowed: ISO dates YYYY-MM-DD, or UNIX time)"
        )
    if (stamps.dt.tz_convert(None).dt.normalize() != stamps.dt.tz_convert(None)).any():
        days = stamps.dt.tz_convert(None).dt.normalize()
        if days.duplicated().any():
            raise HistoryError(
                f"{source}: column {column!r}: several rows a day (intraday data) (allowed: one row per day)"
            )
        stamps = days.dt.tz_localize("UTC")
    return stamps.dt.tz_convert(None).to_numpy().astype("datetime64[D]")


def _parse_values(raw: pd.Series, source: str, column: str, rows: np.ndarray) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(raw):
        text = raw.astype(str).str.strip().str.replace(",", "", regex=False).str.replace("$", "", regex=False)
        values = pd.to_numeric(text, errors="coerce")
    else:
        values = pd.to_numeric(raw, errors="coerce")
    values = values.to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise HistoryError(
            f"{source}: column {column!r}: {bad.size} empty or non-numeric value(s) on {_rows(rows[bad])} "
            "(allowed: a number on every row)"
        )
    bad = np.flatnonzero(values <= 0)
    if bad.size:
        raise HistoryError(
            f"{source}: column {column!r}: {bad.size} value(s) <= 0, e.g. {values[bad[0]]:g} on {_rows(rows[bad])} "
            "(allowed: positive values; cut the file with --from/--to or from_date/to_date to skip them)"
        )
    return values


def read_daily_csv(
    path: str | Path,
    *,
    date_column: str | None = None,
    value_column: str | None = None,
    value_names: tuple[str, ...] = PRICE_NAMES,
    what: str = "closing price",
    start: dt.date | None = None,
    end: dt.date | None = None,
    fill: str | None = None,
) -> DailySeries:
    """Read one daily series from a CSV file.

    Rows newest-first are reversed. Rows outside ``start`` .. ``end`` are dropped before the
    checks, so a file with a bad stretch can be used around it. ``fill="previous"`` gives
    missing days the value of the day before (right for a step series such as difficulty),
    ``fill="keep"`` leaves them out (``dates`` then has gaps: :meth:`DailySeries.elapsed_days`);
    without either a gap is refused.

    Raises
    ------
    HistoryError
        The file is missing or unreadable, a column cannot be found, or the series has
        duplicated days, unsorted rows, missing days, or values that are empty or <= 0.
    """
    p = Path(path)
    source = str(path)
    problem = regular_file_or_error(p, "a CSV file")
    if problem:
        raise HistoryError(problem)
    stat = p.stat()
    return _read_cached(
        str(p.resolve()),
        stat.st_mtime_ns,
        stat.st_size,
        source,
        date_column,
        value_column,
        value_names,
        what,
        start,
        end,
        fill,
    )


MAX_CSV_BYTES = 200_000_000  # a daily series since 2009 is ~0.3 MB; minute data of years, ~200 MB


@functools.lru_cache(maxsize=32)
def _read_cached(
    path, _mtime, _size, source, date_column, value_column, value_names, what, start, end, fill
) -> DailySeries:
    try:
        raw = read_bounded(path, MAX_CSV_BYTES, "a CSV file")
    except InputError as exc:
        raise HistoryError(str(exc).replace(path, source, 1)) from None
    try:
        frame = pd.read_csv(io.BytesIO(raw), dtype=str, skipinitialspace=True, encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise HistoryError(f"{source}: not a text file (allowed: a UTF-8 CSV file)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        raise HistoryError(f"{source}: not a readable CSV file: {str(exc).splitlines()[0]}") from None
    columns = [str(c) for c in frame.columns]
    date_col = _pick(columns, date_column, DATE_NAMES, "dates", source, "--date-column")
    value_col = _pick(columns, value_column, value_names, what, source, "--price-column")
    if value_col == date_col:
        raise HistoryError(
            f"{source}: column '{value_col}' holds the dates (allowed: another column for the {what}, "
            "named with --price-column)"
        )
    frame = frame[[date_col, value_col]].dropna(how="all")
    if frame.empty:
        raise HistoryError(f"{source}: no data rows (allowed: a header and one row per day)")
    rows = frame.index.to_numpy()  # data rows of the file (0 = line 2), empty rows dropped
    dates = _parse_dates(frame[date_col], source, date_col, rows)
    keep = np.ones(dates.size, dtype=bool)
    if start is not None:
        keep &= dates >= np.datetime64(start, "D")
    if end is not None:
        keep &= dates <= np.datetime64(end, "D")
    line = rows[keep]  # data rows of the file, for messages (also when --from/--to cut it)
    dates = dates[keep]
    if dates.size < 2:
        raise HistoryError(
            f"{source}: {dates.size} day(s) between {start or 'the start'} and {end or 'the end'} "
            "(allowed: at least 2 days)"
        )
    values = _parse_values(frame[value_col].iloc[np.flatnonzero(keep)].reset_index(drop=True), source, value_col, line)
    step = np.diff(dates).astype(np.int64)
    if (step < 0).all():  # newest first, as many exports are
        dates, values, line, step = dates[::-1], values[::-1], line[::-1], -step[::-1]
    same = np.flatnonzero(step == 0)
    if same.size:
        raise HistoryError(
            f"{source}: {same.size} day(s) appear twice, e.g. {dates[same[0]]} on {_rows(line[same + 1])} "
            "(allowed: one row per day)"
        )
    back = np.flatnonzero(step < 0)
    if back.size:
        raise HistoryError(
            f"{source}: rows are not in date order: {dates[back[0] + 1]} follows {dates[back[0]]} on "
            f"{_rows(line[back + 1])} (allowed: dates ascending, or all descending)"
        )
    gaps = np.flatnonzero(step > 1)
    if gaps.size and fill == "keep":
        return DailySeries(dates, values, source, value_col, int((step[gaps] - 1).sum()))
    if gaps.size and fill == "previous":
        every = np.arange(dates[0], dates[-1] + np.timedelta64(1, "D"))
        position = np.searchsorted(dates, every, side="right") - 1  # the last day on or before
        return DailySeries(every, values[position], source, value_col, int(every.size - dates.size))
    if gaps.size:
        missing = int((step[gaps] - 1).sum())
        first = dates[gaps[0]] + np.timedelta64(1, "D")
        raise HistoryError(
            f"{source}: {missing} missing day(s) in {gaps.size} gap(s), the first from {first} "
            f"(after {_rows(line[gaps[:1]])}) (allowed: every calendar day; fill the file or cut around the gap)"
        )
    return DailySeries(dates, values, source, value_col)


def resolve(path: str, base_dir: str | os.PathLike | None) -> str:
    """``path`` relative to ``base_dir`` (the scenario's folder) unless absolute."""
    p = Path(os.path.expanduser(path))
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return str(p)
