"""Mass-surface mode, muP groups, predict's refusal of untrained Z/N, the prediction table."""

import json

import numpy as np
import pandas as pd
import pytest

from nuclr import data
from nuclr._cli import main
from nuclr.model import TrainConfig, build_rows, make_optimizer, train


def _small_rows(tasks=("binding", "s_n", "s_2p", "q_alpha")):
    t = data.ground_states(2020, radii=False)
    t = t[(t.z >= 20) & (t.z <= 40)]
    return build_rows(t, tasks)


def test_surface_predictions_are_differences_of_the_binding_prediction():
    rows = _small_rows()
    cfg = TrainConfig(tasks=rows.tasks, width=16, depth=1, epochs=2, observables="surface")
    model = train(rows, cfg, seed=0)
    z, n = np.arange(24, 34), np.arange(30, 40)
    # independent float64 route: predicted B -> mass excess -> nuclr.data.derive_observables
    zz, nn = np.meshgrid(np.arange(18, 36), np.arange(26, 42), indexing="ij")
    zz, nn = zz.ravel(), nn.ravel()
    b = model.predict_rows(zz, nn, np.zeros(zz.size, int))
    delta = zz * data.MASS_EXCESS_HYDROGEN_KEV + nn * data.MASS_EXCESS_NEUTRON_KEV - b
    obs = data.derive_observables(zz, nn, delta)
    idx = {(a, c): i for i, (a, c) in enumerate(zip(zz.tolist(), nn.tolist()))}
    pos = [idx[(a, c)] for a, c in zip(z.tolist(), n.tolist())]
    for k, col in ((1, "s_n_kev"), (2, "s_2p_kev"), (3, "q_alpha_kev")):
        got = model.predict_rows(z, n, np.full(z.size, k))
        np.testing.assert_allclose(got, obs[col][pos], atol=1e-3)
    # a heads-mode model's own S_n head is a different number from its mass surface
    heads = train(rows, TrainConfig(tasks=rows.tasks, width=16, depth=1, epochs=2, observables="heads"), seed=0)
    own = heads.predict_rows(z, n, np.full(z.size, 1))
    via = heads.predict_rows(z, n, np.full(z.size, 1), via="surface")
    assert np.sqrt(np.mean((own - via) ** 2)) > 10.0


def test_surface_training_learns_separation_energies_through_the_mass():
    rows = _small_rows(("binding", "s_n"))
    cfg = TrainConfig(tasks=rows.tasks, width=32, depth=1, epochs=80, lr=1e-2, observables="surface")
    model = train(rows, cfg, seed=0)
    pred = model.predict_rows(rows.z, rows.n, rows.task)
    sn = rows.task == 1
    before = np.sqrt(np.mean((rows.value[sn] - rows.value[sn].mean()) ** 2))
    after = np.sqrt(np.mean((pred[sn] - rows.value[sn]) ** 2))
    assert after < 0.3 * before, (after, before)


def test_surface_needs_binding():
    with pytest.raises(ValueError, match="binding"):
        TrainConfig(tasks=("s_n",), observables="surface")


def test_mup_scales_hidden_learning_rates_and_readout():
    from nuclr.model import NuCLR

    cfg = TrainConfig(width=128, depth=2, optimizer="mup", mup_base_width=32, lr=1e-2)
    assert cfg.model_config().readout_multiplier == pytest.approx(0.25)
    net = NuCLR(cfg.model_config())
    opt = make_optimizer(net, cfg)
    body_w = {id(m.weight) for m in net.body.modules() if hasattr(m, "weight")}
    for g in opt.param_groups:
        for p in g["params"]:
            expected = 1e-2 * 0.25 if id(p) in body_w else 1e-2
            assert g["lr"] == pytest.approx(expected)
    plain = make_optimizer(NuCLR(TrainConfig(width=128).model_config()), TrainConfig(width=128))
    assert all(g["lr"] == pytest.approx(TrainConfig().lr) for g in plain.param_groups)


