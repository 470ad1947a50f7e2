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
    # the compact formula's bar is the liquid drop fitted to the same nuclei (independent fit here)
    from sklearn.linear_model import LinearRegression

    f = data.ground_states(2020, radii=False)
    m = f[(f.z >= 8) & (f.n >= 8) & f.mass_measured]
    z, n, b = m.z.to_numpy(float), m.n.to_numpy(float), m.binding_energy_kev.to_numpy()
    a = z + n
    pair = np.where((z % 2 == 0) & (n % 2 == 0), 1.0, np.where((z % 2 == 1) & (n % 2 == 1), -1.0, 0.0))
    x = np.stack([a, a ** (2 / 3), z * (z - 1) / a ** (1 / 3), (n - z) ** 2 / a, pair / np.sqrt(a)], 1)
    lr = LinearRegression(fit_intercept=False).fit(x, b)
    semf_rms = np.sqrt(np.mean((lr.predict(x) - b) ** 2))
    cf = s["compact_formula"]
    assert cf["semf_fitted_same_nuclei_rms_kev"] == pytest.approx(semf_rms, rel=1e-6)
    assert cf["beats_semf_fitted_same_nuclei"] == (cf["binding_rms_kev"] < semf_rms and cf["n_terms"] <= 15)
    assert "below the SEMF fitted to the same nuclei" in md
    # control: the same library fitted straight to the measured energies, and the record payload
    lib = s["library_fitted_to_measured"]
    assert lib["n_terms"] <= 15 and lib["binding_rms_kev"] < semf_rms  # 15 terms incl. the SEMF's beat the SEMF
    from nuclr._interpret import interpret_payload

    pay = interpret_payload(s, model_desc="tiny", seed=0)
    table = {t["name"]: t for t in pay["tables"]}["compact_formula"]
    verdicts = {r[0]: r[3] for r in table["rows"]}
    assert verdicts["compact formula: term library fitted to the network"] == (
        "met" if cf["beats_semf_fitted_same_nuclei"] else "missed")
    assert table["rows"][0][2] == pytest.approx(semf_rms, rel=1e-6)


def test_symbolic_regression_with_pyoperon_recovers_a_product():
    from nuclr.interpret import symbolic_backend, symbolic_components

    assert symbolic_backend() == "operon"  # pyoperon is a dependency; gplearn is the fallback
    rng = np.random.default_rng(0)
    z = rng.integers(8, 100, 400)
    n = rng.integers(8, 150, 400)
    pcs = (z * n / 1000.0 + 0.01 * z)[:, None]
    (res,) = symbolic_components(z, n, pcs, quick=True, seed=0, backend="operon")
    assert res["backend"] == "pyoperon" and res["r2"] > 0.99, res["program"]
    with pytest.raises(ValueError, match="backend"):
        symbolic_backend("pysr")


@pytest.mark.slow
def test_interpret_with_symbolic_regression(tmp_path):
    interpret(_tiny_model(), tmp_path, symbolic=True, quick=True, figures=False)
    s = json.loads((tmp_path / "interpret.json").read_text())
    assert len(s["symbolic_pcs"]) == 3
    assert all(p["length"] >= 1 and np.isfinite(p["r2"]) for p in s["symbolic_pcs"])
    c2 = s["compact_formula_with_symbolic_pcs"]
    assert c2["n_terms"] <= 15
    semf = s["compact_formula"]["semf_fitted_same_nuclei_rms_kev"]
    assert c2["beats_semf_fitted_same_nuclei"] == (c2["binding_rms_kev"] < semf)


@pytest.mark.slow
def test_interpret_cli_writes_a_record_payload(tmp_path):
    from nuclr._cli import main

    model_dir = tmp_path / "m"
    assert main(["train", "--out", str(model_dir), "--epochs", "1", "--width", "16", "--depth", "1", "--quiet",
                 "--device", "cpu"]) == 0
    pay_path = tmp_path / "rec" / "record.json"
    assert main(["interpret", "--model", str(model_dir), "--out", str(tmp_path / "i"), "--no-symbolic", "--quiet",
                 "--device", "cpu", "--payload", str(pay_path)]) == 0
    pay = json.loads(pay_path.read_text())
    assert pay["experiment"] == "nuclr_interpret" and {"compact_formula", "probes"} <= {t["name"] for t in pay["tables"]}
    assert "nuclr train` on all measured nuclei" in pay["config"]["model"]
