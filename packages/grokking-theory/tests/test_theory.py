import numpy as np
import pytest
import torch

from grokking_theory import (
    critical_fraction,
    effective_flow,
    effective_loss,
    equation_matrix,
    hessian_eigenvalues,
    predicted_time_to_structure,
    rqi,
)
from grokking_theory._combinatorics import nullity, parallelogram_samples
from grokking_theory._theory import _fixing_size


def test_effective_loss_zero_on_lines_invariant_and_gradcheck():
    lin = torch.arange(10.0, dtype=torch.float64)[:, None]
    assert effective_loss(lin, 10).item() == pytest.approx(0.0, abs=1e-12)
    e = torch.randn(10, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    base = effective_loss(e, 10).item()
    assert base > 0
    assert effective_loss(3.7 * e + 1.2, 10).item() == pytest.approx(base, rel=1e-10)
    train = np.random.RandomState(0).choice(55, 40, replace=False)
    e.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: effective_loss(x, 10, train), (e,))


def test_effective_flow_conserves_sum_and_norm_and_reaches_a_line():
    rng = np.random.default_rng(0)
    e0 = rng.uniform(-0.5, 0.5, 10)
    e0 = (e0 - e0.mean()) / e0.std(ddof=1)  # the official z-scored start: Z0 = p - 1
    traj, losses = effective_flow(e0, 10, eta=1e-3, steps=3000)
    assert np.abs(traj.sum(1)).max() < 1e-9  # translation mode conserved
    assert losses[-1] < 1e-6 * losses[0]
    assert rqi(traj[-1]) == 1.0
    # Z0 is conserved by the continuous flow; the Euler steps drift by O(eta) in total
    drift = {}
    for eta, steps in ((1e-3, 3000), (1e-4, 30000)):
        tr, _ = effective_flow(e0, 10, eta=eta, steps=steps)
        z = (tr**2).sum(1)
        drift[eta] = np.abs(z / z[0] - 1).max()
    assert drift[1e-4] < drift[1e-3] / 5
    assert drift[1e-4] < 1e-3


def test_hessian_spectrum_and_time_scale_full_data():
    lam = hessian_eigenvalues(10)
    assert abs(lam[0]) < 1e-10 and abs(lam[1]) < 1e-10
    A = equation_matrix(10).astype(float)
    assert lam[2] == pytest.approx(2 * np.linalg.eigvalsh(A.T @ A)[2] / 9)
    assert lam[2] == pytest.approx(60 / 9)
    assert predicted_time_to_structure(10, eta=1e-3)["n_h"] == pytest.approx(150.0)


def test_fixing_size_matches_prefix_scan():
    p = 8
    A = equation_matrix(p).astype(float)
    idx = parallelogram_samples(p)
    rng = np.random.default_rng(5)
    for _ in range(5):
        order = rng.permutation(36)
        found = _fixing_size(p, order, A, idx)
        for k in range(1, 37):
            mask = np.zeros(36, bool)
            mask[order[:k]] = True
            rows = A[mask[idx[:, 0]] & mask[idx[:, 1]]]
            if nullity(rows, p) == 2:
                assert found == k
                break


def test_critical_fraction_p10_matches_official_monte_carlo():
    res = critical_fraction(10, trials=3000, seed=1)
    # official 10^4-trial values: P(22) = 0.427, P(23) = 0.580, r_c = 22.4/55 ~ 0.41
    assert res["prob_fixed"][22] == pytest.approx(0.427, abs=0.03)
    assert res["prob_fixed"][23] == pytest.approx(0.580, abs=0.03)
    assert res["r_c"] == pytest.approx(0.41, abs=0.01)


def test_critical_fraction_decreases_with_p():
    rcs = [critical_fraction(p, trials=200, seed=0)["r_c"] for p in (6, 10, 20)]
    assert rcs[0] > rcs[1] > rcs[2]
    assert rcs[0] == pytest.approx(0.60, abs=0.04)
    assert rcs[2] == pytest.approx(0.23, abs=0.03)


