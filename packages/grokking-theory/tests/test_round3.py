"""Progressive transformer records, the App. J digits diagram, and the s3 / digits-diagram CLIs."""

import json

import numpy as np
import pytest
import torch

from grokking_theory._cli import main
from grokking_theory._digits import DigitsConfig, digits_phase_diagram, make_mlp, train_digits


def test_transformer_sweep_cut_short_keeps_partial_curves(tmp_path, capsys):
    # 0.2's effective-dimension GPU job left nothing: no run finished inside the window, and only
    # finished runs were written. A run cut short now leaves its curves so far in record.json.
    out = tmp_path / "ed"
    assert main(["transformer-sweep", "--axes", "seeds", "--no-early-stop", "--quick", "--p", "7",
                 "--d-model", "32", "--heads", "2", "--d-mlp", "32", "--steps", "100000", "--seeds", "0,1",
                 "--max-seconds", "3", "--progress-every", "0.5", "--device", "cpu", "--quiet",
                 "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["finished"] == 0 and summary["in_flight_runs"] == 2
    rec = json.loads((out / "record.json").read_text())
    fl = rec["metrics"]["in_flight"]
    assert fl["runs"] == 2 and 0 < fl["step"] < 100000
    mc = fl["mean_curves"]
    assert len(mc["step"]) == len(mc["effective_dim"]) >= 2 and mc["step"][-1] <= fl["step"]
    assert set(fl["first_steps_so_far"]) == {"s0_y00_x00", "s1_y00_x00"}


def test_last_layer_lr_is_the_last_layers_own():
    cfg = DigitsConfig(n_train=50, steps=30, eval_every=10, lr=1e-2, last_lr=1e-12, weight_decay=0.0, alpha=1.0)
    rng = np.random.default_rng(0)
    data = (rng.random((50, 8)), np.arange(50) % 3, rng.random((20, 8)), np.arange(20) % 3)
    net = train_digits(cfg, data=data)["model"]
    torch.manual_seed(cfg.seed)
    init = make_mlp(8, 3, cfg)
    assert torch.allclose(net[-1].weight, init[-1].weight, atol=1e-8)  # the last layer barely moved
    assert not torch.allclose(net[0].weight, init[0].weight, atol=1e-4)  # the others trained
    with pytest.raises(ValueError, match="threshold"):
        DigitsConfig(threshold=0.0)
    with pytest.raises(ValueError, match="last_lr"):
        DigitsConfig(last_lr=-1.0)


def test_digits_diagram_threshold_and_resume(tmp_path):
    cfg = DigitsConfig(n_train=120, steps=120, eval_every=20, alpha=1.0, lr=3e-3, threshold=0.6)
    res = digits_phase_diagram(cfg, weight_decays=[0.0, 0.1], last_lrs=[3e-3], lag=100, out=tmp_path)
    assert res["step_train"].shape == (1, 2) and res["resumed"] == 0
    assert len(list((tmp_path / "cells").glob("*.json"))) == 2
    again = digits_phase_diagram(cfg, weight_decays=[0.0, 0.1], last_lrs=[3e-3], lag=100, out=tmp_path, resume=True)
    assert again["resumed"] == 2 and (again["step_test"] == res["step_test"]).all()
    # a lower threshold is crossed no later than a higher one on the same run
    hi = train_digits(cfg.replace(threshold=0.9, weight_decay=0.0, last_lr=3e-3))["metrics"]
    lo = train_digits(cfg.replace(weight_decay=0.0, last_lr=3e-3))["metrics"]
    assert lo["step_test_acc"] is not None and lo["step_test_acc"] == res["step_test"][0, 0]
    assert hi["step_test_acc"] is None or hi["step_test_acc"] >= lo["step_test_acc"]


def test_s3_and_digits_diagram_cli(tmp_path, capsys):
    assert main(["s3", "--steps", "30", "--seeds", "0,1", "--quiet", "--device", "cpu", "--out", str(tmp_path / "s3")]) == 0
    rec = json.loads((tmp_path / "s3" / "record.json").read_text())
    assert [r[0] for r in rec["tables"][0]["rows"]] == [0, 1] and (tmp_path / "s3" / "s3_curves.png").exists()
    capsys.readouterr()
    assert main(["s3", "--authors", str(tmp_path / "none.h5"), "--steps", "5"]) == 2
    assert "--grid authors" in capsys.readouterr().err
    assert main(["s3", "--seeds", "0,x", "--steps", "5"]) == 2
    assert main(["digits-diagram", "--quick", "--steps", "20", "--threshold", "1.5", "--out", str(tmp_path / "d")]) == 2
    assert "threshold" in capsys.readouterr().err


def test_effective_dimension_record_tabulates_the_mean_curve(tmp_path):
    out = tmp_path / "seeds"
    assert main(["transformer-sweep", "--axes", "seeds", "--no-early-stop", "--quick", "--p", "7",
                 "--d-model", "32", "--heads", "2", "--d-mlp", "32", "--steps", "40", "--seeds", "0,1",
                 "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    rec = json.loads((out / "record.json").read_text())
    (curve,) = [t for t in rec["tables"] if t["name"] == "curve"]
    mean = rec["metrics"]["mean_curves"]["y0_x0"]
    assert curve["rows"][0][0] == 0 and curve["rows"][-1][0] == 40
    for step, ed, _, te in curve["rows"]:
        k = mean["step"].index(step)
        assert ed == mean["effective_dim"][k] and te == mean["test_acc"][k]
