"""estimate_emd against closed forms, POT's exact solvers, finite differences and bad input."""

from __future__ import annotations

import math

import numpy as np
import ot
import pytest
import torch

from emd_lipschitz import CriticConfig, Disk, Ring, estimate_emd, exact_emd, shape_points
from lipschitz_core import estimate_lipschitz, lipschitz_bound

FAST = CriticConfig(hidden=16, depth=3, steps=100)


def _ring(n: int, r: float, centre=(0.0, 0.0)) -> np.ndarray:
    points, _ = shape_points(Ring(n), [centre[0], centre[1], math.log(r)])
    return points.numpy()


def test_ring_vs_centre_is_the_radius():
    ring = _ring(360, 0.7, (0.2, -0.1))
    result = estimate_emd(ring, None, np.array([[0.2, -0.1]]), None, config=FAST)
    assert result.value == pytest.approx(0.7, rel=1e-6)


def test_concentric_rings_differ_by_the_radii():
    result = estimate_emd(_ring(240, 0.3), None, _ring(240, 0.8), None, config=FAST)
    assert result.value == pytest.approx(0.5, rel=1e-4)


def test_disk_vs_centre_is_two_thirds_of_the_radius():
    points, _ = shape_points(Disk(2000), [0.0, 0.0, math.log(0.6)])
    result = estimate_emd(points, None, np.zeros((1, 2)), None, config=FAST)
    assert result.value == pytest.approx(2 * 0.6 / 3, rel=2e-3)


def test_disk_vs_ring_of_the_same_radius_is_a_third():
    disk, _ = shape_points(Disk(600), [0.0, 0.0, 0.0])
    result = estimate_emd(disk, None, _ring(200, 1.0), None, config=FAST)
    assert result.value == pytest.approx(1.0 / 3.0, rel=5e-3)


def test_translated_copy_is_the_shift():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 2))
    a = rng.dirichlet(np.ones(40))
    shift = np.array([0.3, -0.4])
    result = estimate_emd(x, a, x + shift, a, config=FAST)
    assert result.value == pytest.approx(0.5, rel=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_pot_emd2_and_never_exceeds_it(seed):
    rng = np.random.default_rng(seed)
    n, m = 25 + 10 * seed, 60
    x, y = rng.normal(size=(n, 2)), rng.normal(size=(m, 2)) * 0.7 + 0.2
    a, b = rng.dirichlet(np.ones(n)), np.full(m, 1.0 / m)
    exact = ot.emd2(a, b, ot.dist(x, y, metric="euclidean"))
    result = estimate_emd(x, a, y, b, config=FAST, seed=seed)
    assert result.value <= exact * (1 + 1e-9)
    assert result.value == pytest.approx(exact, rel=1e-3)
    assert result.critic_value <= result.value + 1e-12


def test_refinement_ladder_is_monotone_and_the_critic_is_certified():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(35, 2)) + 0.5
    exact = exact_emd(x, None, y, None)
    values = {mode: estimate_emd(x, None, y, None, config=FAST, refine=mode) for mode in ("none", "ctransform", "semidual")}
    assert values["none"].value <= values["ctransform"].value + 1e-12
    assert values["ctransform"].value <= values["semidual"].value + 1e-12
    assert values["semidual"].value <= exact * (1 + 1e-9)
    critic = values["none"].critic
    bound = lipschitz_bound(critic, "two-inf")
    assert bound <= 1.0 + 1e-6
    empirical = estimate_lipschitz(critic, torch.tensor(np.vstack([x, y])), "two-inf", steps=10)
    assert empirical <= bound + 1e-9


def test_unequal_totals_match_partial_transport_plus_energy_difference():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(20, 2)) * 0.3, rng.normal(size=(25, 2)) * 0.3
    a, b = rng.uniform(size=20), rng.uniform(size=25)
    R = 0.8
    cost = ot.dist(x, y, metric="euclidean") / R
    reference = ot.partial.partial_wasserstein2(a, b, cost, m=min(a.sum(), b.sum())) + abs(a.sum() - b.sum())
    result = estimate_emd(x, a, y, b, R=R, config=FAST)
    assert not result.balanced
    assert result.value <= reference * (1 + 1e-9)
    assert result.value == pytest.approx(reference, rel=1e-3)
    assert exact_emd(x, a, y, b, R=R) == pytest.approx(reference, rel=1e-9)
    # the clamped critic: |f| <= 1 and (1/R)-Lipschitz
    with torch.no_grad():
        assert float(result.critic(torch.tensor(np.vstack([x, y]))).abs().max()) <= 1.0
    assert lipschitz_bound(result.critic, "two-inf") <= 1.0 / R + 1e-6


def test_point_vs_double_point_is_distance_over_R_plus_one():
    result = estimate_emd([[0.0, 0.0]], [1.0], [[0.3, 0.4]], [2.0], R=1.0, config=FAST)
    assert result.value == pytest.approx(0.5 + 1.0, rel=1e-6)


def test_identical_measures_give_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(15, 2))
    result = estimate_emd(x, None, x, None, config=FAST)
    assert abs(result.value) <= 1e-9


