"""What yield per rai is plausible for a crop in a district and season, learned from the ledger's own records.

Yields are compared on a log scale: they are multiplicative (a good district gives ×1.15, a drought ×0.6, a
farmer's skill ×1.1), their spread grows with their level, and log-normal is how agronomists model them.

Per group (crop, district, season) the typical log-yield is the **median** of the group's records, and the
spread within groups is the **MAD** (median absolute deviation × 1.4826) of every record's distance from its
group's median, pooled over the crop: the very records we test may include laundered ones, and the median
and MAD ignore anything under half of a group, where a mean and a standard deviation are dragged by one big
lie. (A group's own MAD from a few dozen records was tried and rejected on the tuning seeds of
``trace risk-bench``: noisy, and inflated by the outliers it should expose.)

A group with few records cannot be trusted alone, so its median is **shrunk** by empirical Bayes, the
normal–normal model: group levels are drawn around a crop-wide centre with a between-group spread τ
(estimated from the crop's groups by the method of moments, floored). The crop-wide centre is itself the
median of the group medians shrunk toward the crop's prior from ``domain.crops`` (the prior counting as
:data:`PRIOR_GROUPS` groups), so with no history at all everything falls back to the published typical yield.
The group median carries sampling variance (π/2)·σ²/n, so the data's weight is
``w = τ² / (τ² + (π/2)·σ²/n)``: 0 with no records (the centre alone), about a quarter with one record, near 1
with many. The spread for a new lot is σ plus the remaining uncertainty of its group's level. A lot is
tested against its group *without itself* (leave one out), so no record vouches for itself.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

MAD_TO_SD = 1.4826
MEDIAN_VARIANCE = math.pi / 2  # variance of a normal sample's median ≈ (π/2)·σ²/n
PRIOR_GROUPS = 1.0  # how many groups' worth of evidence the published typical yield counts as
TAU_FLOOR = 0.08  # districts and seasons differ at least this much (log scale, ≈ ±8 %)
SIGMA_FLOOR = 0.08  # no group of farms is more alike than this: weighing and data-entry noise
MAX_99_Z = 2.326  # the crop's "maximum" is read as its 99th percentile


@dataclass(frozen=True)
class Prior:
    """The crop's prior on a log scale: centre ln(typical), spread from how far the maximum is."""

    mu: float
    sigma: float

    @classmethod
    def of(cls, typical: float, maximum: float) -> Prior:
        return cls(math.log(typical), max(SIGMA_FLOOR, math.log(maximum / typical) / MAX_99_Z))


@dataclass(frozen=True)
class Expectation:
    """What a lot's log-yield is expected to be: level, spread, how many records stood behind it, the weight
    those records carried against the prior."""

    level: float  # log kg/rai
    spread: float
    records: int
    weight: float

    def z(self, log_yield: float) -> float:
        return (log_yield - self.level) / self.spread

    @property
    def kg_per_rai(self) -> float:
        return math.exp(self.level)


def robust_scale(values: Sequence[float]) -> float | None:
    """MAD × 1.4826 (the σ of a normal sample), None with fewer than three values."""
    if len(values) < 3:
        return None
    m = statistics.median(values)
    return MAD_TO_SD * statistics.median(abs(v - m) for v in values)


@dataclass(frozen=True)
class CropModel:
    """Everything learned for one crop: the crop-wide centre, the spread between groups (τ) and within (σ)."""

    prior: Prior
    centre: float
    tau: float
    sigma: float


def shrink(values: Sequence[float], model: CropModel) -> Expectation:
    """The expected log-yield of a new record of a group whose other records are ``values``."""
    return shrink_median(len(values), statistics.median(values) if values else 0.0, model)


def shrink_median(n: int, median: float, model: CropModel) -> Expectation:
    """:func:`shrink` of ``n`` records whose median is ``median``: all it reads of them."""
    tau, sigma = model.tau, model.sigma
    if n == 0:
        return Expectation(model.centre, math.sqrt(sigma**2 + tau**2), 0, 0.0)
    sampling = MEDIAN_VARIANCE * sigma**2 / n
    weight = tau**2 / (tau**2 + sampling)
    level = weight * median + (1 - weight) * model.centre
    level_variance = 1 / (1 / tau**2 + 1 / sampling)
    return Expectation(level, math.sqrt(sigma**2 + level_variance), n, weight)


def learn(groups: Mapping[Hashable, Sequence[float]], prior: Prior) -> CropModel:
    """The crop's centre, τ and σ from its log-yields grouped by district and season.

    σ: the robust scale of every record's distance from its group's median (groups of ≥ 3), or the prior's σ.
    τ: the variance of the group medians less their sampling variance (method of moments), floored; with
    fewer than three groups of ≥ 3 records, the prior's σ (how far farms may differ is then all we know).
    Centre: the median of the group medians, shrunk toward the prior as if the prior were one more group."""
    residuals = [v - statistics.median(vs) for vs in groups.values() if len(vs) >= 3 for v in vs]
    pooled = robust_scale(residuals) if len(residuals) >= 10 else None
    sigma = max(SIGMA_FLOOR, pooled if pooled is not None else prior.sigma)
    medians = [(statistics.median(vs), len(vs)) for vs in groups.values() if len(vs) >= 3]
    if len(medians) >= 3:
        spread = statistics.pvariance([m for m, _ in medians])
        sampling = statistics.fmean(MEDIAN_VARIANCE * sigma**2 / n for _, n in medians)
        tau = math.sqrt(max(TAU_FLOOR**2, spread - sampling))
    else:
        tau = max(TAU_FLOOR, prior.sigma)
    if medians:
        g = len(medians)
        centre = (g * statistics.median(m for m, _ in medians) + PRIOR_GROUPS * prior.mu) / (g + PRIOR_GROUPS)
    else:
        centre = prior.mu
    return CropModel(prior, centre, tau, sigma)


def leave_one_out(values: Sequence[float], index: int) -> list[float]:
    return [v for i, v in enumerate(values) if i != index]


def group_by(items: Sequence[tuple[Hashable, float]]) -> dict[Hashable, list[float]]:
    out: dict[Hashable, list[float]] = defaultdict(list)
    for key, value in items:
        out[key].append(value)
    return out
