"""Shared fixtures: small scenarios built in code, and the repository paths."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from kzsim.scenario.overrides import apply_overrides
from kzsim.scenario.schema import scenario_from_dict

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
SHARED_DATA = ROOT.parent / "shared" / "data"

# A farm with no uncertainty at all: every result can be computed by hand.
EXACT = {
    "name": "exact",
    "description": "no uncertainty: hand-computable",
    "simulation": {"paths": 3, "horizon_days": 10, "seed": 1, "start_date": "2026-06-01"},
    "farm": {
        "fleet": [{"model": "X", "count": 100, "hashrate_th": 200, "efficiency_j_per_th": 20, "unit_price_usd": 3000}],
        "cooling_overhead_fraction": 0.1,
        "hardware_availability_fraction": 1.0,
        "restart_hours": 0,
        "pool_fee_share": 0.02,
        "fixed_opex_usd_per_month": 30000,
        "site_capex_usd": 0,
        "depreciation_years": 3,
        "discount_rate_per_year": 0.0,
    },
    "market": {
        "btc_price_usd": 100000,
        "btc_drift_per_year": 0.0,
        "btc_volatility_per_year": 0.0,
        "network_hashrate_eh": 1000,
        "start_block_height": 900000,
        "hashrate_growth_per_year": 0.0,
        "hashrate_volatility_per_year": 0.0,
        "fees_btc_per_block": 0.05,
        "fees_log_volatility": 0.0,
        "usd_kzt": 500,
        "kzt_devaluation_per_year": 0.0,
        "kzt_volatility_per_year": 0.0,
        "exchange_fee_share": 0.001,
    },
    "electricity": {
        "tariff_kzt_per_kwh": 25,
        "procurement_mode": "lots",
        "lot_size_mwh": 1.0,
        "lot_fee_kzt": 500,
        "lot_admin_cost_kzt": 300,
        "payment_failure_probability": 0.0,
    },
    "grid": {"outage_rate_per_year": 0, "outage_duration_hours": 1},
    "regulation": {
        "aifc_sale_share": 0.75,
        "aifc_spread_share": 0.005,
        "aifc_fee_share": 0.001,
        "aifc_settlement_lag_days": 2,
        "treasury_policy": "sell",
        "profit_tax_rate": 0.2,
        "compliance_fixed_usd_per_year": 36500,
        "compliance_opex_share": 0.1,
    },
}


def make_scenario(base: dict | None = None, **overrides):
    """A validated scenario from ``base`` (default: EXACT) with dotted-key overrides."""
    data = copy.deepcopy(EXACT if base is None else base)
    return scenario_from_dict(apply_overrides(data, overrides, source="<test>"), source="<test>")


@pytest.fixture
def exact():
    return make_scenario()


def noted_as_giving_memory_back():
    """What a run on Dask's own workers (no kzsim.engine.allocator preload) says on Linux:
    a :class:`kzsim.engine.cluster.WorkerMemoryWarning`; elsewhere nothing."""
    import contextlib
    import sys

    from kzsim.engine.cluster import WorkerMemoryWarning

    if not sys.platform.startswith("linux"):
        return contextlib.nullcontext()
    return pytest.warns(WorkerMemoryWarning, match="the memory (they free|it frees) back to the system")


def assert_same_draws(expected, actual) -> None:
    """Every draw present in ``expected`` (a :class:`kzsim.model.paths.Draws`) is bit-identical in ``actual``."""
    import numpy as np

    for name, value in expected.__dict__.items():
        if value is not None:
            np.testing.assert_array_equal(value, getattr(actual, name), err_msg=name)


def assert_words_in_place(fig, where: str = "page") -> None:
    """Every page-level text of ``fig`` (title, caption, reading, table cell) lies inside
    the page, clear of the other texts and of the axes with their labels."""
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    words = [(t.get_text()[:40], t.get_window_extent(renderer)) for t in fig.texts if t.get_text().strip()]
    plots = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]
    for i, (text, box) in enumerate(words):
        assert page.x0 <= box.x0 and box.x1 <= page.x1, f"{where}: {text!r} runs off the side"
        assert page.y0 <= box.y0 and box.y1 <= page.y1, f"{where}: {text!r} runs off the page"
        for other, other_box in words[i + 1 :]:
            assert not box.overlaps(other_box), f"{where}: {text!r} overlaps {other!r}"
        for plot in plots:
            assert not box.overlaps(plot), f"{where}: {text!r} overlaps a plot"


def assert_standard_font_text(figure, where: str) -> None:
    """Every text of a report page has its characters in the PDF standard fonts' encoding
    (Windows-1252): the report draws in them (kzsim.report.figures.STYLE), and matplotlib
    would print "?" for another character."""
    from matplotlib.text import Text

    for text in figure.findobj(Text):
        content = text.get_text()
        try:
            content.encode("cp1252")
        except UnicodeEncodeError:
            bad = sorted({c for c in content if not c.encode("cp1252", "ignore")})
            raise AssertionError(f"{where}: {content[:60]!r} holds {bad}, not in the standard fonts") from None


@pytest.fixture(autouse=True)
def _pdf_pages_keep_their_words_in_place(monkeypatch):
    """Every page any test writes into a PDF report is checked by :func:`assert_words_in_place`."""
    from matplotlib.backends.backend_pdf import PdfPages

    save = PdfPages.savefig

    def checked_savefig(self, figure=None, **kwargs):
        if figure is not None and not isinstance(figure, int):
            title = figure.texts[0].get_text() if figure.texts else ""
            assert_words_in_place(figure, f"PDF page {self.get_pagecount() + 1} ({title!r})")
            assert_standard_font_text(figure, f"PDF page {self.get_pagecount() + 1} ({title!r})")
        return save(self, figure, **kwargs)

    monkeypatch.setattr(PdfPages, "savefig", checked_savefig)


@pytest.fixture(autouse=True)
def _each_test_is_a_new_command():
    """An interruption a test raised in this process is not remembered by the next one (a
    command remembers the first it receives: kzsim.engine.concurrency.raise_if_interrupted)."""
    import kzsim.engine.concurrency as concurrency

    concurrency._received = None
    yield
    concurrency._received = None


@pytest.fixture
def recorded_bars(monkeypatch) -> list:
    """The CLI's progress bars, drawn as on a terminal (into memory) and kept for the test:
    the list fills with each bar a command opens."""
    import io

    from rich.console import Console

    import kzsim.cli.common

    bars = []

    class Recorded(kzsim.cli.common.progress_bar):
        def __init__(self, quiet, total, days, console=None):
            super().__init__(quiet, total, days, console=Console(file=io.StringIO(), force_terminal=True))
            bars.append(self)

    monkeypatch.setattr(kzsim.cli.common, "progress_bar", Recorded)
    return bars