def test_predict_refuses_nuclei_outside_training(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--epochs", "1", "--width", "8", "--depth", "1", "--quiet",
                 "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["predict", "--z", "3", "--n", "3", "--model", str(run)]) == 2  # 6Li: Z, N < 8 never trained
    err = capsys.readouterr().err
    assert "never occurs in the training data" in err and "Z=3" in err and err.count("\n") == 1
    meta = json.loads((run / "model.json").read_text())
    assert 3 not in meta["seen_z"] and 50 in meta["seen_z"]


def test_table_ensemble_flags_and_drip_lines(tmp_path, capsys):
    models = tmp_path / "models"
    for seed in (0, 1):
        assert main(["train", "--out", str(models / f"s{seed}"), "--epochs", "2", "--width", "8", "--depth", "1",
                     "--seed", str(seed), "--quiet", "--device", "cpu"]) == 0
    out = tmp_path / "pred.csv"
    assert main(["table", "--models", str(models), "--out", str(out)]) == 0
    assert "ensemble of 2 models" in capsys.readouterr().out
    t = pd.read_csv(out)
    drip = pd.read_csv(tmp_path / "pred_driplines.csv")
    assert (tmp_path / "pred.png").stat().st_size > 1000
    assert set(t.flag) <= {"measured", "estimated", "new"} and "measured" in set(t.flag)
    assert (t.binding_sigma > 0).all()  # two different seeds disagree somewhere, sigma is sample std
    f = data.ground_states(2020, radii=False)
    fe = t[(t.z == 26) & (t.n == 30)].iloc[0]
    assert fe.flag == "measured" and fe.binding_nubase2020 == pytest.approx(data.lookup(f, 26, 30).binding_energy_kev)
    est = f[~f.mass_measured & (f.z >= 8) & (f.n >= 8)]
    z0, n0 = int(est.z.iloc[0]), int(est.n.iloc[0])
    hit = t[(t.z == z0) & (t.n == n0)]
    assert hit.empty or hit.flag.iloc[0] == "estimated"
    # drip line definition: S_2n(mean) > 0 at the drip nucleus, <= 0 one step beyond (when reached)
    for _, d in drip.dropna(subset=["n_drip_2n"]).iterrows():
        at = t[(t.z == d.z) & (t.n == d.n_drip_2n)]
        beyond = t[(t.z == d.z) & (t.n == d.n_drip_2n + 1)]
        assert at.s_2n_mean.iloc[0] > 0
        assert beyond.empty or beyond.s_2n_mean.iloc[0] <= 0
    # nothing past the looser neutron drip line of its Z (when both lines are reached)
    for _, d in drip.iterrows():
        if np.isfinite(d.n_drip_1n) and np.isfinite(d.n_drip_2n):
            assert t[t.z == d.z].n.max() == max(d.n_drip_1n, d.n_drip_2n)


def test_semf_control_targets_come_from_one_liquid_drop():
    from nuclr._control import semf_control_rows
    from nuclr._physics import SemfFit

    rows = _small_rows(("binding", "s_n", "q_alpha"))
    ctl = semf_control_rows(rows)
    b = rows.task == 0
    semf = SemfFit.fit(rows.z[b], rows.n[b], rows.value[b])
    np.testing.assert_allclose(ctl.value[b], semf.binding_energy_kev(rows.z[b], rows.n[b]))
    sn = rows.task == 1
    expected = semf.binding_energy_kev(rows.z[sn], rows.n[sn]) - semf.binding_energy_kev(rows.z[sn], rows.n[sn] - 1)
    np.testing.assert_allclose(ctl.value[sn], expected, atol=1e-6)
    assert not np.allclose(ctl.value, rows.value)


def test_shell_signal_sees_kinks_at_magic_numbers_only():
    from nuclr._control import shell_signal

    idx = np.arange(8, 151)
    smooth = np.stack([np.sin(idx / 40.0), (idx / 100.0) ** 2], 1)
    magic = np.array([8, 20, 28, 50, 82, 126])
    shells = np.stack([np.min(np.abs(idx[:, None] - magic), 1).astype(float), np.cos(idx / 30.0)], 1)
    w = np.array([0.5, 0.5])
    assert shell_signal(idx, smooth, w) < 0.05
    assert shell_signal(idx, shells, w) > 0.3


def test_consistency_is_reported_for_every_mode():
    """evaluate reports, for heads AND surface models, the RMS between each derived observable the
    model reports and the same observable from its own binding predictions (surface: 0 by construction)."""
    from nuclr._evaluate import evaluate

    for mode in ("heads", "surface"):
        cfg = TrainConfig(tasks=("binding", "s_n", "q_alpha"), width=8, depth=1, epochs=1, observables=mode)
        res = evaluate("mass-closed", cfg, k=5, folds_to_run=1, seed=0)
        cons = res["consistency_rms"]
        assert set(cons) == {"s_n", "q_alpha"}, (mode, cons)
        if mode == "surface":
            assert all(v < 1e-6 for v in cons.values()), cons
        else:
            assert all(v > 10.0 for v in cons.values()), cons
            assert res["heads_vs_surface_rms"] == cons


def test_consistency_loss_ties_the_heads_to_the_mass_surface():
    rows = _small_rows(("binding", "s_n"))
    z, n, k = rows.z[rows.task == 1], rows.n[rows.task == 1], np.ones(int((rows.task == 1).sum()), int)

    def gap(weight):
        cfg = TrainConfig(tasks=rows.tasks, width=32, depth=1, epochs=40, lr=1e-2, consistency_weight=weight)
        m = train(rows, cfg, seed=0)
        return np.sqrt(np.mean((m.predict_rows(z, n, k) - m.predict_rows(z, n, k, via="surface")) ** 2))

    plain, tied = gap(0.0), gap(10.0)
    assert tied < 0.5 * plain, (tied, plain)


def test_consistency_weight_needs_heads_mode():
    with pytest.raises(ValueError, match="consistency_weight"):
        TrainConfig(observables="surface", consistency_weight=1.0)
    with pytest.raises(ValueError, match="consistency_weight"):
        TrainConfig(consistency_weight=-1.0)
