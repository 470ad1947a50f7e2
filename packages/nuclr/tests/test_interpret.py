"""Interpretability pieces: PCA parity metric, shell terms, compact formula, the full pipeline."""

import json

import numpy as np
import pytest

from nuclr import data
from nuclr._dataset import build_rows
from nuclr.interpret import compact_formula, interpret, shell_features
from nuclr.model import TrainConfig, train


def test_shell_features_closed_form():
    sh = shell_features(np.array([50, 52, 28]), np.array([82, 86, 30]))
    np.testing.assert_allclose(sh[:, 0], [0, 2, 0])
    np.testing.assert_allclose(sh[:, 1], [0, 4, 2])
    np.testing.assert_allclose(sh[:, 2], [0, 8 / 6, 0])


def test_compact_formula_on_measured_binding():
    f = data.ground_states(2020, radii=False)
    m = f[(f.z >= 8) & (f.n >= 8) & f.mass_measured]
    z, n, b = m.z.to_numpy(), m.n.to_numpy(), m.binding_energy_kev.to_numpy()
    res = compact_formula(z, n, b, max_terms=15)
    rms = np.sqrt(np.mean((res["pred_kev"] - b) ** 2))
    assert res["n_terms"] <= 15
    assert rms < 1600  # liquid drop + BW2 extras + shell terms beat BW2's 1.68 MeV


def _tiny_model():
    cfg = TrainConfig(width=16, depth=1, epochs=3)
    rows = build_rows(data.ground_states(2020), cfg.tasks)
    return train(rows, cfg, seed=0)


def test_interpret_without_symbolic(tmp_path):
    md = interpret(_tiny_model(), tmp_path, symbolic=False)
    s = json.loads((tmp_path / "interpret.json").read_text())
    assert set(s["probes"]) == {"volume", "surface", "coulomb", "asymmetry", "pairing"}
    assert 0 < s["hidden_evr"][0] <= 1 and abs(sum(s["hidden_evr"]) - 1) < 0.5
    assert 0.5 <= s["n_parity_accuracy"] <= 1
    # the volume term (A) is almost perfectly linear in a good representation of (Z, N)
    assert s["probes"]["volume"]["cv_r2_from_5_pcs"] > 0.5
    for f in ("embedding_helix.png", "embedding_parity.png", "hidden_pca.png"):
        assert (tmp_path / f).stat().st_size > 10_000
    assert "Interpretability" in md


@pytest.mark.slow
def test_interpret_with_gplearn(tmp_path):
    interpret(_tiny_model(), tmp_path, symbolic=True, quick=True, figures=False)
    s = json.loads((tmp_path / "interpret.json").read_text())
    assert len(s["symbolic_pcs"]) == 3
    assert all(p["length"] >= 1 and np.isfinite(p["r2"]) for p in s["symbolic_pcs"])
    assert s["compact_formula_with_symbolic_pcs"]["n_terms"] <= 15
