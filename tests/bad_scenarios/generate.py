"""Write the corpus of bad scenarios: one file per case, each saying what kzsim must answer.

Run ``python tests/bad_scenarios/generate.py`` after changing the cases below; the test
(`tests/scenario/test_bad_corpus.py`) reads the files, not this script. The first line of every
file is ``# expect: KEY: WORDS``: the one-line message must name KEY and contain WORDS.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

BASE = """\
name: corpus-base
simulation:
  paths: 10
  horizon_days: 30
  seed: 1
  start_date: 2026-01-01
farm:
  fleet:
    - model: Antminer S21
      count: 100
      hashrate_th: 200
      efficiency_j_per_th: 17.5
  cooling_overhead_fraction: 0.1
market:
  btc_price_usd: 90000
  btc_volatility_per_year: 0.5
  network_hashrate_eh: 1000
  usd_kzt: 520
electricity:
  tariff_kzt_per_kwh: 25
  procurement_mode: day_ahead
  payment_failure_probability: 0.01
grid:
  outage_rate_per_year: 3
  outage_duration_hours: {dist: lognormal, median: 4, sigma: 1.0}
regulation:
  aifc_sale_share: 0.75
  profit_tax_rate: 0.2
"""


def edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


LAUGHS = "".join(f"{a}: &{a} [{', '.join([f'*{b}'] * 9)}]\n" for a, b in zip("bcdefgh", "abcdefg"))

# name: (expected key, expected words, text)
CASES: dict[str, tuple[str, str, str]] = {
    # YAML syntax
    "syntax-unclosed-bracket": ("line 7, column 13", "YAML syntax error", edit("  seed: 1", "  seed: [1")),
    "syntax-bad-indent": ("line", "YAML syntax error", edit("  seed: 1\n", "  seed: 1\n   bad: 2\n")),
    "syntax-tab-indent": ("line", "YAML syntax error", edit("  seed: 1\n", "\tseed: 1\n")),
    "syntax-unclosed-quote": ("line", "YAML syntax error", edit("name: corpus-base", 'name: "corpus-base')),
    "syntax-duplicate-colon": ("line", "YAML syntax error", edit("  seed: 1", "  seed: 1: 2")),
    # wrong types
    "type-text-for-int": ("simulation.horizon_days", "whole number", edit("horizon_days: 30", "horizon_days: thirty")),
    "type-float-for-int": ("simulation.paths", "whole number", edit("paths: 10", "paths: 10.5")),
    "type-text-for-param": (
        "market.btc_price_usd",
        "not a number",
        edit("btc_price_usd: 90000", "btc_price_usd: high"),
    ),
    "type-bool-for-param": ("market.btc_price_usd", "boolean", edit("btc_price_usd: 90000", "btc_price_usd: true")),
    "type-list-for-param": (
        "electricity.tariff_kzt_per_kwh",
        "not a number",
        edit("tariff_kzt_per_kwh: 25", "tariff_kzt_per_kwh: [25, 30]"),
    ),
    "type-section-is-a-number": (
        "grid",
        "not a section",
        edit(
            "grid:\n  outage_rate_per_year: 3\n  outage_duration_hours: {dist: lognormal, median: 4, sigma: 1.0}\n",
            "grid: 3\n",
        ),
    ),
    "type-fleet-not-a-list": (
        "farm.fleet",
        "not a list",
        edit(
            "  fleet:\n    - model: Antminer S21\n      count: 100\n      hashrate_th: 200\n      efficiency_j_per_th: 17.5\n",
            "  fleet: S21\n",
        ),
    ),
    "type-mode-not-allowed": (
        "electricity.procurement_mode",
        "not allowed",
        edit("procurement_mode: day_ahead", "procurement_mode: auction"),
    ),
    # unknown keys and misspellings
    "unknown-misspelt-tariff": (
        "electricity.tarif_kzt_per_kwh",
        "did you mean `tariff_kzt_per_kwh`",
        edit("  tariff_kzt_per_kwh:", "  tarif_kzt_per_kwh:"),
    ),
    "unknown-misspelt-section": ("regulatoin", "did you mean `regulation`", edit("regulation:", "regulatoin:")),
    "unknown-key-in-fleet": (
        "farm.fleet.0.hashrate",
        "did you mean `hashrate_th`",
        edit("      hashrate_th: 200", "      hashrate_th: 200\n      hashrate: 200"),
    ),
    "unknown-key-in-distribution": (
        "grid.outage_duration_hours",
        "median and sigma, or mean and sd",
        edit("median: 4, sigma: 1.0}", "median: 4, sigma: 1.0, sd: 2}"),
    ),
    "unknown-percent-unit": (
        "regulation.aifc_sale_percent",
        "unknown key",
        edit("  aifc_sale_share: 0.75", "  aifc_sale_share: 0.75\n  aifc_sale_percent: 75"),
    ),
    # missing sections and keys
    "missing-section-grid": (
        "grid",
        "required key is missing",
        edit(
            "grid:\n  outage_rate_per_year: 3\n  outage_duration_hours: {dist: lognormal, median: 4, sigma: 1.0}\n", ""
        ),
    ),
    "missing-key-seed": ("simulation.seed", "required key is missing", edit("  seed: 1\n", "")),
    "missing-fleet-count": ("farm.fleet.0.count", "required key is missing", edit("      count: 100\n", "")),
    "missing-name": ("name", "required key is missing", edit("name: corpus-base\n", "")),
    "empty-fleet": (
        "farm.fleet",
        "at least one item",
        edit(
            "  fleet:\n    - model: Antminer S21\n      count: 100\n      hashrate_th: 200\n      efficiency_j_per_th: 17.5\n",
            "  fleet: []\n",
        ),
    ),
    # durations and counts
    "negative-horizon": ("simulation.horizon_days", ">= 1", edit("horizon_days: 30", "horizon_days: -30")),
    "zero-horizon": ("simulation.horizon_days", ">= 1", edit("horizon_days: 30", "horizon_days: 0")),
    "zero-paths": ("simulation.paths", ">= 1", edit("paths: 10", "paths: 0")),
    "negative-restart-hours": (
        "farm.restart_hours",
        "out of range",
        edit("  cooling_overhead_fraction: 0.1", "  cooling_overhead_fraction: 0.1\n  restart_hours: -2"),
    ),
    "negative-outage-duration": (
        "grid.outage_duration_hours",
        "durations in [0, 87,600] hours",
        edit("{dist: lognormal, median: 4, sigma: 1.0}", "-4"),
    ),
    "zero-machines": ("farm.fleet.0.count", ">= 1", edit("count: 100", "count: 0")),
    # shares outside [0, 1]
    "share-above-one": ("regulation.aifc_sale_share", "[0, 1]", edit("aifc_sale_share: 0.75", "aifc_sale_share: 75")),
    "share-negative": ("regulation.profit_tax_rate", "[0, 1]", edit("profit_tax_rate: 0.2", "profit_tax_rate: -0.2")),
    "probability-above-one": (
        "electricity.payment_failure_probability",
        "[0, 1]",
        edit("payment_failure_probability: 0.01", "payment_failure_probability: 1.01"),
    ),
    "share-unbounded-normal": (
        "regulation.aifc_sale_share",
        "truncate",
        edit("aifc_sale_share: 0.75", "aifc_sale_share: {dist: normal, mean: 0.75, sd: 0.05}"),
    ),
    # impossible distribution parameters
    "dist-negative-sd": (
        "market.btc_price_usd.sd",
        "> 0",
        edit("btc_price_usd: 90000", "btc_price_usd: {dist: lognormal, mean: 90000, sd: -1}"),
    ),
    "dist-min-above-max": (
        "electricity.tariff_kzt_per_kwh",
        "low < high",
        edit("tariff_kzt_per_kwh: 25", "tariff_kzt_per_kwh: {dist: uniform, low: 30, high: 20}"),
    ),
    "dist-pert-mode-outside": (
        "electricity.tariff_kzt_per_kwh",
        "low <= mode <= high",
        edit("tariff_kzt_per_kwh: 25", "tariff_kzt_per_kwh: {dist: pert, low: 20, mode: 40, high: 30}"),
    ),
    "dist-unknown-name": (
        "electricity.tariff_kzt_per_kwh",
        "unknown distribution",
        edit("tariff_kzt_per_kwh: 25", "tariff_kzt_per_kwh: {dist: weibull, k: 2}"),
    ),
    "dist-no-dist-key": (
        "electricity.tariff_kzt_per_kwh",
        "needs a `dist` key",
        edit("tariff_kzt_per_kwh: 25", "tariff_kzt_per_kwh: {low: 20, high: 30}"),
    ),
    "dist-lognormal-half-pair": (
        "grid.outage_duration_hours",
        "median and sigma, or mean and sd",
        edit("median: 4, sigma: 1.0}", "median: 4, sd: 1.0}"),
    ),
    "dist-gamma-zero-shape": (
        "market.btc_volatility_per_year.shape",
        "> 0",
        edit("btc_volatility_per_year: 0.5", "btc_volatility_per_year: {dist: gamma, shape: 0, scale: 0.1}"),
    ),
    # NaN, infinity, huge numbers
    "nan-price": ("market.btc_price_usd", "finite", edit("btc_price_usd: 90000", "btc_price_usd: .nan")),
    "inf-price": ("market.btc_price_usd", "finite", edit("btc_price_usd: 90000", "btc_price_usd: .inf")),
    "overflowing-number": ("market.usd_kzt", "finite", edit("usd_kzt: 520", "usd_kzt: 1e400")),
    "huge-price": ("market.btc_price_usd", "out of range", edit("btc_price_usd: 90000", "btc_price_usd: 1e300")),
    "huge-paths": ("simulation.paths", "<= 100000000", edit("paths: 10", "paths: 99999999999999999999")),
    "huge-horizon": ("simulation.horizon_days", "<= 36500", edit("horizon_days: 30", "horizon_days: 1000000")),
    # dates
    "date-bad-month": ("simulation.start_date", "YYYY-MM-DD", edit("start_date: 2026-01-01", "start_date: 2026-13-01")),
    "date-wrong-format": (
        "simulation.start_date",
        "YYYY-MM-DD",
        edit("start_date: 2026-01-01", "start_date: 01/02/2026"),
    ),
    "date-before-bitcoin": ("simulation", "2009-01-03", edit("start_date: 2026-01-01", "start_date: 2001-01-01")),
    "date-past-last-subsidy": ("simulation", "2139-12-31", edit("start_date: 2026-01-01", "start_date: 2139-12-15")),
    "winter-month-13": (
        "simulation.winter_months",
        "1 to 12",
        edit("  seed: 1\n", "  seed: 1\n  winter_months: [12, 13]\n"),
    ),
    # brackets
    "brackets-not-from-zero": (
        "electricity.mining_fee_brackets",
        "min_price_kzt_per_kwh: 0",
        edit(
            "  procurement_mode: day_ahead",
            "  procurement_mode: day_ahead\n  mining_fee_brackets: [{min_price_kzt_per_kwh: 5, fee_kzt_per_kwh: 3}]",
        ),
    ),
    # files that are not scenarios
    "empty-file": ("", "file is empty", ""),
    "only-a-comment": ("", "file is empty", "# nothing here\n"),
    "top-level-list": ("", "top level is a list", "- name: x\n- name: y\n"),
    "top-level-text": ("", "top level is a str", "just some words\n"),
    # YAML that attacks the loader
    "billion-laughs": (
        "",
        "expand to over",
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + LAUGHS + "farm: {fleet: *h}\n",
    ),
    "python-object-tag": (
        "line 16, column 18",
        "tag is not allowed",
        edit("btc_price_usd: 90000", "btc_price_usd: !!python/object/apply:os.system ['echo pwned']"),
    ),
    "python-name-tag": (
        "line 2, column 7",
        "tag is not allowed",
        edit("name: corpus-base", "name: !!python/name:os.system"),
    ),
    "custom-tag": (
        "line 16, column 18",
        "tag is not allowed",
        edit("btc_price_usd: 90000", "btc_price_usd: !price 90000"),
    ),
    # market models and their data files
    "price-model-unknown": (
        "market.price_model",
        "is not allowed",
        edit("  btc_price_usd: 90000", "  btc_price_usd: 90000\n  price_model: heston"),
    ),
    "garch-section-missing": (
        "market.garch",
        "the section is missing",
        edit("  btc_price_usd: 90000", "  btc_price_usd: 90000\n  price_model: garch"),
    ),
    "garch-not-stationary": (
        "market.garch",
        "alpha + beta can reach 1.05",
        edit(
            "  btc_price_usd: 90000",
            "  btc_price_usd: 90000\n  price_model: garch\n"
            "  garch: {long_run_volatility_per_year: 0.5, alpha: 0.15, beta: 0.9}",
        ),
    ),
    "bootstrap-file-missing": (
        "market.bootstrap.returns_csv",
        "file not found",
        edit(
            "  btc_price_usd: 90000",
            "  btc_price_usd: 90000\n  price_model: bootstrap\n  bootstrap: {returns_csv: no-such-prices.csv}",
        ),
    ),
    "replay-without-files": (
        "market.replay",
        "no file given",
        edit("  btc_price_usd: 90000", "  btc_price_usd: 90000\n  replay: {}"),
    ),
    "fee-spike-extra-negative": (
        "market.fees_spike_extra",
        "values in [0, 1,000]",
        edit("  btc_price_usd: 90000", "  btc_price_usd: 90000\n  fees_spike_extra: {dist: normal, mean: 1, sd: 1}"),
    ),
    "dependence-unknown-parameter": (
        "dependence.rank_correlations.0.between",
        "is not a per-path parameter",
        BASE + "dependence:\n  rank_correlations:\n    - between: [market.btc_volatility, market.usd_kzt]\n"
        "      rank_correlation: 0.5\n",
    ),
    "dependence-impossible": (
        "dependence.rank_correlations",
        "cannot hold together",
        edit(
            "  btc_volatility_per_year: 0.5",
            "  btc_volatility_per_year: {dist: uniform, low: 0.4, high: 0.6}\n"
            "  btc_drift_per_year: {dist: normal, mean: 0, sd: 0.2}\n"
            "  hashrate_growth_per_year: {dist: normal, mean: 0.3, sd: 0.1}",
        )
        + "dependence:\n  rank_correlations:\n"
        "    - {between: [market.btc_volatility_per_year, market.btc_drift_per_year], rank_correlation: 0.9}\n"
        "    - {between: [market.btc_drift_per_year, market.hashrate_growth_per_year], rank_correlation: 0.9}\n"
        "    - {between: [market.btc_volatility_per_year, market.hashrate_growth_per_year], rank_correlation: -0.9}\n",
    ),
    # silent wrong answers: keys given twice, booleans for numbers, sizes that overflow
    "duplicate-key-top": (
        "line 3, column 1",
        "key `name` is given twice",
        edit("name: corpus-base", "name: a\nname: b"),
    ),
    "duplicate-key-nested": (
        "line 23, column 3",
        "key `tariff_kzt_per_kwh` is given twice (first on line 21)",
        edit("  procurement_mode: day_ahead", "  procurement_mode: day_ahead\n  tariff_kzt_per_kwh: 40"),
    ),
    "duplicate-key-in-flow": (
        "line 26, column 67",
        "key `median` is given twice",
        edit("median: 4, sigma: 1.0}", "median: 4, sigma: 1.0, median: 8}"),
    ),
    "bool-for-paths": ("simulation.paths", "is a boolean, not a number", edit("paths: 10", "paths: true")),
    "bool-for-float": (
        "farm.cooling_overhead_fraction",
        "boolean",
        edit("cooling_overhead_fraction: 0.1", "cooling_overhead_fraction: false"),
    ),
    "bool-in-distribution": (
        "grid.outage_duration_hours.median",
        "is a boolean, not a number",
        edit("median: 4, sigma: 1.0}", "median: true, sigma: 1.0}"),
    ),
    "bool-in-month-list": (
        "simulation.winter_months",
        "is a boolean",
        edit("  seed: 1", "  seed: 1\n  winter_months: [1, true]"),
    ),
    "tiny-exchange-rate": ("market.usd_kzt", "values in [1, 1e+06]", edit("usd_kzt: 520", "usd_kzt: 1e-300")),
    "tiny-price-in-distribution": (
        "market.btc_price_usd",
        "central 99.8 %",
        edit("btc_price_usd: 90000", "btc_price_usd: {dist: lognormal, median: 1e-200, sigma: 1}"),
    ),
    "drift-overflows-horizon": (
        "market.btc_drift_per_year",
        "can move by",
        edit("  horizon_days: 30", "  horizon_days: 36000").replace(
            "  btc_volatility_per_year: 0.5", "  btc_volatility_per_year: 0.5\n  btc_drift_per_year: 20"
        ),
    ),
    "octal-looking-seed-is-decimal": ("simulation.paths", "out of range", edit("paths: 10", "paths: 0000")),
    "deep-nesting": ("line", "nests over 64 levels", edit("name: corpus-base", "name: " + "[" * 70 + "]" * 70)),
    "dependence-correlation-above-one": (
        "dependence.rank_correlations.0.rank_correlation",
        "out of range",
        BASE + "dependence:\n  rank_correlations:\n    - between: [market.btc_price_usd, market.usd_kzt]\n"
        "      rank_correlation: 1.5\n",
    ),
}


def main() -> None:
    for old in HERE.glob("*.yaml"):
        old.unlink()
    for name, (key, words, text) in CASES.items():
        (HERE / f"{name}.yaml").write_text(f"# expect: {key}: {words}\n{text}" if text else "")
    (HERE / "binary-file.yaml").write_bytes(bytes(range(256)) * 4)
    (HERE / "EXPECTED.tsv").write_text(
        "file\tkey\twords\n"
        + "".join(f"{name}.yaml\t{key}\t{words}\n" for name, (key, words, _) in CASES.items())
        + "binary-file.yaml\t\tnot a text file\n"
    )


if __name__ == "__main__":
    main()
