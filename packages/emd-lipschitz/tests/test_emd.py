"""emd(): exact / sinkhorn / neural against an independent float64 LP (scipy HiGHS on costs formed
by direct differences; neither POT nor ot.dist), robustness to offsets, units and totals, and the
bad-input list of issue 14."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from emd_lipschitz import (
    CriticConfig,
    FitConfig,
    Ring,
    emd,
    estimate_emd,
    exact_emd,
    fit_shape,
    kmeans,
)


def reference_emd(x, a, y, b, R=None) -> float:
    """EnergyFlow's EMD as a linear program in float64 (direct differences, scipy HiGHS)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    # subtract a common point first (exact in float64 for these magnitudes), then direct differences
    cost = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)) / (1.0 if R is None else R)
    n, m = cost.shape
    scale_w = max(a.sum(), b.sum())
    an, bn = a / scale_w, b / scale_w
    a_ub = np.zeros((n + m, n * m))
    for i in range(n):
        a_ub[i, i * m : (i + 1) * m] = 1.0
    for j in range(m):
        a_ub[n + j, j::m] = 1.0
    res = linprog(cost.ravel() / cost.max(), A_ub=a_ub, b_ub=np.concatenate([an, bn]), A_eq=np.ones((1, n * m)),
                  b_eq=[min(an.sum(), bn.sum())], bounds=(0, None), method="highs", options={"primal_feasibility_tolerance": 1e-10,
                                                                                           "dual_feasibility_tolerance": 1e-10})
    assert res.status == 0
    return scale_w * (res.fun * cost.max() + abs(an.sum() - bn.sum()))


def _clouds(seed=0, n=12, m=15):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)), rng.dirichlet(np.ones(n)), rng.normal(size=(m, 2)) + 0.3, rng.dirichlet(np.ones(m))


@pytest.mark.parametrize("seed", [0, 1])
def test_exact_matches_the_independent_lp(seed):
    x, a, y, b = _clouds(seed)
    result = emd(x, a, y, b)
    assert result.method == "exact" and result.reason.startswith("auto")
    assert result.value == pytest.approx(reference_emd(x, a, y, b), rel=1e-9)
    assert emd(x, a, y, b, method="exact").value == pytest.approx(result.value, rel=1e-12)


def test_unequal_totals_match_the_lp_with_the_energy_difference():
    x, a, y, b = _clouds(2)
    result = emd(x, 2.0 * a, y, 1.3 * b, R=3.0)
    assert not result.balanced
    assert result.value == pytest.approx(reference_emd(x, 2.0 * a, y, 1.3 * b, R=3.0), rel=1e-9)


@pytest.mark.parametrize("offset", [1e4, 1e5, 1e6, 1e7])
def test_offsets_do_not_change_the_value(offset):
    # the 0.1 code formed costs with the expanded square (torch.cdist / ot.dist): at 1e7 it was off by %
    x, a, y, b = _clouds(3)
    shift = np.array([offset, -0.7 * offset])
    expected = reference_emd(x + shift, a, y + shift, b)  # same rounded inputs, direct differences
    assert expected == pytest.approx(reference_emd(x, a, y, b), rel=1e-6)
    assert emd(x + shift, a, y + shift, b).value == pytest.approx(expected, rel=1e-9)
    assert exact_emd(x + shift, a, y + shift, b) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("unit", "total"), [(1e-10, 1.0), (1.0, 1e-12), (1e-10, 1e-12), (1e8, 1e9)])
def test_units_and_totals_scale_out(unit, total):
    x, a, y, b = _clouds(4)
    expected = reference_emd(x, a, y, b) * unit * total
    assert emd(x * unit, a * total, y * unit, b * total).value == pytest.approx(expected, rel=1e-9)
    assert emd(x * unit, a * total, y * unit, b * total, method="sinkhorn").value == pytest.approx(expected, rel=5e-3)


def test_float32_normalized_weights_count_as_balanced():
    x, a, y, b = _clouds(5, n=30, m=40)
    a32 = (a / a.sum()).astype(np.float32)
    b32 = (np.random.default_rng(1).uniform(0.5, 1.5, 40) / 40).astype(np.float32)
    b32 = b32 / b32.sum()
    assert a32.sum(dtype=np.float64) != b32.sum(dtype=np.float64)  # off by float32 rounding
    result = emd(x.astype(np.float32), a32, y.astype(np.float32), b32)
    assert result.balanced
    expected = reference_emd(x.astype(np.float32), a32, y.astype(np.float32), b32 * (a32.sum(dtype=np.float64) / b32.sum(dtype=np.float64)))
    assert result.value == pytest.approx(expected, rel=1e-7)
    # the neural estimator's entry point accepts them too (0.1 refused "totals differ (sum a = 1, sum b = 1)")
    est = estimate_emd(x, a32, y, b32, config=CriticConfig(hidden=8, depth=2, steps=5), refine="none")
    assert est.balanced
    # a real difference in float64 still needs R
    with pytest.raises(ValueError, match="needs the radius R"):
        emd(x, a, y, b * (1 + 1e-6))


def test_gradients_match_finite_differences():
    x, a, y, b = _clouds(6, n=8, m=9)
    xt = torch.tensor(x, requires_grad=True)
    at = torch.tensor(2.0 * a, requires_grad=True)
    result = emd(xt, at, y, 1.5 * b, R=4.0)
    result.tensor.backward()
    h = 1e-6
    for i, k in ((0, 0), (3, 1), (7, 0)):
        xp, xm = x.copy(), x.copy()
        xp[i, k] += h
        xm[i, k] -= h
        fd = (emd(xp, 2.0 * a, y, 1.5 * b, R=4.0).value - emd(xm, 2.0 * a, y, 1.5 * b, R=4.0).value) / (2 * h)
        assert float(xt.grad[i, k]) == pytest.approx(fd, rel=1e-4, abs=1e-7)
    for i in (0, 5):
        ap, am = 2.0 * a, 2.0 * a
        ap, am = ap.copy(), am.copy()
        ap[i] += h
        am[i] -= h
        fd = (emd(x, ap, y, 1.5 * b, R=4.0).value - emd(x, am, y, 1.5 * b, R=4.0).value) / (2 * h)
        assert float(at.grad[i]) == pytest.approx(fd, rel=1e-4, abs=1e-7)


