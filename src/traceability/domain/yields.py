"""What yield per rai is plausible for a crop in a district and season, learned from the ledger's own records.

Yields are compared on a log scale: they are multiplicative (a good district gives ×1.15, a drought ×0.6, a
farmer's skill ×1.1), their spread grows with their level, and log-normal is how agronomists model them.

Per group (crop, district, season) we estimate the typical log-yield robustly — the **median**, with the
**MAD** (median absolute deviation × 1.4826) as the spread — because the very records we test may include
laundered ones: the median ignores anything under half of a group, where a mean is dragged by one big lie.

A group with few records cannot be trusted alone, so its median is **shrunk toward the crop's prior** (the
typical yield of ``domain.crops``) by empirical Bayes, the normal–normal model: the group's true level is
drawn around the prior with a between-group spread τ (estimated from all groups of the crop, floored); the
group's median carries sampling variance (π/2)·σ²/n. The posterior weight of the data is
``w = τ² / (τ² + (π/2)·σ²/n)``: 0 with no records (the prior alone), about a quarter with one record, near 1
with many. The spread for a new lot is the within-group σ (itself shrunk toward the crop's pooled σ with
:data:`SCALE_PSEUDO_N` pseudo-records) plus the remaining uncertainty of the level. A lot is tested against
its group *without itself* (leave one out), so no record vouches for itself.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

MAD_TO_SD = 1.4826
MEDIAN_VARIANCE = math.pi / 2  # variance of a normal sample's median ≈ (π/2)·σ²/n
SCALE_PSEUDO_N = 5.0
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


def shrink(values: Sequence[float], prior: Prior, tau: float, sigma: float) -> Expectation:
    """The expected log-yield of a new record of a group whose other records are ``values``."""
    n = len(values)
    scale = robust_scale(values)
    if scale is not None:
        sigma = math.sqrt((n * scale**2 + SCALE_PSEUDO_N * sigma**2) / (n + SCALE_PSEUDO_N))
    sigma = max(sigma, SIGMA_FLOOR)
    if n == 0:
        return Expectation(prior.mu, math.sqrt(sigma**2 + tau**2), 0, 0.0)
    sampling = MEDIAN_VARIANCE * sigma**2 / n
    weight = tau**2 / (tau**2 + sampling)
    level = weight * statistics.median(values) + (1 - weight) * prior.mu
    level_variance = 1 / (1 / tau**2 + 1 / sampling)
    return Expectation(level, math.sqrt(sigma**2 + level_variance), n, weight)


@dataclass(frozen=True)
class CropModel:
    """Everything learned for one crop: its prior, the spread between groups and within them."""

    prior: Prior
    tau: float
    sigma: float


def learn(groups: Mapping[Hashable, Sequence[float]], prior: Prior) -> CropModel:
    """τ (between groups) and σ (within, pooled) of one crop's log-yields grouped by district and season.

    σ: the robust scale of every record's distance from its group's median (groups of ≥ 3), or the prior's σ.
    τ: the variance of the group medians less their sampling variance (method of moments), floored; with
    fewer than three groups of ≥ 3 records, the prior's σ (how far farms may differ is then all we know)."""
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
    return CropModel(prior, tau, sigma)


def leave_one_out(values: Sequence[float], index: int) -> list[float]:
    return [v for i, v in enumerate(values) if i != index]


def group_by(items: Sequence[tuple[Hashable, float]]) -> dict[Hashable, list[float]]:
    out: dict[Hashable, list[float]] = defaultdict(list)
    for key, value in items:
        out[key].append(value)
    return out
