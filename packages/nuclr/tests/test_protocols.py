"""0.2 protocols: mass closure of the training rows, split files, intervals on shared rows."""

import json

import numpy as np
import pytest

from nuclr import data
from nuclr._cli import main
from nuclr.evaluate import bootstrap_rms, in_sample_baselines, make_splits, rms, summarize
from nuclr.model import TaskRows, TrainConfig

CFG = TrainConfig(width=8, depth=1, epochs=1)

# Independent statement of each task's formula: the nuclei whose masses enter it, written from the
# textbook definitions (S_n(Z,N) = B(Z,N) - B(Z,N-1), Q_alpha = B(4He) + B(Z-2,N-2) - B(Z,N), ...).
MASSES_USED = {
    "binding": [(0, 0)],
    "s_n": [(0, 0), (0, -1)],
    "s_p": [(0, 0), (-1, 0)],
    "s_2n": [(0, 0), (0, -2)],
    "s_2p": [(0, 0), (-2, 0)],
    "q_alpha": [(0, 0), (-2, -2)],
    "q_beta_minus": [(0, 0), (1, -1)],
    "q_ec": [(0, 0), (-1, 1)],
    "q_beta_minus_n": [(0, 0), (1, -2)],
    "charge_radius": [(0, 0)],
}
B_HE4 = 4 * 7073.9156  # keV, AME2020 B/A of 4He times 4


def test_independent_formulas_match_the_data():
    """The statements above reproduce the table's values from binding energies alone."""
    t = data.ground_states(2020, radii=False)
    b = {(z, n): v for z, n, v in zip(t.z, t.n, t.binding_energy_kev)}
    rows = t[(t.z >= 10) & (t.n >= 10) & t.mass_measured].head(400)
    for z, n, sn, s2p, qa, qbm in zip(rows.z, rows.n, rows.s_n_kev, rows.s_2p_kev, rows.q_alpha_kev, rows.q_beta_minus_kev):
        if np.isfinite(sn):
            assert sn == pytest.approx(b[(z, n)] - b[(z, n - 1)], abs=1e-6)
        if np.isfinite(s2p):
            assert s2p == pytest.approx(b[(z, n)] - b[(z - 2, n)], abs=1e-6)
        if np.isfinite(qa):
            assert qa == pytest.approx(b[(z - 2, n - 2)] + B_HE4 - b[(z, n)], abs=0.01)
        if np.isfinite(qbm):  # B(Z+1,N-1) - B(Z,N) + (m_n - m_H) c^2
            assert qbm == pytest.approx(b[(z + 1, n - 1)] - b[(z, n)] + 782.347, abs=0.01)


def _leaks(split) -> int:
    held = {tuple(p) for p in split.extra["held_out"]}
    tr = split.train
    count = 0
    for t, z, n in zip(tr.task.tolist(), tr.z.tolist(), tr.n.tolist()):
        if any((z + dz, n + dn) in held for dz, dn in MASSES_USED[tr.tasks[t]]):
            count += 1
    return count


def test_mass_closed_training_rows_use_no_held_out_mass():
    splits = make_splits("mass-closed", CFG, k=5, seed=0)
    assert len(splits) == 5
    for s in splits:
        assert len(s.extra["held_out"]) > 400
        assert _leaks(s) == 0
        assert len(s.train) > 13000  # closure removes neighbours' rows, not most of the data
    # the default nucleus-level name is the mass-closed protocol
    assert _leaks(make_splits("nucleus-kfold", CFG, k=5, seed=0)[0]) == 0
    (ame,) = make_splits("ame2016-to-2020", CFG, k=5, seed=0)
    assert _leaks(ame) == 0


def test_leaky_protocol_is_named_and_does_leak():
    s = make_splits("nucleus-leaky-derived", CFG, k=5, seed=0)[0]
    assert _leaks(s) > 1000  # neighbours' S/Q values carry the held-out masses
    held = {tuple(p) for p in s.extra["held_out"]}
    assert not held & set(zip(s.train.z.tolist(), s.train.n.tolist()))  # still no row *of* a held-out nucleus


