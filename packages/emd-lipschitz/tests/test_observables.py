"""SHAPER-style observables and the clustering rule: closed forms and the exact LP as oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emd_lipschitz import choose_k_elbow, cluster_events, diskiness, emd, nsubjettiness, ringiness


def _blobs(rng, centres, pops, sigma=0.1):
    x = np.concatenate([c + rng.normal(0, sigma, (p, 2)) for c, p in zip(centres, pops)])
    return x, np.full(len(x), 1.0 / len(x))


def test_nsubjettiness_is_the_exact_emd_to_its_weighted_centres():
    rng = np.random.default_rng(0)
    x, a = _blobs(rng, [(0, 0), (2, 0), (1, 2)], [5, 10, 25])
    for beta in (1.0, 2.0):
        result = nsubjettiness([(x, a)], 3, beta=beta)
        centres = result.params[0].reshape(3, 2)
        lp = emd(x, a, centres, result.weights[0], beta=beta, method="exact").value  # network simplex, independent of Lloyd
        assert result.values[0] == pytest.approx(lp, rel=1e-9)
        assert sorted(np.round(result.weights[0] * 40).astype(int).tolist()) == [5, 10, 25]


def test_nsubjettiness_closed_forms():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 2))
    a = rng.dirichlet(np.ones(50))
    mean = (a[:, None] * x).sum(0)
    assert nsubjettiness([(x, a)], 1, beta=2.0).values[0] == pytest.approx(float((a * ((x - mean) ** 2).sum(1)).sum()), rel=1e-9)
    square = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    assert nsubjettiness([(square, np.full(4, 0.25))], 1, R=0.5).values[0] == pytest.approx(math.sqrt(2) / 0.5, rel=1e-6)


def test_ringiness_and_diskiness_tell_a_ring_from_a_disk():
    rng = np.random.default_rng(2)
    t = rng.uniform(0, 2 * np.pi, 120)
    ring = (np.c_[0.3 * np.cos(t), 0.3 * np.sin(t)] + 0.1, np.full(120, 1 / 120))
    rho = np.sqrt(rng.uniform(0, 1, 120)) * 0.3
    disk = (np.c_[rho * np.cos(t), rho * np.sin(t)], np.full(120, 1 / 120))
    r = ringiness([ring, disk])
    d = diskiness([ring, disk])
    assert r.values[0] < 0.5 * r.values[1]
    assert d.values[1] < 0.5 * d.values[0]
    assert math.exp(r.params[0, 2]) == pytest.approx(0.3, rel=0.05)
    assert r.params[0, :2] == pytest.approx([0.1, 0.1], abs=0.02)


def test_elbow_rule():
    assert choose_k_elbow(np.array([1.0, 0.2, 0.05, 0.045, 0.04]), (1, 2, 3, 4, 5), 0.55) == 3
    assert choose_k_elbow(np.array([1.0, 0.9, 0.8]), (1, 2, 3), 0.55) == 1


def test_cluster_k_holds_for_unequal_populations():
    rng = np.random.default_rng(3)
    events, truth = [], []
    for centres, pops in (([(0, 0), (2, 0), (1, 2)], [5, 10, 25]), ([(0, 0), (3, 3)], [25, 5]), ([(0, 0), (2, 0), (0, 2), (2, 2)], [10, 10, 10, 10])):
        events.append(_blobs(rng, centres, pops))
        truth.append(len(centres))
    result = cluster_events(events)
    assert result.k.tolist() == truth
    assert result.centres[0].shape == (3, 2)


def test_bad_n_is_refused():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="larger than the number of particles"):
        nsubjettiness([(x + np.arange(3)[:, None], np.ones(3))], 4)
    with pytest.raises(ValueError, match="N must be"):
        nsubjettiness([(x, np.ones(3))], 0)
    with pytest.raises(ValueError, match="larger than the number of particles"):
        cluster_events([(x + np.arange(3)[:, None], np.ones(3))], ks=(1, 2, 3, 4))
