"""Reading daily series from the CSV exports people have, and refusing the ones that would fit wrongly."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from kzsim.scenario.history import DIFFICULTY_NAMES, HistoryError, read_daily_csv
from tests.conftest import SHARED_DATA


def write(tmp_path, text: str, name: str = "prices.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_the_shared_price_file():
    s = read_daily_csv(SHARED_DATA / "btc_usd_daily.csv")
    assert s.column == "price"
    assert s.first == dt.date(2015, 1, 1) and s.last == dt.date(2025, 12, 31)
    assert s.values.size == 4018
    assert s.values[0] == pytest.approx(314.248992919922)


def test_yahoo_export_uses_close(tmp_path):
    p = write(
        tmp_path,
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-01,1,2,0.5,100.0,100.0,10\n"
        "2024-01-02,1,2,0.5,110.0,110.0,10\n"
        "2024-01-03,1,2,0.5,99.0,99.0,10\n",
    )
    s = read_daily_csv(p)
    assert s.column == "Close"
    np.testing.assert_array_equal(s.values, [100.0, 110.0, 99.0])
    np.testing.assert_allclose(s.log_returns(), np.log([1.1, 0.9]))


def test_investing_export_newest_first_with_thousands_separators(tmp_path):
    p = write(
        tmp_path,
        '"Date","Price","Open","Vol."\n"01/03/2024","42,800.5","1","1K"\n"01/02/2024","45,000.0","1","1K"\n'
        '"01/01/2024","44,100.25","1","1K"\n',
    )
    s = read_daily_csv(p)
    assert s.column == "Price"
    assert s.first == dt.date(2024, 1, 1)
    np.testing.assert_array_equal(s.values, [44100.25, 45000.0, 42800.5])


def test_unix_milliseconds_and_named_columns(tmp_path):
    day_ms = 86_400_000
    start = 1_700_000_000_000 // day_ms * day_ms
    rows = "".join(f"{start + i * day_ms},{v}\n" for i, v in enumerate([3.0, 4.0, 5.0]))
    p = write(tmp_path, "t,y_btc\n" + rows)
    s = read_daily_csv(p, date_column="t", value_column="y_btc")
    np.testing.assert_array_equal(s.values, [3.0, 4.0, 5.0])


def test_window_and_from_to(tmp_path):
    s = read_daily_csv(SHARED_DATA / "btc_usd_daily.csv", start=dt.date(2020, 1, 1), end=dt.date(2020, 12, 31))
    assert s.values.size == 366
    np.testing.assert_array_equal(s.window(dt.date(2020, 3, 1), 3), s.values[60:63])
    with pytest.raises(HistoryError, match="covers 2020-01-01 to 2020-12-31; the run needs 2020-12-30 to 2021-01-01"):
        s.window(dt.date(2020, 12, 30), 3)


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        (
            "date,price\n2024-01-01,1\n2024-01-01,2\n2024-01-02,3\n",
            {},
            r"1 day\(s\) appear twice, e.g. 2024-01-01 on line 3",
        ),
        (
            "date,price\n2024-01-02,1\n2024-01-01,2\n2024-01-03,3\n",
            {},
            r"not in date order: 2024-01-01 follows 2024-01-02 on line 3",
        ),
        (
            "date,price\n2024-01-01,1\n2024-01-02,2\n2024-01-05,3\n",
            {},
            r"2 missing day\(s\) in 1 gap\(s\), the first from 2024-01-03",
        ),
        ("date,price\n2024-01-01,1\n2024-01-02,0\n2024-01-03,3\n", {}, r"1 value\(s\) <= 0, e.g. 0 on line 3"),
        ("date,price\n2024-01-01,1\n2024-01-02,\n2024-01-03,3\n", {}, r"1 empty or non-numeric value\(s\) on line 3"),
        ("date,price\n2024-01-01,1\n2024-13-45,2\n2024-01-03,3\n", {}, r"not dates, e.g. '2024-13-45' on line 3"),
        ("when,price\n2024-01-01,1\n2024-01-02,2\n", {}, r"cannot tell which column holds the dates among when, price"),
        (
            "date,price\n2024-01-01,1\n2024-01-02,2\n",
            {"value_column": "Close"},
            r"no column 'Close' \(allowed: one of date, price\)",
        ),
        ("date,price\n2024-01-01,1\n", {}, r"1 day\(s\) between"),
        ("date,price\n", {}, r"no data rows"),
        ("date,price\n2024-01-01 09:00,1\n2024-01-01 10:00,2\n", {}, r"several rows a day"),
    ],
)
def test_bad_files_get_a_clear_message(tmp_path, text, kwargs, message):
    p = write(tmp_path, text)
    with pytest.raises(HistoryError, match=message) as info:
        read_daily_csv(p, **kwargs)
    assert str(info.value).startswith(str(p))
    assert "(allowed" in str(info.value)


def test_missing_binary_and_directory(tmp_path):
    with pytest.raises(HistoryError, match="file not found"):
        read_daily_csv(tmp_path / "nope.csv")
    with pytest.raises(HistoryError, match="is a directory"):
        read_daily_csv(tmp_path)
    (tmp_path / "b.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(HistoryError, match="not a text file|not a readable CSV"):
        read_daily_csv(tmp_path / "b.csv")


def test_a_bad_stretch_can_be_cut_away():
    # the shared difficulty file lacks 2025-11-13..15; a window before the gap reads
    with pytest.raises(HistoryError, match="3 missing day"):
        read_daily_csv(
            SHARED_DATA / "btc_difficulty_daily.csv", value_names=DIFFICULTY_NAMES, start=dt.date(2024, 1, 1)
        )
    s = read_daily_csv(
        SHARED_DATA / "btc_difficulty_daily.csv",
        value_names=DIFFICULTY_NAMES,
        start=dt.date(2024, 1, 1),
        end=dt.date(2025, 11, 12),
    )
    assert s.column == "difficulty" and s.values.size == 682
