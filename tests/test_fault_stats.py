"""Campaign statistics: intervals and sample sizes against published values, the tally."""

from __future__ import annotations

import math
import random

import pytest

from faults.stats import (
    Tally,
    clopper_pearson,
    leveugle_sample_size,
    mean_interval,
    normal_quantile,
    student_t_quantile,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("successes", "n", "lo", "hi"),
    [
        # Wilson 95% intervals as tabulated by Newcombe (Stat. Med. 1998) and R's prop.test
        # without continuity correction
        (0, 10, 0.0, 0.2775),
        (1, 10, 0.0179, 0.4042),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),
    ],
)
def test_wilson_interval_matches_published_values(successes, n, lo, hi):
    got_lo, got_hi = wilson_interval(successes, n)
    assert got_lo == pytest.approx(lo, abs=6e-5)
    assert got_hi == pytest.approx(hi, abs=6e-5)


def test_clopper_pearson_matches_published_values_elementwise():
    # exact 95% intervals as tabulated by Newcombe (Stat. Med. 1998, method 5)
    k, n = [0, 1, 5, 10, 81], [10, 10, 10, 10, 263]
    lo, hi = clopper_pearson(k, n)
    assert lo == pytest.approx([0.0, 0.0025, 0.1871, 0.6915, 0.2527], abs=6e-5)
    assert hi == pytest.approx([0.3085, 0.4450, 0.8129, 1.0, 0.3676], abs=6e-5)
    # never observed: zero with a positive upper limit, 1 - (alpha/2)^(1/n); no data: (0, 1)
    lo, hi = clopper_pearson([0, 0], [100, 0])
    assert list(lo) == [0.0, 0.0] and hi[0] == pytest.approx(1 - 0.025**0.01) and hi[1] == 1.0
    with pytest.raises(ValueError):
        clopper_pearson([11], [10])


def test_wilson_interval_is_exact_at_the_extremes_and_vacuous_without_data():
    assert wilson_interval(0, 50)[0] == 0.0
    assert wilson_interval(50, 50)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_wilson_interval_narrows_with_more_data_and_higher_confidence_widens_it():
    small = wilson_interval(10, 100)
    large = wilson_interval(100, 1000)
    assert large[1] - large[0] < small[1] - small[0]
    wide = wilson_interval(10, 100, confidence=0.99)
    assert wide[0] < small[0] and wide[1] > small[1]


@pytest.mark.parametrize(
    ("df", "t95", "t99"),
    [
        (1, 12.7062, 63.6567),
        (2, 4.3027, 9.9248),
        (5, 2.5706, 4.0321),
        (10, 2.2281, 3.1693),
        (30, 2.0423, 2.7500),
    ],
)
def test_student_t_quantile_matches_the_t_table(df, t95, t99):
    assert student_t_quantile(0.95, df) == pytest.approx(t95, abs=1e-4)
    assert student_t_quantile(0.99, df) == pytest.approx(t99, abs=1e-4)