def test_position_gradients_match_finite_differences_of_the_exact_emd():
    rng = np.random.default_rng(11)
    x0, y0 = rng.uniform(size=(6, 2)), rng.uniform(size=(7, 2))
    a, b = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(7))
    x = torch.tensor(x0, requires_grad=True)
    y = torch.tensor(y0, requires_grad=True)
    result = estimate_emd(x, a, y, b, config=FAST)
    result.tensor.backward()
    vx, vy = rng.normal(size=x0.shape), rng.normal(size=y0.shape)
    h = 1e-6
    fd = (exact_emd(x0 + h * vx, a, y0 + h * vy, b) - exact_emd(x0 - h * vx, a, y0 - h * vy, b)) / (2 * h)
    analytic = float((x.grad * torch.tensor(vx)).sum() + (y.grad * torch.tensor(vy)).sum())
    assert analytic == pytest.approx(fd, rel=1e-3, abs=1e-6)


def test_weight_gradients_match_finite_differences_of_the_exact_emd():
    rng = np.random.default_rng(12)
    x0, y0 = rng.uniform(size=(6, 2)), rng.uniform(size=(7, 2))
    a0, b0 = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(7))
    a = torch.tensor(a0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    estimate_emd(x0, a, y0, b, config=FAST).tensor.backward()
    # Directions that keep both totals at 1 (the EMD is W1 only on the balanced set).
    va, vb = rng.normal(size=6), rng.normal(size=7)
    va -= va.mean()
    vb -= vb.mean()
    h = 1e-7
    fd = (exact_emd(x0, a0 + h * va, y0, b0 + h * vb) - exact_emd(x0, a0 - h * va, y0, b0 - h * vb)) / (2 * h)
    analytic = float((a.grad * torch.tensor(va)).sum() + (b.grad * torch.tensor(vb)).sum())
    assert analytic == pytest.approx(fd, rel=1e-3, abs=1e-6)


def test_same_seed_same_result_different_seed_different_critic():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 2)), rng.normal(size=(20, 2)) + 1
    r1 = estimate_emd(x, None, y, None, config=FAST, seed=4)
    r2 = estimate_emd(x, None, y, None, config=FAST, seed=4)
    r3 = estimate_emd(x, None, y, None, config=FAST, seed=5)
    assert r1.value == r2.value and r1.critic_value == r2.critic_value
    assert r1.critic_value != r3.critic_value


def test_float32_and_float64_critics_agree():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + 0.4
    v32 = estimate_emd(x, None, y, None, config=FAST).value
    v64 = estimate_emd(x, None, y, None, config=CriticConfig(hidden=16, depth=3, steps=100, dtype="float64")).value
    assert v32 == pytest.approx(v64, rel=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": [[0.0, 0.0]], "a": [-1.0], "y": [[1.0, 0.0]], "b": [1.0]}, "negative weight"),
        ({"x": [[0.0, 0.0]], "a": [0.0], "y": [[1.0, 0.0]], "b": [1.0]}, "sums to zero"),
        ({"x": [[0.0, math.nan]], "a": None, "y": [[1.0, 0.0]], "b": None}, "NaN or inf"),
        ({"x": [[0.0, math.inf]], "a": None, "y": [[1.0, 0.0]], "b": None}, "NaN or inf"),
        ({"x": [[0.0, 0.0]], "a": None, "y": [[1.0, 0.0, 2.0]], "b": None}, "same space"),
        ({"x": np.zeros((0, 2)), "a": None, "y": [[1.0, 0.0]], "b": None}, "empty"),
        ({"x": [[0.0, 0.0]], "a": [1.0, 2.0], "y": [[1.0, 0.0]], "b": None}, "one per point"),
        ({"x": [[0.0, 0.0]], "a": [1.0], "y": [[1.0, 0.0]], "b": [2.0]}, "needs the radius R"),
        ({"x": [[0.0, 0.0]], "a": [1.0], "y": [[1.0, 0.0]], "b": [2.0], "R": -1.0}, "R must be"),
        ({"x": [[0.0, 0.0]], "a": [1.0], "y": [[1.0, 0.0]], "b": [1.0], "refine": "magic"}, "refine must be"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        estimate_emd(**kwargs, config=FAST)


def test_config_is_validated():
    with pytest.raises(ValueError, match="refine must be"):
        CriticConfig(refine="both")
    with pytest.raises(ValueError, match="lr must be"):
        CriticConfig(lr=-1.0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_agrees_with_pot_on_event_sized_clouds(seed):
    rng = np.random.default_rng(100 + seed)
    m = 300
    t = rng.uniform(0, 2 * np.pi, m)
    x = np.stack([0.3 * np.cos(t), 0.3 * np.sin(t)], 1) + rng.normal(0, 0.05, (m, 2))
    a = rng.dirichlet(np.ones(m))
    y = _ring(1000, 0.3 * rng.uniform(0.7, 1.3), tuple(rng.normal(0, 0.05, 2)))
    exact = exact_emd(x, a, y, None)
    result = estimate_emd(x, a, y, None)
    assert result.value <= exact * (1 + 1e-9)
    assert result.value == pytest.approx(exact, rel=3e-3)
