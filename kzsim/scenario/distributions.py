"""Probability distributions for scenario parameters.

A scenario scalar is either a plain number or a mapping with a ``dist`` key, for
example ``{dist: pert, low: 18, mode: 22, high: 30}``. Each variant validates its own
parameters and gives a frozen :mod:`scipy.stats` distribution; values are drawn by
mapping uniforms through its ``ppf`` (inverse CDF), so plain Monte Carlo, Latin
hypercube or Sobol points and tornado percentiles all go through the same code.

A plain number ``x`` is stored as ``Fixed(value=x)`` and written back as ``x``.
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from scipy import special, stats


@functools.lru_cache(maxsize=4096)
def _frozen(dist: _Dist):
    """scipy's frozen distribution of ``dist``, built once (building one formats its
    docstring and inspects signatures: ~0.5 ms, once per block and parameter otherwise)."""
    return dist.frozen()


class _BetaQuantile:
    """Inverse CDF of Beta(a, b) for a, b >= 1 (PERT's shapes), ~15x faster than scipy's.

    scipy's ``beta.ppf`` (boost's ``ibeta_inv``) takes ~1.5 µs a value; a run draws five
    PERT parameters a path, which made them the largest cost after the normal shocks.
    Here, between probabilities ``TAIL`` and ``1 - TAIL``, a quintic Hermite interpolant
    through scipy's inverse at ``NODES + 1`` evenly spaced probabilities, with its exact
    first and second derivatives (dx/du = 1/pdf, d2x/du2 = -pdf'/pdf^3), gives the value
    to within a few units of 2^-52 (measured against scipy on 10^5 uniforms for PERT
    shapes with lambda from 0.5 to 20: at most 7 eps; the tests hold it to 8 eps). In the tails,
    where the inverse's derivatives grow without bound, scipy's inverse is used as is.
    """

    NODES = 4096
    TAIL = 0.02

    def __init__(self, a: float, b: float):
        self.a, self.b = a, b
        u = np.linspace(0.0, 1.0, self.NODES + 1)
        x = special.betaincinv(a, b, u)
        with np.errstate(divide="ignore", invalid="ignore"):  # the end nodes are never used
            pdf = np.exp((a - 1.0) * np.log(x) + (b - 1.0) * np.log1p(-x) - special.betaln(a, b))
            slope = 1.0 / pdf
            curvature = -((a - 1.0) / x - (b - 1.0) / (1.0 - x)) / (pdf * pdf)
        h = 1.0 / self.NODES
        ends = ~(np.isfinite(slope) & np.isfinite(curvature))  # x = 0 or 1: in the tails, never interpolated
        slope[ends], curvature[ends] = 0.0, 0.0
        self.x, self.slope_h, self.curvature_h2 = x, slope * h, curvature * (h * h)

    def __call__(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        position = u * self.NODES
        i = np.clip(position.astype(np.int64), 0, self.NODES - 1)
        s = position - i
        s2 = s * s
        s3 = s2 * s
        s4 = s3 * s
        s5 = s4 * s
        x0, x1 = self.x[i], self.x[i + 1]
        x = (
            (1.0 - 10.0 * s3 + 15.0 * s4 - 6.0 * s5) * x0
            + (s - 6.0 * s3 + 8.0 * s4 - 3.0 * s5) * self.slope_h[i]
            + (0.5 * s2 - 1.5 * s3 + 1.5 * s4 - 0.5 * s5) * self.curvature_h2[i]
            + (0.5 * s3 - s4 + 0.5 * s5) * self.curvature_h2[i + 1]
            + (-4.0 * s3 + 7.0 * s4 - 3.0 * s5) * self.slope_h[i + 1]
            + (10.0 * s3 - 15.0 * s4 + 6.0 * s5) * x1
        )
        tail = (u < self.TAIL) | (u > 1.0 - self.TAIL) | ~np.isfinite(u)
        if tail.any():
            x[tail] = special.betaincinv(self.a, self.b, u[tail])
        return x


@functools.lru_cache(maxsize=256)
def _beta_quantile(a: float, b: float) -> _BetaQuantile:
    """The table of Beta(a, b), built once (~6 ms)."""
    return _BetaQuantile(a, b)


def _beta_ppf(dist: _Dist, a: float, b: float, low: float, scale: float, u: np.ndarray) -> np.ndarray:
    """Values of ``dist``, Beta(a, b) on [low, low + scale], for uniforms ``u`` (scipy's order:
    x * scale + low); scipy's own inverse when a density is unbounded at an end (a or b < 1)."""
    if a < 1.0 or b < 1.0:
        return np.asarray(_frozen(dist).ppf(u), dtype=np.float64)
    return _beta_quantile(a, b)(u) * scale + low


def _is_numeric(annotation) -> bool:
    """Whether a field's type takes numbers and not booleans (int, float, optional or in a tuple)."""
    import typing

    if annotation in (int, float):
        return True
    args = typing.get_args(annotation)
    return bool(args) and bool not in args and any(_is_numeric(a) for a in args if a is not type(None))


def refuse_booleans(model: type[BaseModel], data):
    """``data`` as given, unless a key whose type is a number holds a boolean (``paths: true``):
    pydantic would read it as 1, a silent wrong answer."""
    if not isinstance(data, dict):
        return data
    fields = {(info.alias or name): info for name, info in model.model_fields.items()}
    fields.update(model.model_fields)
    for key, value in data.items():
        info = fields.get(key) if isinstance(key, str) else None
        if info is None or not _is_numeric(info.annotation):
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(item, bool) for item in items):
            raise ValueError(f"@{key}: {str(value).lower()} is a boolean, not a number (allowed: a number)")
    return data


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans(cls, data):
        return refuse_booleans(cls, data)

    def frozen(self):  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def support(self) -> tuple[float, float]:  # pragma: no cover - every subclass overrides
        """Smallest interval that holds every value the distribution can give (exact, from
        the parameters: scipy's loc + a * scale can round a bound outside them)."""
        raise NotImplementedError

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Values for uniforms ``u`` in (0, 1) (inverse CDF)."""
        return np.asarray(_frozen(self).ppf(u), dtype=np.float64)

    def mean(self) -> float:
        return float(_frozen(self).mean())

    @property
    def is_fixed(self) -> bool:
        return False


class Fixed(_Dist):
    """A constant (what a plain number in the YAML becomes)."""

    dist: Literal["fixed"] = "fixed"
    value: float = Field(allow_inf_nan=False)

    def frozen(self):
        return stats.uniform(loc=self.value, scale=0.0)

    def support(self) -> tuple[float, float]:
        return self.value, self.value

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return np.full(np.shape(u), self.value, dtype=np.float64)

    def mean(self) -> float:
        return self.value

    @property
    def is_fixed(self) -> bool:
        return True


class _Interval(_Dist):
    """Shared check and support of the distributions on [low, high] (uniform, beta)."""

    @model_validator(mode="after")
    def _order(self):
        if not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) is not below high ({self.high:g}) (allowed: low < high)")
        return self

    def support(self) -> tuple[float, float]:
        return self.low, self.high


class Uniform(_Interval):
    """Uniform on [low, high]."""

    dist: Literal["uniform"]
    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)

    def frozen(self):
        return stats.uniform(loc=self.low, scale=self.high - self.low)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        # scipy's arithmetic (u * scale + loc, NaN outside [0, 1]) without its ~0.1 ms of argument checks a call
        u = np.asarray(u, dtype=np.float64)
        return np.where((u >= 0.0) & (u <= 1.0), u * (self.high - self.low) + self.low, np.nan)


class Normal(_Dist):
    """Normal with ``mean`` and ``sd``, optionally truncated to [low, high]."""

    dist: Literal["normal"]
    mean_: float = Field(alias="mean", allow_inf_nan=False)
    sd: float = Field(gt=0, allow_inf_nan=False)
    low: float | None = Field(default=None, allow_inf_nan=False)
    high: float | None = Field(default=None, allow_inf_nan=False)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _order(self):
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) is not below high ({self.high:g}) (allowed: low < high)")
        return self

    def support(self) -> tuple[float, float]:
        return (-math.inf if self.low is None else self.low, math.inf if self.high is None else self.high)

    def frozen(self):
        if self.low is None and self.high is None:
            return stats.norm(loc=self.mean_, scale=self.sd)
        a = -math.inf if self.low is None else (self.low - self.mean_) / self.sd
        b = math.inf if self.high is None else (self.high - self.mean_) / self.sd
        return stats.truncnorm(a, b, loc=self.mean_, scale=self.sd)


class Lognormal(_Dist):
    """Lognormal, given by ``median`` and ``sigma`` (sd of the log) or by ``mean`` and ``sd``."""

    dist: Literal["lognormal"]
    median: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    sigma: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    mean_: float | None = Field(default=None, alias="mean", gt=0, allow_inf_nan=False)
    sd: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_pair(self):
        by_median = self.median is not None or self.sigma is not None
        by_mean = self.mean_ is not None or self.sd is not None
        if (
            by_median == by_mean
            or (by_median and (self.median is None or self.sigma is None))
            or (by_mean and (self.mean_ is None or self.sd is None))
        ):
            raise ValueError("give one pair of parameters (allowed: median and sigma, or mean and sd)")
        return self

    def log_params(self) -> tuple[float, float]:
        """(mu, sigma) of the underlying normal."""
        if self.median is not None:
            return math.log(self.median), float(self.sigma)
        s2 = math.log1p((self.sd / self.mean_) ** 2)
        return math.log(self.mean_) - s2 / 2, math.sqrt(s2)

    def support(self) -> tuple[float, float]:
        return 0.0, math.inf

    def frozen(self):
        mu, sigma = self.log_params()
        return stats.lognorm(s=sigma, scale=math.exp(mu))


class _LowModeHigh(_Dist):
    """Shared fields of the three-point distributions (triangular, PERT)."""

    low: float = Field(allow_inf_nan=False)
    mode: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)

    def support(self) -> tuple[float, float]:
        return self.low, self.high

    @model_validator(mode="after")
    def _order(self):
        if not (self.low <= self.mode <= self.high and self.low < self.high):
            raise ValueError(
                f"low {self.low:g}, mode {self.mode:g}, high {self.high:g} are out of order "
                "(allowed: low <= mode <= high, low < high)"
            )
        return self


class Triangular(_LowModeHigh):
    """Triangular on [low, high] with its peak at ``mode``."""

    dist: Literal["triangular"]

    def frozen(self):
        scale = self.high - self.low
        return stats.triang(c=(self.mode - self.low) / scale, loc=self.low, scale=scale)


class Pert(_LowModeHigh):
    """PERT (a beta on [low, high] with most likely value ``mode``; ``lambda`` = 4 by default)."""

    dist: Literal["pert"]
    lambda_: float = Field(default=4.0, alias="lambda", gt=0, allow_inf_nan=False)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def shape(self) -> tuple[float, float]:
        """Beta shapes (a, b) = (1 + lambda (mode - low) / (high - low), 1 + lambda (high - mode) / (high - low))."""
        scale = self.high - self.low
        return 1 + self.lambda_ * (self.mode - self.low) / scale, 1 + self.lambda_ * (self.high - self.mode) / scale

    def frozen(self):
        a, b = self.shape()
        return stats.beta(a, b, loc=self.low, scale=self.high - self.low)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return _beta_ppf(self, *self.shape(), self.low, self.high - self.low, u)


class Beta(_Interval):
    """Beta(a, b), scaled to [low, high] (default [0, 1])."""

    dist: Literal["beta"]
    a: float = Field(gt=0, allow_inf_nan=False)
    b: float = Field(gt=0, allow_inf_nan=False)
    low: float = Field(default=0.0, allow_inf_nan=False)
    high: float = Field(default=1.0, allow_inf_nan=False)

    def frozen(self):
        return stats.beta(self.a, self.b, loc=self.low, scale=self.high - self.low)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return _beta_ppf(self, self.a, self.b, self.low, self.high - self.low, u)


class Gamma(_Dist):
    """Gamma with ``shape`` and ``scale`` (mean = shape * scale), shifted by ``low``."""

    dist: Literal["gamma"]
    shape: float = Field(gt=0, allow_inf_nan=False)
    scale: float = Field(gt=0, allow_inf_nan=False)
    low: float = Field(default=0.0, allow_inf_nan=False)

    def support(self) -> tuple[float, float]:
        return self.low, math.inf

    def frozen(self):
        return stats.gamma(self.shape, loc=self.low, scale=self.scale)


Distribution = Annotated[
    Fixed | Uniform | Normal | Lognormal | Triangular | Pert | Beta | Gamma,
    Field(discriminator="dist"),
]
DIST_CLASSES = {
    "fixed": Fixed,
    "uniform": Uniform,
    "normal": Normal,
    "lognormal": Lognormal,
    "triangular": Triangular,
    "pert": Pert,
    "beta": Beta,
    "gamma": Gamma,
}
DIST_NAMES = tuple(DIST_CLASSES)


def _coerce(value: Any) -> Any:
    """Numbers become ``Fixed``; mappings go on to the discriminated union."""
    if isinstance(value, bool):
        raise ValueError(f"{value} is a boolean (allowed: a number or a distribution mapping)")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number (allowed: a finite number or a distribution)")
        return {"dist": "fixed", "value": float(value)}
    if isinstance(value, dict):
        if "dist" not in value:
            raise ValueError("a distribution needs a `dist` key (allowed: " + ", ".join(DIST_NAMES) + ")")
        return value
    if isinstance(value, _Dist):
        return value
    raise ValueError(
        f"{value!r} is not a number (allowed: a number, or a distribution such as {{dist: uniform, low: 1, high: 2}})"
    )


def _serialize(value: _Dist) -> Any:
    if isinstance(value, Fixed):
        return value.value
    data = value.model_dump(by_alias=True, exclude_none=True)
    return {"dist": data.pop("dist"), **data}


class Bounds:
    """Allowed range of a parameter, checked against the support of its distribution.

    ``low``/``high`` are hard limits (a share in [0, 1], a positive price): every value a
    distribution can give must respect them. ``cap`` is a sanity limit on the size of a
    value (|x| <= cap): it applies to constants and to the finite ends of a support, so a
    lognormal price or a normal drift keeps its infinite tail.
    """

    def __init__(
        self,
        low: float = -math.inf,
        high: float = math.inf,
        *,
        open_low: bool = False,
        cap: float = math.inf,
        floor: float = 0.0,
        what: str = "",
    ):
        self.low, self.high, self.open_low, self.cap, self.what = low, high, open_low, cap, what
        self.floor = floor  # a positive quantity's least size (the arithmetic stays finite)

    def allowed(self) -> str:
        if self.what:
            return self.what
        low, high = max(self.low, -self.cap), min(self.high, self.cap)
        if self.floor > 0:
            return f"values in [{self.floor:g}, {high:g}]"
        if high == math.inf:
            return f"values {'>' if self.open_low else '>='} {low:g}"
        if low == -math.inf:
            return f"values <= {high:g}"
        if self.open_low:
            return f"values in ({low:g}, {high:g}]"
        return f"values in [{low:g}, {high:g}]"

    def __call__(self, value: _Dist) -> _Dist:
        low, high = value.support()
        too_low = low < self.low or (self.open_low and value.is_fixed and low <= self.low)
        too_big = any(math.isfinite(end) and abs(end) > self.cap for end in (low, high))
        if value.is_fixed and (too_low or high > self.high or too_big):
            raise ValueError(f"{value.value:g} is out of range (allowed: {self.allowed()})")
        if too_low or high > self.high:
            fix = (
                "truncate it with low/high or pick a bounded distribution"
                if "low" in type(value).model_fields
                else "pick a bounded distribution (uniform, triangular, pert, beta) or a normal truncated with low/high"
            )
            raise ValueError(
                f"the {value.dist} distribution can give values in [{low:g}, {high:g}], "
                f"outside the allowed range (allowed: {self.allowed()}; {fix})"
            )
        if too_big:
            raise ValueError(f"the {value.dist} distribution reaches [{low:g}, {high:g}] (allowed: {self.allowed()})")
        if value.is_fixed:
            if self.floor > 0 and abs(value.value) < self.floor:
                raise ValueError(f"{value.value:g} is out of range (allowed: {self.allowed()})")
            return value
        if self.floor > 0 or not (math.isfinite(low) and math.isfinite(high)):
            # a tail that is unbounded (or may come near 0) keeps its draws finite: its central
            # 99.8 % must lie within the sizes allowed
            q_low, q_high = (float(q) for q in value.ppf(np.array([CENTRAL_TAIL, 1 - CENTRAL_TAIL])))
            if max(abs(q_low), abs(q_high)) > self.cap or min(abs(q_low), abs(q_high)) < self.floor:
                raise ValueError(
                    f"the {value.dist} distribution's central 99.8 % is [{q_low:g}, {q_high:g}] "
                    f"(allowed: {self.allowed()})"
                )
        return value


CENTRAL_TAIL = 0.001


def param(
    low: float = -math.inf,
    high: float = math.inf,
    *,
    open_low: bool = False,
    cap: float = math.inf,
    floor: float = 0.0,
    what: str = "",
):
    """Type of a scenario scalar: a number or a distribution, within [low, high], |x| <= cap,
    and |x| >= floor for a positive quantity that divides (a price, an exchange rate)."""
    return Annotated[
        Distribution,
        BeforeValidator(_coerce, json_schema_input_type=Union[float, Distribution]),
        AfterValidator(Bounds(low, high, open_low=open_low or floor > 0, cap=cap, floor=floor, what=what)),
        PlainSerializer(_serialize),
    ]


def event_distribution(
    low: float = 0.0,
    what: str = "durations in [0, 87,600] hours (10 years)",
    high: float = math.inf,
    cap: float = 87_600.0,
):
    """Type of a per-event distribution (drawn once per event, not per path), with support in
    [``low``, ``high``] and sizes up to ``cap`` (a constant, or an unbounded tail's central 99.8 %)."""
    return Annotated[
        Distribution,
        BeforeValidator(_coerce, json_schema_input_type=Union[float, Distribution]),
        AfterValidator(Bounds(low, high, cap=cap, what=what)),
        PlainSerializer(_serialize),
    ]