def test_normal_quantile_matches_the_usual_critical_values():
    assert normal_quantile(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert normal_quantile(0.99) == pytest.approx(2.575829, abs=1e-6)


def test_mean_interval_uses_student_t_for_small_samples():
    mean, lo, hi = mean_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764451 * math.sqrt(2.5 / 5)  # t(0.975, 4) * s / sqrt(n)
    assert mean == 3.0
    assert (lo, hi) == pytest.approx((3.0 - half, 3.0 + half), abs=1e-6)
    _, lo_n, hi_n = mean_interval([1.0, 2.0, 3.0, 4.0, 5.0], method="normal")
    assert hi_n - lo_n < hi - lo


def test_mean_interval_of_one_value_claims_nothing():
    assert mean_interval([2.0])[1:] == (-math.inf, math.inf)


@pytest.mark.parametrize(
    ("population", "margin", "confidence", "expected"),
    [
        (10**12, 0.01, 0.95, 9604),  # the large-population limit t^2/(4 e^2) = 9603.6
        (10**12, 0.05, 0.95, 385),  # the classic 385
        (10_000, 0.05, 0.95, 370),  # finite-population table value
        (1_000, 0.05, 0.95, 278),
        (10**12, 0.01, 0.99, 16588),  # 2.5758^2 / 4e-4 = 16587.2
        (100, 0.01, 0.95, 99),
        (1, 0.01, 0.95, 1),
    ],
)
def test_leveugle_sample_size_matches_the_formula_tables(population, margin, confidence, expected):
    assert leveugle_sample_size(population, margin, confidence) == expected


def test_leveugle_sample_size_shrinks_with_a_prior_away_from_one_half():
    assert leveugle_sample_size(10**9, 0.01, p=0.1) < leveugle_sample_size(10**9, 0.01)


def _tally_of(outcomes):
    tally = Tally()
    for masked, top1, rmse, correct in outcomes:
        golden_correct = None if correct is None else (correct != top1)
        tally.add(
            masked=masked,
            top1_changed=top1,
            rmse=rmse,
            correct=correct,
            golden_correct=golden_correct,
        )
    return tally


def _random_outcomes(seed, n):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        masked = rng.random() < 0.6
        top1 = (not masked) and rng.random() < 0.3
        rmse = 0.0 if masked else rng.expovariate(1.0) + 1e3  # large offset: tests stability
        correct = None if rng.random() < 0.1 else rng.random() < 0.8
        out.append((masked, top1, rmse, correct))
    return out


def test_tally_counts_and_summary_rates_with_intervals():
    tally = _tally_of(
        [
            (True, False, 0.0, True),
            (False, False, 0.5, True),
            (False, True, 2.0, False),
            (False, True, 1.5, None),
        ]
    )
    assert (tally.count, tally.masked, tally.corrupted, tally.sdc) == (4, 1, 3, 2)
    assert tally.critical_sdc == 1  # the labelled SDC whose golden prediction was right
    assert (tally.labelled, tally.correct) == (3, 2)
    summary = tally.summary()
    assert summary["failure"]["rate"] == 0.5
    assert (summary["failure"]["lo"], summary["failure"]["hi"]) == wilson_interval(2, 4)
    assert summary["accuracy"]["rate"] == pytest.approx(2 / 3)
    assert summary["rmse"]["mean"] == pytest.approx(1.0)
    mean, lo, hi = mean_interval([0.0, 0.5, 2.0, 1.5])
    assert (summary["rmse"]["lo"], summary["rmse"]["hi"]) == pytest.approx((lo, hi))


def test_tally_merge_equals_one_tally_over_all_outcomes():
    outcomes = _random_outcomes(1, 300)
    whole = _tally_of(outcomes)
    parts = [_tally_of(outcomes[i : i + 37]) for i in range(0, 300, 37)]
    merged = Tally.merge_all(parts)
    assert (merged.count, merged.masked, merged.corrupted, merged.sdc, merged.critical_sdc) == (
        whole.count,
        whole.masked,
        whole.corrupted,
        whole.sdc,
        whole.critical_sdc,
    )
    assert (merged.labelled, merged.correct) == (whole.labelled, whole.correct)
    assert merged.rmse_mean == pytest.approx(whole.rmse_mean, rel=1e-12)
    assert merged.rmse_m2 == pytest.approx(whole.rmse_m2, rel=1e-9)
    values = [o[2] for o in outcomes]
    mean = math.fsum(values) / len(values)
    assert whole.rmse_m2 == pytest.approx(math.fsum((v - mean) ** 2 for v in values), rel=1e-9)


def test_tally_merge_leaves_operands_unchanged_and_round_trips_through_dict():
    a, b = _tally_of(_random_outcomes(2, 20)), _tally_of(_random_outcomes(3, 30))
    before = a.to_dict()
    merged = a.merge(b)
    assert a.to_dict() == before and merged.count == 50
    assert Tally.from_dict(merged.to_dict()) == merged
    assert Tally().merge(Tally()) == Tally()


def test_masked_outcome_cannot_change_the_prediction():
    with pytest.raises(ValueError):
        Tally().add(masked=True, top1_changed=True, rmse=0.0)
