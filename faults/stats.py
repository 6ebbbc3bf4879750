"""Statistics of fault campaigns: confidence intervals, sample sizes and the outcome tally.

The normal quantile is :class:`statistics.NormalDist` (standard library); the Student-t
quantile, the Wilson and the Clopper-Pearson intervals come from scipy (``scipy.special``,
``scipy.stats``), imported when first called so that importing this module stays cheap.

Conventions: ``confidence`` is two-sided (0.95 gives the 2.5 % and 97.5 % quantiles); every
interval is returned as ``(lo, hi)``; rates are fractions in [0, 1].
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

_STANDARD_NORMAL = NormalDist()


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def normal_quantile(confidence: float) -> float:
    """Two-sided standard-normal critical value: 1.959964 for ``confidence=0.95``."""
    _check_confidence(confidence)
    return _STANDARD_NORMAL.inv_cdf(0.5 + confidence / 2.0)


def student_t_quantile(confidence: float, df: float) -> float:
    """Two-sided Student-t critical value: 12.706 for ``confidence=0.95, df=1``."""
    from scipy.special import stdtrit  # imported when needed: the CLI's start-up stays fast

    _check_confidence(confidence)
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    return float(stdtrit(df, 0.5 + confidence / 2.0))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / n``.

    Well behaved at 0 and n successes (unlike the Wald interval); ``n == 0`` gives (0, 1).
    The arithmetic is scipy's (``binomtest(k, n).proportion_ci(method="wilson")``, Newcombe
    1998), written out with scipy's quantile: bit for bit the same bounds (tested) without
    binomtest's p-value search, which costs ~0.7 ms per call and a campaign summary makes one
    per figure, register class and layer.
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    _check_confidence(confidence)
    z = _wilson_z(confidence)
    n = int(n)
    p = int(successes) / n
    denom = 2 * (n + z**2)
    center = (2 * n * p + z**2) / denom
    delta = z / denom * math.sqrt(4 * n * p * (1 - p) + z**2)
    # the bounds are exactly 0 / 1 at the extremes; clamp float round-off
    lo = 0.0 if successes == 0 else max(0.0, float(center - delta))
    hi = 1.0 if successes == n else min(1.0, float(center + delta))
    return lo, hi


@functools.lru_cache(maxsize=16)
def _wilson_z(confidence: float) -> float:
    from scipy.special import ndtri  # the quantile scipy's Wilson interval uses

    return float(ndtri(0.5 + 0.5 * confidence))


def clopper_pearson(
    successes: Any, n: Any, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) two-sided interval of binomial proportions, elementwise.

    ``lo = Beta(a/2; k, n - k + 1)``, ``hi = Beta(1 - a/2; k + 1, n - k)``: guaranteed
    coverage at every n and k. No success gives ``lo = 0`` and ``hi = 1 - (a/2)^(1/n)`` > 0
    (a proportion never observed is bounded, not zero); ``n == 0`` gives (0, 1).
    """
    from scipy.stats import beta

    _check_confidence(confidence)
    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    if np.any(n < 0) or np.any((k < 0) | (k > n)):
        raise ValueError("need 0 <= successes <= n")
    alpha = 1.0 - confidence
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k > 0, beta.ppf(alpha / 2, np.maximum(k, 1), n - k + 1), 0.0)
        hi = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, np.maximum(n - k, 1)), 1.0)
    return np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)


def mean_interval_from_moments(
    count: int, mean: float, m2: float, confidence: float = 0.95, *, method: str = "t"
) -> tuple[float, float]:
    """Confidence interval of a mean from (count, mean, sum of squared deviations ``m2``).

    ``method="t"`` uses Student's t with ``count - 1`` degrees of freedom, ``"normal"`` the
    normal quantile. Fewer than two values say nothing about the spread: (-inf, inf).
    """
    if method not in ("t", "normal"):
        raise ValueError(f"method must be 't' or 'normal', got {method!r}")
    if count < 2:
        return -math.inf, math.inf
    std_error = math.sqrt(max(m2, 0.0) / (count - 1) / count)
    if method == "t":
        critical = student_t_quantile(confidence, count - 1)
    else:
        critical = normal_quantile(confidence)
    return mean - critical * std_error, mean + critical * std_error


def mean_interval(
    values: Iterable[float], confidence: float = 0.95, *, method: str = "t"
) -> tuple[float, float, float]:
    """``(mean, lo, hi)``: the sample mean and its confidence interval (t by default)."""
    data = [float(v) for v in values]
    if not data:
        return math.nan, -math.inf, math.inf
    mean = math.fsum(data) / len(data)
    m2 = math.fsum((v - mean) ** 2 for v in data)
    lo, hi = mean_interval_from_moments(len(data), mean, m2, confidence, method=method)
    return mean, lo, hi