def test_sinkhorn_is_debiased_and_close_to_exact():
    x, a, y, b = _clouds(7, n=30, m=35)
    exact = emd(x, a, y, b, method="exact").value
    result = emd(x, a, y, b, method="sinkhorn", reg=3e-3)
    assert result.method == "sinkhorn"
    assert result.value == pytest.approx(exact, rel=5e-3)
    assert emd(x, a, x, a, method="sinkhorn").value == pytest.approx(0.0, abs=1e-9)  # debiased: zero on itself
    assert emd(x, 1.2 * a, y, b, R=5.0, method="sinkhorn", reg=3e-3).value == pytest.approx(emd(x, 1.2 * a, y, b, R=5.0).value, rel=5e-3)


def test_neural_reports_the_critics_own_value():
    x, a, y, b = _clouds(8, n=40, m=50)
    config = CriticConfig(hidden=16, depth=3, steps=150)
    result = emd(x, a, y, b, method="neural", critic=config, seed=1)
    exact = emd(x, a, y, b).value
    assert result.method == "neural"
    assert result.value <= exact * (1 + 1e-9)  # a certified 1-Lipschitz critic is a lower bound
    assert result.value > 0.5 * exact
    # nothing bolted on: the critic's dual value on the centred, scaled problem, scaled back
    assert result.info["lipschitz_bound"] <= 1 + 1e-6


def test_small_radius_warns_and_bad_methods_are_refused():
    x, a, y, b = _clouds(9)
    with pytest.warns(UserWarning, match="half the largest pairwise distance"):
        emd(x, a, y, b, R=0.5)
    with pytest.raises(ValueError, match="method must be one of"):
        emd(x, a, y, b, method="fast")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": np.ones((3, 2)) * (1 + 1j)}, "complex"),
        ({"a": np.ones(12) * (1 + 0j)}, "complex"),
        ({"x": np.full((12, 2), 1e200)}, "overflow"),
        ({"R": -1.0}, "R must be"),
        ({"seed": -3}, "seed must be"),
    ],
)
def test_bad_input_is_refused_with_one_clear_line(kwargs, message):
    x, a, y, b = _clouds(10)
    args = {"x": x, "a": a, "y": y, "b": b} | kwargs
    with pytest.raises(ValueError, match=message):
        emd(args.pop("x"), args.pop("a"), args.pop("y"), args.pop("b"), **args)


def test_numpy_scalars_and_seed_none_are_accepted():
    x, a, y, b = _clouds(11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        value = emd(x, a, y, 1.1 * b, R=np.float32(0.5)).value
        assert value == pytest.approx(emd(x, a, y, 1.1 * b, R=0.5).value)
        assert math.isfinite(estimate_emd(x, a, y, b, R=np.float32(2.0), seed=None, config=CriticConfig(hidden=8, depth=2, steps=3)).value)
    event = (x, a)
    fit = fit_shape(event, Ring(20), config=FitConfig(steps=3, compute_exact=False), seed=None)
    assert fit.params.shape == (1, 3)


def test_kmeans_refuses_zero_weights_and_too_many_centres():
    x = np.random.default_rng(0).normal(size=(5, 2))
    with pytest.raises(ValueError, match="sums to zero"):
        kmeans(x, np.zeros(5), 2)
    with pytest.raises(ValueError, match="larger than the number of points"):
        kmeans(x, np.ones(5), 6)
    with pytest.raises(ValueError, match="larger than the number of points"):
        kmeans(x, np.array([1.0, 1.0, 0.0, 0.0, 0.0]), 3)


@pytest.mark.slow  # a fresh interpreter importing torch and POT: tens of seconds on a loaded machine
def test_fit_seconds_exclude_the_import_of_pot():
    code = (
        "import sys, time\n"
        "import numpy as np\n"
        "from emd_lipschitz import FitConfig, Ring, fit_shape\n"
        "assert 'ot' not in sys.modules\n"
        "t = np.linspace(0, 6.28, 30, endpoint=False)\n"
        "event = (np.c_[np.cos(t), np.sin(t)], np.full(30, 1 / 30))\n"
        "start = time.perf_counter()\n"
        "r = fit_shape(event, Ring(20), config=FitConfig(mode='exact', steps=2, compute_exact=False))\n"
        "print(r.seconds, time.perf_counter() - start)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    seconds, wall = map(float, out.stdout.splitlines()[-1].split())  # dependencies may print first (pykeops does)
    # the wall time includes importing POT (seconds on this machine); the fit itself is milliseconds
    assert seconds < 0.5 * wall, (seconds, wall)


def test_auto_uses_the_critic_only_where_no_dense_cost_fits(monkeypatch):
    import emd_lipschitz._exact as exact_module

    x, a, y, b = _clouds(12, n=20, m=20)
    monkeypatch.setattr(exact_module, "AUTO_EXACT_MAX_ENTRIES", 100)
    with pytest.warns(UserWarning, match="lower bound"):
        result = emd(x, a, y, b, critic=CriticConfig(hidden=8, depth=2, steps=20))
    assert result.method == "neural" and "GB" in result.reason
