"""Model shape/validation, Lipschitz certificate, training mathematics, checkpoints and resume."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from nuclr import model as M
from nuclr._dataset import TaskRows


def _synthetic_rows(tasks=("s_n", "s_p"), seed=0):
    rng = np.random.default_rng(seed)
    z = rng.integers(8, 40, 600)
    n = rng.integers(8, 60, 600)
    t = rng.integers(0, len(tasks), 600)
    # smooth targets on very different scales (per-task normalisation must handle both)
    value = np.where(t == 0, 1000.0 * np.sin(z / 7.0) + 30.0 * n, 0.01 * (z - n))
    return TaskRows(z, n, t, value, np.zeros(600), np.ones(600), tuple(tasks), z * 1000 + n)


def test_forward_is_gather_of_all_outputs():
    net = M.NuCLR(M.ModelConfig(n_tasks=3, width=16, depth=2))
    z, n, t = torch.tensor([8, 9, 50]), torch.tensor([8, 10, 82]), torch.tensor([0, 2, 1])
    all_out = net.forward_all(z, n, t)
    assert all_out.shape == (3, 3)
    torch.testing.assert_close(net(z, n, t), all_out[torch.arange(3), t])
    assert net.hidden(z, n, t).shape == (3, 16)


@pytest.mark.parametrize(("z", "n", "t", "exc"), [([200], [8], [0], ValueError), ([8], [-1], [0], ValueError),
                                                 ([8], [8], [5], ValueError)])
def test_bad_indices(z, n, t, exc):
    net = M.NuCLR(M.ModelConfig(n_tasks=3, width=8, depth=1))
    with pytest.raises(exc, match="must lie in"):
        net(torch.tensor(z), torch.tensor(n), torch.tensor(t))
    with pytest.raises(TypeError, match="integer"):
        net(torch.tensor([8.0]), torch.tensor([8]), torch.tensor([0]))


def test_bad_config():
    with pytest.raises(ValueError, match="width"):
        M.ModelConfig(width=0)
    with pytest.raises(ValueError, match="body"):
        M.ModelConfig(body="transformer")
    with pytest.raises(ValueError, match="tasks"):
        M.TrainConfig(tasks=("binding", "nonsense"))
    with pytest.raises(ValueError, match="residual_table"):
        M.TrainConfig(residual_table="WS9")


def test_lipschitz_body_certified():
    from lipschitz_core import estimate_lipschitz, lipschitz_bound

    cfg = M.ModelConfig(n_tasks=4, width=16, depth=2, body="lipschitz", lipschitz_const=3.0)
    net = M.NuCLR(cfg)
    head = nn.Sequential(net.body, net.readout)
    bound = lipschitz_bound(head, "two-inf")
    assert bound <= 3.0 + 1e-6
    x = torch.randn(64, 48)
    assert estimate_lipschitz(head, x, "two-inf", steps=20) <= bound + 1e-6


def test_training_fits_and_normalises():
    rows = _synthetic_rows()
    cfg = M.TrainConfig(tasks=("s_n", "s_p"), width=32, depth=1, epochs=80, batch_size=200, lr=1e-2)
    trained = M.train(rows, cfg, seed=0)
    for k in range(2):
        y = rows.value[rows.task == k]
        assert trained.mean[k] == pytest.approx(y.mean())
        assert trained.std[k] == pytest.approx(y.std())
    pred = trained.predict_rows(rows.z, rows.n, rows.task)
    for k in range(2):
        sel = rows.task == k
        rel = np.sqrt(np.mean((pred[sel] - rows.value[sel]) ** 2)) / rows.value[sel].std()
        assert rel < 0.15, (k, rel)  # both tasks learned although their scales differ by 1e5


def test_lr_schedule():
    from nuclr._train import _lr_factor

    assert _lr_factor(0, 100, 10, 0.01) == pytest.approx(0.1)
    assert _lr_factor(10, 100, 10, 0.01) == pytest.approx(1.0)
    assert _lr_factor(100, 100, 10, 0.01) == pytest.approx(0.01)
    mid = _lr_factor(55, 100, 10, 0.0)
    assert mid == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


def test_checkpoint_roundtrip_and_resume(tmp_path):
    rows = _synthetic_rows()
    cfg = M.TrainConfig(tasks=("s_n", "s_p"), width=16, depth=1, epochs=4, batch_size=128)
    straight = M.train(rows, cfg, seed=3)
    steps_per_epoch = math.ceil(len(rows) / 128)
    M.train(rows, cfg, seed=3, out_dir=tmp_path, stop_after=2 * steps_per_epoch)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "model.json").exists()
    resumed = M.train(rows, cfg, seed=3, out_dir=tmp_path, resume=True)
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    loaded = M.Trained.load(tmp_path)
    np.testing.assert_allclose(loaded.predict_rows(rows.z, rows.n, rows.task),
                               resumed.predict_rows(rows.z, rows.n, rows.task), rtol=1e-6)


def test_nan_targets_rejected():
    rows = _synthetic_rows()
    rows.value[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        M.train(rows, M.TrainConfig(tasks=("s_n", "s_p"), width=8, depth=1, epochs=1), seed=0)
