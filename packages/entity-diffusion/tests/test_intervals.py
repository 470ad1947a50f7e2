"""Intervals: the order-statistic rank against simulation, refusals, and split-conformal
calibration measured on entities neither the model nor the calibration saw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from entity_diffusion import EntityDiffusion, KBFormerConfig, order_statistic_rank


@pytest.mark.parametrize("m", [19, 39, 50])
def test_order_statistics_cover_a_new_draw_at_the_nominal_level(m: int) -> None:
    rng = np.random.default_rng(m)
    trials = 40000
    draws = np.sort(rng.standard_gamma(2.0, size=(trials, m)), axis=1)  # any continuous law
    truth = rng.standard_gamma(2.0, size=trials)
    k = order_statistic_rank(m, 0.9)
    inside = (truth >= draws[:, k - 1]) & (truth <= draws[:, m - k])
    expected = (m + 1 - 2 * k) / (m + 1)
    assert expected >= 0.9 and abs(inside.mean() - expected) < 0.006
    # numpy's interpolated 5 % / 95 % quantiles of the same draws under-cover
    lo, hi = np.quantile(draws, 0.05, axis=1), np.quantile(draws, 0.95, axis=1)
    assert ((truth >= lo) & (truth <= hi)).mean() < 0.9 - 0.005


def test_too_few_draws_are_refused() -> None:
    with pytest.raises(ValueError, match="use n_samples >= 19"):
        order_statistic_rank(10, 0.9)
    assert order_statistic_rank(19, 0.9) == 1 and order_statistic_rank(99, 0.9) == 5


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": x + 0.5 * rng.normal(size=n), "z": rng.exponential(size=n)})


def test_conformal_calibration_covers_held_out_cells() -> None:
    # a deliberately under-trained model: its raw intervals are off, the calibrated ones are not
    config = KBFormerConfig(steps=40, batch_size=64, val_fraction=0.0).updated(
        d_model=8, n_heads=2, n_layers=1, n_mixtures=2, n_frequencies=2)
    model = EntityDiffusion(config, random_state=0).fit(_table(300, 0))
    with pytest.raises(RuntimeError, match="calibrate_intervals"):
        model.intervals(_table(5, 1), conformal=True)
    cal = model.calibrate_intervals(_table(400, 1), level=0.9, mask_rate=0.3, n_samples=19, seed=0)
    assert set(cal["margins"]) == {"x", "y", "z"} and min(cal["cells"].values()) > 80
    test = _table(400, 2)
    gapped = test.mask(np.random.default_rng(3).random(test.shape) < 0.3)
    covered = []
    for conformal in (False, True):
        bounds = model.intervals(gapped, level=0.9, n_samples=19, seed=5, conformal=conformal)
        gaps = gapped.isna().to_numpy()
        lower = bounds[[f"{c}:lower" for c in test.columns]].to_numpy()[gaps]
        upper = bounds[[f"{c}:upper" for c in test.columns]].to_numpy()[gaps]
        truth = test.to_numpy()[gaps]
        covered.append(float(((truth >= lower) & (truth <= upper)).mean()))
    raw, calibrated = covered
    assert 0.86 <= calibrated <= 0.95, covered
    assert abs(calibrated - 0.9) < abs(raw - 0.9), covered
    with pytest.raises(ValueError, match="calibrated at level 0.9"):
        model.intervals(gapped, level=0.8, conformal=True)
