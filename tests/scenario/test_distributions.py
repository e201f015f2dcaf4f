"""Scenario distributions: parameters, support checks, and round trips through YAML."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from pydantic import TypeAdapter

from kzsim.scenario.distributions import Distribution, Fixed, Lognormal, Normal, Pert, param
from kzsim.scenario.errors import ScenarioError
from tests.conftest import make_scenario

ADAPTER = TypeAdapter(Distribution)
U = np.linspace(0.001, 0.999, 999)


def test_lognormal_by_mean_and_sd_has_that_mean_and_sd():
    d = Lognormal(dist="lognormal", mean=10.0, sd=3.0)
    f = d.frozen()
    assert_allclose([f.mean(), f.std()], [10.0, 3.0], rtol=1e-12)
    assert_allclose(Lognormal(dist="lognormal", median=4.0, sigma=1.0).frozen().median(), 4.0, rtol=1e-12)


def test_pert_mean_is_the_classic_formula():
    d = Pert(dist="pert", low=20, mode=25, high=35)
    assert_allclose(d.mean(), (20 + 4 * 25 + 35) / 6, rtol=1e-12)
    assert d.support() == (20.0, 35.0)


def test_truncated_normal_stays_inside_its_bounds():
    d = Normal(dist="normal", mean=0.75, sd=0.2, low=0.0, high=1.0)
    x = d.ppf(U)
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.all(np.diff(x) > 0)  # a ppf is increasing


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "uniform", "low": 1, "high": 2},
        {"dist": "normal", "mean": 0, "sd": 1},
        {"dist": "lognormal", "median": 3, "sigma": 0.5},
        {"dist": "triangular", "low": 0, "mode": 1, "high": 4},
        {"dist": "pert", "low": 0, "mode": 1, "high": 4, "lambda": 6},
        {"dist": "beta", "a": 2, "b": 5, "low": 10, "high": 20},
        {"dist": "beta", "a": 0.5, "b": 3},  # unbounded density at 0: scipy's inverse itself
        {"dist": "gamma", "shape": 2, "scale": 3},
    ],
)
def test_ppf_is_scipys_and_increasing(spec):
    d = ADAPTER.validate_python(spec)
    x = d.ppf(U)
    low, high = d.support()
    # beta-based shapes interpolate scipy's inverse (within 8 eps of the range); the others are scipy's own
    tolerance = 8 * np.spacing(1.0) * (high - low) if spec["dist"] in ("pert", "beta") else 0.0
    assert_allclose(x, d.frozen().ppf(U), rtol=0, atol=tolerance)
    assert np.all(np.diff(x) >= 0)
    assert d.dist == spec["dist"]


@pytest.mark.parametrize("lambda_", [0.5, 4.0, 20.0])
def test_pert_quantiles_are_scipys_to_a_few_eps_for_any_shape(lambda_):
    """The interpolated inverse against scipy's, on 10^5 uniforms, for modes across the range
    (shapes a, b from 1 to 1 + lambda); the tails are scipy's own, bit for bit."""
    u = np.random.default_rng(7).random(100_000)
    for mode in (0.0, 0.01, 0.2, 0.5, 0.77, 0.99, 1.0):
        d = Pert(dist="pert", low=0.0, mode=mode, high=1.0, **{"lambda": lambda_})
        x, exact = d.ppf(u), d.frozen().ppf(u)
        assert np.max(np.abs(x - exact)) <= 8 * np.spacing(1.0), (lambda_, mode)
        tail = (u < 0.02) | (u > 0.98)
        assert np.array_equal(x[tail], exact[tail])
        assert x.min() >= 0.0 and x.max() <= 1.0


def test_a_number_is_a_fixed_distribution_and_is_written_back_as_a_number():
    sc = make_scenario(**{"electricity.tariff_kzt_per_kwh": {"dist": "pert", "low": 20, "mode": 25, "high": 35}})
    assert isinstance(sc.market.btc_price_usd, Fixed) and sc.market.btc_price_usd.value == 100000
    data = sc.to_dict()
    assert data["market"]["btc_price_usd"] == 100000
    assert data["electricity"]["tariff_kzt_per_kwh"] == {
        "dist": "pert",
        "low": 20,
        "mode": 25,
        "high": 35,
        "lambda": 4.0,
    }
    assert make_scenario(data) == sc


def test_bounds_are_checked_against_the_support():
    from pydantic import BaseModel

    class M(BaseModel):
        x: param(0.0, 1.0)

    M(x={"dist": "beta", "a": 2, "b": 2})
    with pytest.raises(ValueError, match="truncate"):
        M(x={"dist": "normal", "mean": 0.5, "sd": 0.1})
    with pytest.raises(ValueError, match="out of range"):
        M(x=1.5)


def test_positive_parameters_refuse_zero_and_sizes_that_overflow():
    with pytest.raises(ScenarioError, match="out of range"):
        make_scenario(**{"market.btc_price_usd": 0})
    assert make_scenario(**{"market.btc_price_usd": 0.01}).market.btc_price_usd.value == 0.01
    # a divisor so small that the costs in USD overflow (usd_kzt: 1e-300 gave NaN with exit 0)
    for key, value in (
        ("market.usd_kzt", 1e-300),
        ("market.btc_price_usd", 1e-6),
        ("market.network_hashrate_eh", 1e-300),
    ):
        with pytest.raises(ScenarioError, match=r"out of range \(allowed: values in \["):
            make_scenario(**{key: value})
    # an unbounded distribution is held to the same sizes by its central 99.8 %
    with pytest.raises(ScenarioError, match="central 99.8 %"):
        make_scenario(**{"market.usd_kzt": {"dist": "lognormal", "median": 1e-250, "sigma": 0.1}})
    with pytest.raises(ScenarioError, match="central 99.8 %"):
        make_scenario(**{"market.btc_price_usd": {"dist": "lognormal", "median": 1e12, "sigma": 0.1}})
    assert make_scenario(**{"market.usd_kzt": {"dist": "lognormal", "median": 500, "sigma": 0.2}})
