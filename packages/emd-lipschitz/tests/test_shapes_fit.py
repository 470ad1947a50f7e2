"""Shapes (quadrature, parametrization), fitting modes and clustering."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from emd_lipschitz import (
    CriticConfig,
    Disk,
    Ellipse,
    FitConfig,
    Ring,
    Segment,
    Shape,
    Sum,
    Triangle,
    WeightedPoints,
    choose_k,
    cluster_events,
    exact_emd,
    fit_shape,
    kmeans,
    shape_points,
)

SHAPES = [Ring(50), Ellipse(60), Disk(80), Segment(20), Triangle(10), WeightedPoints(3), WeightedPoints(3, free_weights=True),
          Sum(Ring(30), Segment(10))]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: type(s).__name__)
def test_every_shape_follows_the_protocol_and_weights_sum_to_one(shape):
    assert isinstance(shape, Shape)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(40, 2)))
    a = torch.full((40,), 1 / 40, dtype=torch.float64)
    params = torch.stack([shape.initial_params(x, a)] * 2).requires_grad_(True)
    assert params.shape == (2, shape.n_params) and len(shape.param_names) == shape.n_params
    points, weights = shape(params)
    assert points.shape[0] == 2 and points.shape[2] == 2
    assert torch.allclose(weights.sum(1), torch.ones(2, dtype=torch.float64))
    (points.sum() + (weights * torch.arange(weights.shape[1])).sum()).backward()
    assert params.grad is not None and bool(torch.isfinite(params.grad).all())


def test_ellipse_rotation_rotates_the_points_and_weights_follow_arc_length():
    base, w = shape_points(Ellipse(400), [0.0, 0.0, math.log(2.0), math.log(0.5), 0.0])
    turned, w2 = shape_points(Ellipse(400), [0.0, 0.0, math.log(2.0), math.log(0.5), math.pi / 2])
    rot = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(turned, base @ rot.T, atol=1e-12)
    assert torch.allclose(w, w2)
    # a circle: equal weights; an elongated ellipse: more weight where the curve is faster
    _, wc = shape_points(Ellipse(16), [0.0, 0.0, 0.0, 0.0, 0.3])
    assert torch.allclose(wc, torch.full((16,), 1 / 16, dtype=torch.float64))
    assert float(w[100]) > float(w[0])  # t = pi/2 moves along the long axis


def test_disk_quadrature_has_the_uniform_disk_moments():
    points, _ = shape_points(Disk(3000), [0.5, -0.5, math.log(2.0)])
    r = (points - torch.tensor([0.5, -0.5], dtype=torch.float64)).norm(dim=1)
    assert float(r.mean()) == pytest.approx(2 * 2.0 / 3, rel=1e-3)
    assert float((r**2).mean()) == pytest.approx(2.0**2 / 2, rel=1e-3)


def test_sum_with_fixed_fractions_splits_the_mass():
    shape = Sum(Ring(10), WeightedPoints(1), fractions=(3.0, 1.0))
    _, w = shape_points(shape, [0.0, 0.0, 0.0, 5.0, 5.0])
    assert float(w[:10].sum()) == pytest.approx(0.75) and float(w[10]) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="takes 5 parameters"):
        shape_points(shape, [0.0, 0.0])


def test_kmeans_finds_separated_blobs_and_choose_k_reads_the_floor():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    x = np.concatenate([c + rng.normal(0, 0.1, (20, 2)) for c in centres])
    found, _ = kmeans(x, np.ones(len(x)), 3, seed=1)
    assert np.max(np.min(np.linalg.norm(found[:, None] - centres[None], axis=-1), axis=0)) < 0.1
    assert choose_k(np.array([0.9, 0.11, 0.5, 0.4, 0.08]), (2, 3, 4, 5, 6)) == 3
    assert choose_k(np.array([0.33, 0.40, 0.115, 0.25]), (2, 3, 4, 5)) == 4


def _ring_event(rng, m=80, r=0.3, centre=(0.05, -0.05), noise=0.0):
    t = rng.uniform(0, 2 * np.pi, m)
    x = np.stack([centre[0] + r * np.cos(t), centre[1] + r * np.sin(t)], 1) + rng.normal(0, noise, (m, 2)) if noise else \
        np.stack([centre[0] + r * np.cos(t), centre[1] + r * np.sin(t)], 1)
    return x, np.full(m, 1.0 / m)


def test_exact_mode_recovers_a_noise_free_ring():
    rng = np.random.default_rng(1)
    event = _ring_event(rng)
    result = fit_shape(event, Ring(100), config=FitConfig(mode="exact", steps=100, lr=0.015))
    cx, cy, log_r = result.params[0].tolist()
    assert math.hypot(cx - 0.05, cy + 0.05) < 0.02
    assert math.exp(log_r) == pytest.approx(0.3, rel=0.03)
    assert result.emd[0] == pytest.approx(result.exact[0])


def test_accurate_mode_reports_a_certified_value_equal_to_the_exact_emd():
    rng = np.random.default_rng(2)
    event = _ring_event(rng, m=60, noise=0.02)
    cfg = FitConfig(mode="accurate", steps=40, lr=0.01, critic=CriticConfig(hidden=16, depth=3, steps=60, warm_steps=1))
    result = fit_shape(event, Ring(80), config=cfg)
    assert result.emd[0] <= result.exact[0] * (1 + 1e-9)
    assert result.emd[0] == pytest.approx(result.exact[0], rel=1e-3)
    assert result.critic_value[0] <= result.exact[0]
    assert result.history[-1] < result.history[0]


def test_paper_mode_reports_the_critic_and_it_is_a_lower_bound():
    rng = np.random.default_rng(3)
    event = _ring_event(rng, m=40)
    cfg = FitConfig(mode="paper", steps=30)
    result = fit_shape(event, Ring(40), config=cfg)
    assert result.emd[0] == result.critic_value[0]
    assert result.emd[0] <= result.exact[0] + 1e-9
    assert result.refined[0] == pytest.approx(result.exact[0], rel=1e-3)


def test_fit_rejects_bad_events_and_shapes():
    with pytest.raises(ValueError, match="must be 2-D"):
        fit_shape((np.zeros((3, 3)), np.ones(3)), Ring(10))
    with pytest.raises(ValueError, match="negative weight"):
        fit_shape((np.zeros((3, 2)), -np.ones(3)), Ring(10))
    with pytest.raises(TypeError, match="Shape protocol"):
        fit_shape((np.zeros((3, 2)), np.ones(3)), object())
    with pytest.raises(ValueError, match="mode must be"):
        FitConfig(mode="magic")


def test_exact_emd_reference_matches_closed_form():
    assert exact_emd([[0.0, 0.0]], [1.0], [[3.0, 4.0]], [1.0]) == pytest.approx(5.0)
    assert exact_emd([[0.0, 0.0]], [1.0], [[3.0, 4.0]], [2.0], R=10.0) == pytest.approx(0.5 + 1.0)


@pytest.mark.slow
def test_accurate_fit_matches_the_exact_gradient_fit_on_noisy_rings():
    rng = np.random.default_rng(4)
    events = [_ring_event(rng, m=100, r=rng.uniform(0.15, 0.4), centre=tuple(rng.uniform(-0.2, 0.2, 2)), noise=0.02) for _ in range(2)]
    exact = fit_shape(events, Ring(200), config=FitConfig(mode="exact", steps=300))
    accurate = fit_shape(events, Ring(200), config=FitConfig(mode="accurate", steps=300))
    # The reported value is the exact EMD at the fitted parameters (certified, from below) ...
    assert np.all(accurate.emd <= accurate.exact * (1 + 1e-9))
    assert np.allclose(accurate.emd, accurate.exact, rtol=1e-3)
    # ... and the fit lands near the exact-gradient optimum: final exact EMD within 10%, centre and
    # log-radius within 0.03. The 1% target is measured in tools/bench/emd.py, where it is
    # missed on some events (worst 3.5% above; see the README).
    assert np.all(accurate.exact <= exact.exact * 1.10)
    assert float((accurate.params - exact.params).abs().max()) < 0.03


@pytest.mark.slow
def test_cluster_count_from_the_emd_curve():
    rng = np.random.default_rng(5)
    events, truth = [], []
    for n in (3, 4, 5):
        centres = rng.uniform(0, 4, (n, 2))
        x = np.concatenate([c + rng.normal(0, 0.1, (10, 2)) for c in centres])
        events.append((x, np.full(len(x), 1 / len(x))))
        truth.append(n)
    result = cluster_events(events, ks=(2, 3, 4, 5, 6), method="equal-weight", config=FitConfig(mode="accurate", steps=100, lr=0.02))
    assert result.k.tolist() == truth
    assert np.all(result.curves <= result.exact_curves * (1 + 1e-9))