def test_evaluate_writes_checkable_split_files(tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["evaluate", "--protocol", "mass-closed", "--epochs", "1", "--width", "8", "--depth", "1",
                 "--folds", "2", "--seeds", "0,1", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    for k in range(2):
        split = json.loads((out / "splits" / f"fold_{k}.json").read_text())
        assert set(split) == {"held_out", "train_rows"}
        held = {tuple(p) for p in split["held_out"]}
        assert held and split["train_rows"]
        for task, z, n in split["train_rows"]:
            assert not any((z + dz, n + dn) in held for dz, dn in MASSES_USED[task]), (task, z, n)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["seeds"] == [0, 1] and len(metrics["model"]["binding"]["per_seed"]) == 2
    md = (out / "metrics.md").read_text()
    dropped = metrics["dropped_nuclei"]
    assert "Dropped test nuclei" in md and "Dropped test nuclei" in printed
    for z, n in dropped:
        assert f"({z},{n})" in md and f"({z},{n})" in printed
    # every column is scored on the same rows, with the count shown
    nb = metrics["model"]["binding"]["n"]
    assert all(b["binding"]["n"] == nb for b in metrics["baselines"].values())
    assert f"| rows scored | {nb} |" in md


def test_rms_refuses_nan():
    assert rms(np.array([1.0, 3.0]), np.array([0.0, 0.0])) == pytest.approx(np.sqrt(5.0))
    with pytest.raises(ValueError, match="NaN"):
        rms(np.array([1.0, np.nan]), np.array([0.0, 0.0]))


def _rows(values, nuclei, task=0, tasks=("binding",)):
    nuclei = np.asarray(nuclei)
    z = nuclei // 1000
    n = nuclei % 1000
    k = len(values)
    return TaskRows(z, n, np.full(k, task), np.asarray(values, float), np.zeros(k), np.ones(k), tasks, nuclei)


def test_summarize_scores_everyone_on_the_intersection():
    truth = np.zeros(6)
    test = _rows(truth, [8008, 8009, 8010, 9009, 9010, 9011])
    model = np.array([[1.0, 1.0, 1.0, 1.0, 1.0, 100.0], [1.0, 1.0, 1.0, 1.0, 1.0, 100.0]])
    base_full = np.full(6, 2.0)
    base_gap = np.array([3.0, 3.0, 3.0, 3.0, 3.0, np.nan])  # no value for the model's worst nucleus
    base_rare = np.array([5.0, np.nan, np.nan, np.nan, np.nan, np.nan])
    out = summarize(test, model, {"full": base_full, "gap": base_gap, "rare": base_rare}, n_boot=200)
    assert out["model"]["binding"]["n"] == 5
    assert out["model"]["binding"]["rms"] == pytest.approx(1.0)  # the 100-keV row is out for everyone
    assert out["baselines"]["full"]["binding"]["rms"] == pytest.approx(2.0)
    assert out["baselines"]["full"]["binding"]["n"] == 5
    assert out["baselines"]["gap"]["binding"]["rms"] == pytest.approx(3.0)
    assert out["baselines"]["rare"]["binding"]["rms"] is None  # below the coverage threshold: not a comparator


def test_bootstrap_interval():
    rng = np.random.default_rng(0)
    err = rng.normal(0, 300, 2000)
    groups = np.repeat(np.arange(1000), 2)
    boot = bootstrap_rms(err, groups, n_boot=400, seed=1)[:, 0]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    full = np.sqrt(np.mean(err**2))
    assert lo < full < hi and hi - lo < 0.2 * full
    assert np.allclose(bootstrap_rms(np.full(10, -7.0), np.arange(10), n_boot=20), 7.0)


def test_in_sample_marks():
    marks = in_sample_baselines("ame2016-to-2020", ["BSkG3", "WS4", "WS3", "SEMF (fitted)"])
    assert marks == {"BSkG3": True, "WS4": False, "WS3": False, "SEMF (fitted)": False}
    assert in_sample_baselines("mass-closed", ["WS4", "SEMF (fitted)"]) == {"WS4": True, "SEMF (fitted)": False}
