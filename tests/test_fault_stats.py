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


# Values of the hand-written implementations these functions had before they moved to scipy
# (t: bisection of an incomplete-beta CDF to 1e-12 relative; Wilson: the closed form).
T_QUANTILES_BEFORE_SCIPY = {
    (1, 0.5): 1.0000000000000595,
    (1, 0.9): 6.313751514676946,
    (1, 0.95): 12.706204736171602,
    (1, 0.99): 63.65674116287964,
    (1, 0.999): 636.6192487688063,
    (2, 0.5): 0.8164965809274741,
    (2, 0.9): 2.9199855803539734,
    (2, 0.95): 4.302652729750247,
    (2, 0.99): 9.924843200914239,
    (2, 0.999): 31.599054576438093,
    (3, 0.5): 0.7648923284041058,
    (3, 0.9): 2.353363434801878,
    (3, 0.95): 3.18244630528447,
    (3, 0.99): 5.840909309733499,
    (3, 0.999): 12.923978636689128,
    (4.5, 0.5): 0.7328666862359813,
    (4.5, 0.9): 2.0655758888783087,
    (4.5, 0.95): 2.6589123472039033,
    (4.5, 0.99): 4.2728239930105705,
    (4.5, 0.999): 7.5807404993711955,
    (7, 0.5): 0.711141778081789,
    (7, 0.9): 1.8945786050904871,
    (7, 0.95): 2.364624251593136,
    (7, 0.99): 3.499483297350528,
    (7, 0.999): 5.407882520861521,
    (10, 0.5): 0.6998120613121549,
    (10, 0.9): 1.8124611228123277,
    (10, 0.95): 2.2281388519853897,
    (10, 0.99): 3.1692726726174607,
    (10, 0.999): 4.586893858702559,
    (30, 0.5): 0.682755693321083,
    (30, 0.9): 1.697260886594027,
    (30, 0.95): 2.042272456300664,
    (30, 0.99): 2.749995653566584,
    (30, 0.999): 3.6459586350414064,
    (100, 0.5): 0.6769510430115496,
    (100, 0.9): 1.6602343260856722,
    (100, 0.95): 1.9839715185238327,
    (100, 0.99): 2.625890521438456,
    (100, 0.999): 3.390491311164153,
    (1000, 0.5): 0.6747351646067532,
    (1000, 0.9): 1.6463788172850449,
    (1000, 0.95): 1.962339080827237,
    (1000, 0.99): 2.5807546980661087,
    (1000, 0.999): 3.300282648423492,
}
WILSON_BEFORE_SCIPY = {
    (0, 1, 0.9): (0.0, 0.7301340512159457),
    (0, 1, 0.95): (0.0, 0.7934506856227626),
    (0, 1, 0.999): (0.0, 0.9154517518168364),
    (1, 1, 0.9): (0.2698659487840544, 1.0),
    (1, 1, 0.95): (0.20654931437723745, 1.0),
    (1, 1, 0.999): (0.08454824818316364, 1.0),
    (0, 3, 0.9): (0.0, 0.47419557415751257),
    (0, 3, 0.95): (0.0, 0.5614970317550454),
    (0, 3, 0.999): (0.0, 0.7830420796419757),
    (1, 3, 0.9): (0.07826572633372841, 0.7464661317187757),
    (1, 3, 0.95): (0.06149194472039632, 0.7923403991979523),
    (1, 3, 0.999): (0.026757480842205195, 0.9009232123717867),
    (2, 3, 0.9): (0.2535338682812242, 0.9217342736662715),
    (2, 3, 0.95): (0.20765960080204782, 0.9385080552796038),
    (2, 3, 0.999): (0.09907678762821331, 0.9732425191577949),
    (3, 3, 0.9): (0.5258044258424874, 1.0),
    (3, 3, 0.95): (0.4385029682449546, 1.0),
    (3, 3, 0.999): (0.2169579203580243, 1.0),
    (0, 10, 0.9): (0.0, 0.21294197008340685),
    (0, 10, 0.95): (0.0, 0.27753279986288915),
    (0, 10, 0.999): (0.0, 0.5198670877788067),
    (1, 10, 0.9): (0.02263490873086718, 0.3477186673358582),
    (1, 10, 0.95): (0.017876213095072896, 0.40415002679523837),
    (1, 10, 0.999): (0.007896965701467085, 0.6079967045215784),
    (3, 10, 0.9): (0.12687658390319792, 0.5583002041301648),
    (3, 10, 0.95): (0.10779126740630102, 0.6032218525388546),
    (3, 10, 0.999): (0.05758842944026271, 0.75035840567126),
    (9, 10, 0.9): (0.6522813326641417, 0.9773650912691327),
    (9, 10, 0.95): (0.5958499732047616, 0.982123786904927),
    (9, 10, 0.999): (0.3920032954784218, 0.9921030342985329),
    (10, 10, 0.9): (0.787058029916593, 1.0),
    (10, 10, 0.95): (0.7224672001371109, 1.0),
    (10, 10, 0.999): (0.48013291222119325, 1.0),
    (0, 37, 0.9): (0.0, 0.0681401945102038),
    (0, 37, 0.95): (0.0, 0.09405782583720246),
    (0, 37, 0.999): (0.0, 0.22638756344044286),
    (1, 37, 0.9): (0.006052795573242113, 0.11245819923370742),
    (1, 37, 0.95): (0.004786974451940443, 0.13824069863730515),
    (1, 37, 0.999): (0.0021237658990584107, 0.2660806860040632),
    (12, 37, 0.9): (0.21351296027484795, 0.45907683779630476),
    (12, 37, 0.95): (0.19633266528144183, 0.48536332758027795),
    (12, 37, 0.999): (0.13783896038620122, 0.5903512646063868),
    (36, 37, 0.9): (0.8875418007662927, 0.9939472044267579),
    (36, 37, 0.95): (0.861759301362695, 0.9952130255480596),
    (36, 37, 0.999): (0.7339193139959368, 0.9978762341009415),
    (37, 37, 0.9): (0.9318598054897962, 1.0),
    (37, 37, 0.95): (0.9059421741627975, 1.0),
    (37, 37, 0.999): (0.7736124365595571, 1.0),
    (0, 1000, 0.9): (0.0, 0.002698243239760519),
    (0, 1000, 0.95): (0.0, 0.0038267584855551217),
    (0, 1000, 0.999): (0.0, 0.010711585766978247),
    (1, 1000, 0.9): (0.00022312384391207042, 0.004469722909368928),
    (1, 1000, 0.95): (0.00017654637062607809, 0.005642558597957934),
    (1, 1000, 0.999): (7.844198621950217e-05, 0.012611720609224789),
    (333, 1000, 0.9): (0.30896566123508146, 0.3579355520069986),
    (333, 1000, 0.95): (0.3044779033483562, 0.3628002339858192),
    (333, 1000, 0.999): (0.28597939970738684, 0.383598269938784),
    (999, 1000, 0.9): (0.9955302770906311, 0.9997768761560879),
    (999, 1000, 0.95): (0.9943574414020421, 0.9998234536293739),
    (999, 1000, 0.999): (0.9873882793907752, 0.9999215580137805),
    (1000, 1000, 0.9): (0.9973017567602394, 1.0),
    (1000, 1000, 0.95): (0.996173241514445, 1.0),
    (1000, 1000, 0.999): (0.9892884142330217, 1.0),
    (0, 123457, 0.9): (0.0, 2.1914384472131605e-05),
    (0, 123457, 0.95): (0.0, 3.111479539020807e-05),
    (0, 123457, 0.999): (0.0, 8.769544572135659e-05),
    (1, 123457, 0.9): (1.8070459901949065e-06, 3.630695592955859e-05),
    (1, 123457, 0.95): (1.4298478952018743e-06, 4.588441589622459e-05),
    (1, 123457, 0.999): (6.35336762731013e-07, 0.00010325866075486682),
    (41152, 123457, 0.9): (0.33112751058316153, 0.33554106100584663),
    (41152, 123457, 0.95): (0.3307062949551631, 0.33596534348716656),
    (41152, 123457, 0.999): (0.3289307266845273, 0.33775977228011433),
    (123456, 123457, 0.9): (0.9999636930440705, 0.9999981929540098),
    (123456, 123457, 0.95): (0.9999541155841037, 0.9999985701521047),
    (123456, 123457, 0.999): (0.9998967413392452, 0.9999993646632372),
    (123457, 123457, 0.9): (0.9999780856155278, 1.0),
    (123457, 123457, 0.95): (0.9999688852046097, 1.0),
    (123457, 123457, 0.999): (0.9999123045542786, 1.0),
}


@pytest.mark.parametrize(("df", "confidence"), sorted(T_QUANTILES_BEFORE_SCIPY))
def test_student_t_quantile_equals_the_hand_written_one_it_replaced(df, confidence):
    old = T_QUANTILES_BEFORE_SCIPY[df, confidence]
    assert student_t_quantile(confidence, df) == pytest.approx(old, rel=1e-12)


@pytest.mark.parametrize(("successes", "n", "confidence"), sorted(WILSON_BEFORE_SCIPY))
def test_wilson_interval_equals_the_hand_written_one_it_replaced(successes, n, confidence):
    old_lo, old_hi = WILSON_BEFORE_SCIPY[successes, n, confidence]
    lo, hi = wilson_interval(successes, n, confidence)
    assert lo == pytest.approx(old_lo, abs=1e-12) and hi == pytest.approx(old_hi, abs=1e-12)


def test_student_t_quantile_refuses_what_has_no_quantile():
    with pytest.raises(ValueError):
        student_t_quantile(0.95, 0)
    with pytest.raises(ValueError):
        student_t_quantile(1.0, 5)