def leveugle_sample_size(
    population: int, margin: float = 0.01, confidence: float = 0.95, p: float = 0.5
) -> int:
    """Fault injections needed for ``margin`` error at ``confidence`` (Leveugle et al., DATE 2009).

    ``n = N / (1 + e^2 (N - 1) / (t^2 p (1 - p)))`` with N the population of possible faults
    (sites x bits x cycles), e the margin, t the normal critical value and p the a-priori
    failure probability (0.5 is the conservative choice). Rounded up, never above N.
    """
    if population < 1:
        raise ValueError(f"population must be at least 1, got {population}")
    if not 0.0 < margin < 1.0:
        raise ValueError(f"margin must lie in (0, 1), got {margin}")
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    t = normal_quantile(confidence)
    n = population / (1.0 + margin * margin * (population - 1) / (t * t * p * (1.0 - p)))
    # round-off must not turn an exact integer into the next one up
    return min(population, math.ceil(n - 1e-9))


def rate_estimate(successes: int, n: int, confidence: float = 0.95) -> dict[str, float | int]:
    """``{"count", "n", "rate", "lo", "hi"}``: a proportion with its Wilson interval."""
    lo, hi = wilson_interval(successes, n, confidence)
    return {
        "count": successes,
        "n": n,
        "rate": successes / n if n else math.nan,
        "lo": lo,
        "hi": hi,
    }


@dataclass
class Tally:
    """Outcomes of faulty inferences, mergeable across workers and resumed runs.

    Each faulty inference is compared with its fault-free (golden) run:

    * ``masked``: final logits bit-identical to the golden run;
    * ``corrupted``: logits differ (by any amount), so ``masked + corrupted = count``;
    * ``sdc``: the top-1 prediction differs from the golden run — the *failure* of DESIGN.md;
      a subset of ``corrupted``;
    * ``critical_sdc``: an SDC that turns a correct golden prediction into a wrong one
      (counted over labelled samples);
    * ``correct``: the top-1 prediction under fault equals the label, counted over the
      ``labelled`` inferences only (accuracy under faults);
    * RMSE of the logits against the golden run, kept as (mean, ``rmse_m2`` = sum of squared
      deviations) and merged with Chan et al.'s parallel formula, which stays accurate where
      a raw sum of squares would cancel.
    """

    count: int = 0
    masked: int = 0
    corrupted: int = 0
    sdc: int = 0
    critical_sdc: int = 0
    labelled: int = 0
    correct: int = 0
    rmse_mean: float = 0.0
    rmse_m2: float = 0.0

    def add(
        self,
        *,
        masked: bool,
        top1_changed: bool,
        rmse: float,
        correct: bool | None = None,
        golden_correct: bool | None = None,
    ) -> None:
        """Record one faulty inference (``correct``/``golden_correct`` None without a label)."""
        if masked and (top1_changed or rmse != 0.0):
            raise ValueError("a masked outcome cannot change the top-1 class or have RMSE > 0")
        self.count += 1
        self.masked += int(masked)
        self.corrupted += int(not masked)
        self.sdc += int(top1_changed)
        self.critical_sdc += int(top1_changed and bool(golden_correct))
        if correct is not None:
            self.labelled += 1
            self.correct += int(correct)
        delta = float(rmse) - self.rmse_mean  # Welford update
        self.rmse_mean += delta / self.count
        self.rmse_m2 += delta * (float(rmse) - self.rmse_mean)

    def merge(self, other: Tally) -> Tally:
        """A new tally holding both; neither operand changes."""
        count = self.count + other.count
        if count == 0:
            return Tally()
        delta = other.rmse_mean - self.rmse_mean
        mean = self.rmse_mean + delta * other.count / count
        m2 = self.rmse_m2 + other.rmse_m2 + delta * delta * self.count * other.count / count
        return Tally(
            count=count,
            masked=self.masked + other.masked,
            corrupted=self.corrupted + other.corrupted,
            sdc=self.sdc + other.sdc,
            critical_sdc=self.critical_sdc + other.critical_sdc,
            labelled=self.labelled + other.labelled,
            correct=self.correct + other.correct,
            rmse_mean=mean,
            rmse_m2=m2,
        )

    @classmethod
    def merge_all(cls, tallies: Iterable[Tally]) -> Tally:
        """Merge in the given order (fixed order gives bit-identical float results)."""
        total = cls()
        for tally in tallies:
            total = total.merge(tally)
        return total

    def summary(self, confidence: float = 0.95) -> dict[str, Any]:
        """Rates with Wilson intervals and the mean RMSE with its t interval, JSON-ready.

        ``failure`` is the ``sdc`` rate (top-1 differs from the golden run).
        """
        rmse_lo, rmse_hi = mean_interval_from_moments(
            self.count, self.rmse_mean, self.rmse_m2, confidence
        )
        return {
            "count": self.count,
            "confidence": confidence,
            "masked": rate_estimate(self.masked, self.count, confidence),
            "corrupted": rate_estimate(self.corrupted, self.count, confidence),
            "sdc": rate_estimate(self.sdc, self.count, confidence),
            "failure": rate_estimate(self.sdc, self.count, confidence),
            "critical_sdc": rate_estimate(self.critical_sdc, self.labelled, confidence),
            "accuracy": rate_estimate(self.correct, self.labelled, confidence),
            "rmse": {
                "mean": self.rmse_mean if self.count else math.nan,
                "lo": rmse_lo,
                "hi": rmse_hi,
            },
        }

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tally:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})