@pytest.mark.parametrize("n_train", [None, 40, 30])
def test_autograd_hessian_of_effective_loss_equals_hessian_eigenvalues(n_train):
    p = 10
    train = None if n_train is None else np.random.RandomState(n_train).choice(55, n_train, replace=False)
    line = torch.arange(p, dtype=torch.float64)
    line = (line - line.mean()) / line.std()  # z-scored ground state: sum |E - mean|^2 = p - 1
    H = torch.autograd.functional.hessian(lambda e: effective_loss(e, p, train), line)
    ours = np.linalg.eigvalsh(H.numpy())
    assert np.allclose(ours, hessian_eigenvalues(p, train), atol=1e-9)
    if n_train is None:  # 2 A^T A / 9 over all 70 parallelograms: lambda_3 = 60/9 (no 1/70)
        assert ours[2] == pytest.approx(60 / 9)


def test_effective_loss_value_is_the_summed_l0_over_z0():
    e = np.random.default_rng(3).standard_normal(10)
    A = equation_matrix(10).astype(float)
    expect = ((A @ e) ** 2).sum() / ((e - e.mean()) ** 2).sum()
    assert effective_loss(torch.tensor(e), 10).item() == pytest.approx(expect, rel=1e-12)


def test_n_c_standard_error_matches_the_spread_over_independent_runs():
    runs = [critical_fraction(8, trials=200, seed=s, bootstrap=100) for s in range(12)]
    spread = float(np.std([r["n_c"] for r in runs], ddof=1))
    reported = float(np.mean([r["n_c_stderr"] for r in runs]))
    assert 0.5 * spread < reported < 2.0 * spread
    assert runs[0]["r_c_stderr"] == pytest.approx(runs[0]["n_c_stderr"] / 36)
    # the binomial error of a probability is reported under its own name, not as the error of n_c
    assert runs[0]["prob_stderr_at_half"] == pytest.approx(np.sqrt(0.25 / 200))
    assert "stderr_at_n_c" not in runs[0]


def test_trajectories_command_starts_both_flows_from_the_initial_embedding(tmp_path, capsys):
    import json

    from grokking_theory import ToyConfig, initial_state
    from grokking_theory._cli import main
    from grokking_theory._theory import network_vs_effective

    cfg = ToyConfig(width=32, steps=60)
    res = network_vs_effective(cfg)
    e0 = initial_state(cfg).reprs.numpy()[:, 0].astype(np.float64)
    z0 = (e0 - e0.mean()) / e0.std(ddof=1)
    assert np.allclose(res["effective"][0], z0, atol=1e-12)  # the flow's first point: the start
    assert res["network"].shape == res["effective"].shape == (60, 10)
    # the network's first recorded point is after one update: close to, not equal to, the start
    assert 0 < np.abs(res["network"][0] - z0).max() < 0.05
    out = tmp_path / "traj"
    assert main(["trajectories", "--steps", "30", "--quiet", "--device", "cpu",
                 "--out", str(out)]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["rows"] == "all" and m["steps"] == 30
    assert (out / "trajectories.png").stat().st_size > 1000 and (out / "record.json").exists()


@pytest.mark.slow
def test_network_and_effective_trajectories_end_on_the_same_line():
    from grokking_theory import ToyConfig
    from grokking_theory._theory import network_vs_effective

    m = network_vs_effective(ToyConfig(steps=900))["metrics"]
    assert m["network_step_rqi"] == 800  # the published run: RQI > 0.95 at 800
    # the official effective flow (all of P0, Z0 frozen) forms the line within ~6 n_h = 900 steps
    assert m["effective_step_rqi"] is not None and m["effective_step_rqi"] < 6 * m["predicted_n_h"]
    assert m["final_corr_abs"] > 0.99  # both end on the same ordered line (up to a mirror)
