"""Honest uncertainty: intervals that cover, tests that hold their level (simulated at sizes that keep the suite fast; the
calibration section of nbs/30_evaluation/33_stats.ipynb runs them larger), and one construction behind each interval and its p-value."""
import numpy as np
import pytest
from rsacfn.evaluation.stats import (DEMO_SHARE, bootstrap_interval, confusion_metrics, fold_coverage,
                                     method_test, min_p, paired_bootstrap, rejection, seed_interval, segment_coverage,
                                     shared_draws, simulated_predictions)


def width(ci, k='macro_f1'): return ci[k][2] - ci[k][1]


def test_runs_on_the_same_segments_share_their_draws():
    rng = np.random.default_rng(0)
    y, (a, b) = simulated_predictions(rng, 200, [.8, .8])
    ids = np.array([f'seg{i}' for i in range(200)])
    once = bootstrap_interval([(y, a)], 7, B=400, segment_ids=[ids])
    thrice = bootstrap_interval([(y, a)] * 3, 7, B=400, segment_ids=[ids] * 3)
    np.testing.assert_allclose(np.array(list(thrice.values())), np.array(list(once.values())), atol=1e-12)  # the same run thrice is one run
    assert width(bootstrap_interval([(y, a)] * 3, 7, B=400)) < .75 * width(once)  # drawn alone, three copies look like more data
    draws = shared_draws([y, y[:100]], [ids, ids[:100]], 50, np.random.default_rng(1))  # overlapping splits share what they share
    np.testing.assert_array_equal(draws[1], draws[0][:, :100])
    with pytest.raises(ValueError, match="segment 'seg0' is class"): shared_draws([y, (y + 1) % 7], [ids, ids], 5)
    p1 = paired_bootstrap([(y, a, b)], 7, B=400, segment_ids=[ids])['macro_f1']
    p3 = paired_bootstrap([(y, a, b)] * 3, 7, B=400, segment_ids=[ids] * 3)['macro_f1']
    assert abs(p1['p'] - p3['p']) < 1e-12 and abs(p1['low'] - p3['low']) < 1e-12


def test_the_paired_interval_excludes_zero_exactly_when_p_is_below_the_level():
    rng = np.random.default_rng(2)
    seen = {True: 0, False: 0}
    for i in range(40):
        acc = [.8, .8 - .04 * rng.random()]
        y, (a, b) = simulated_predictions(rng, 120, acc, methods=[0, 1])
        for level in (.9, .95):
            for r in paired_bootstrap([(y, a, b)], 7, B=199, level=level, seed=i).values():
                rejected = r['p'] < 1 - level
                assert rejected == (not r['low'] <= 0 <= r['high']), r
                assert min_p(199) - 1e-12 <= r['p'] <= 1
                seen[rejected] += 1
    assert seen[True] and seen[False]  # both outcomes were tried
    same = paired_bootstrap([(y, a, a)], 7, B=199)
    assert all(r['low'] == r['high'] == 0 and r['p'] == 1 for r in same.values())


def test_a_class_missing_from_a_replicate_is_left_out_of_its_averages():
    conf = np.array([[8, 2, 0], [1, 4, 0], [0, 0, 0]])  # class 2 absent: as if the validation set held none
    m = confusion_metrics(conf.astype(float))
    assert abs(m['macro_f1'] - np.mean([2 * 8 / (2 * 8 + 3), 2 * 4 / (2 * 4 + 3)])) < 1e-12
    assert abs(m['uar'] - np.mean([.8, .8])) < 1e-12
    fixed = confusion_metrics(conf.astype(float), np.array([True, True, True]))  # scored over 3 classes when asked
    assert abs(fixed['macro_f1'] - 2 / 3 * m['macro_f1']) < 1e-12


def test_seeds_are_averaged_within_their_fold_and_intervals_stay_in_range():
    values, folds = [.80, .82, .70, .72, .90, .92], [0, 0, 1, 1, 2, 2]
    mean, low, high = seed_interval(values, folds=folds)
    from scipy.stats import t
    fold_means = np.array([.81, .71, .91])
    half = t.ppf(.975, 2) * fold_means.std(ddof=1) / np.sqrt(3)
    assert abs(mean - fold_means.mean()) < 1e-12 and abs(low - (fold_means.mean() - half)) < 1e-12 and high == 1.0  # clipped
    assert seed_interval(values)[1] > low  # as six independent runs: narrower
    assert np.isnan(seed_interval([.8, .9], folds=[0, 0])[1])  # one fold: nothing to spread over
    assert seed_interval([.8, .9], folds=[None, float('nan')]) == seed_interval([.8, .9])  # runs without a fold: each its own split
    assert method_test([.01, .02, .03], folds=[0, 0, 0])['df'] == 0 and np.isnan(method_test([.01, .02], folds=[0, 0])['p'])
    r = method_test([.01, .03, .02, .04], folds=[0, 0, 1, 1])
    assert r['df'] == 1 and abs(r['diff'] - .025) < 1e-12


def test_calibration_intervals_cover_and_tests_hold_their_level():
    "The old ways fail where the new ones hold: each run's segments drawn alone, seeds taken as independent runs."
    cov, alone = segment_coverage(np.random.default_rng(3), 150, 150), segment_coverage(np.random.default_rng(3), 150, 150, shared=False)
    assert cov['macro_f1'] >= .88 and cov['uar'] >= .88, cov
    assert alone['macro_f1'] <= .90, alone
    rej = rejection(np.random.default_rng(8), 300, 150)
    rej_alone = rejection(np.random.default_rng(8), 300, 150, shared=False)
    assert rej['bootstrap'] <= .08 and rej['disagree'] == 0, rej
    assert rej_alone['bootstrap'] >= max(.09, 1.5 * rej['bootstrap']), rej_alone
    seeds = rejection(np.random.default_rng(5), 300, 10, folds=3, seeds=1, seed_sd=.015)
    assert seeds['method'] <= .09, seeds
    by_fold, flat = fold_coverage(np.random.default_rng(6), 150), fold_coverage(np.random.default_rng(6), 150, by_fold=False)
    assert by_fold >= .89 and flat <= .85, (by_fold, flat)


def test_simulated_models_have_the_accuracy_asked_for():
    rng = np.random.default_rng(7)
    y, preds = simulated_predictions(rng, 40_000, [.7, .8, .9], methods=[0, 0, 1])
    got = [float((p == y).mean()) for p in preds]
    np.testing.assert_allclose(got, [.7, .8, .9], atol=.01)
    counts = np.bincount(y, minlength=7) / len(y)
    np.testing.assert_allclose(counts, DEMO_SHARE, atol=.01)
