import itertools
import json

import numpy as np
import pytest

from grokking_theory._cli import main


def test_train_writes_metrics_and_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--steps", "150", "--eta-dec", "3e-3", "--quiet", "--device", "cpu", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("step_train_acc", "step_test_acc", "step_rqi", "ideal_test_acc", "effective_n_h"):
        assert key in metrics
    assert (out / "model.safetensors").exists() and (out / "curves.png").stat().st_size > 1000
    run = json.loads((out / "run.json").read_text())
    assert run["seed"] == 58 and "torch" in run["versions"]
    capsys.readouterr()
    assert main(["rqi", "--checkpoint", str(out / "model.safetensors")]) == 0
    # the RQI of the stored embedding, recomputed by brute force over the 70 ideal parallelograms
    from safetensors.numpy import load_file

    e = load_file(str(out / "model.safetensors"))["reprs"].astype(np.float64)
    z = (e - e.mean(0)) / e.std(0, ddof=1)
    quads = [(i, j, m, n) for i, j, m, n in itertools.product(range(10), repeat=4) if i < j <= m < n and i + n == j + m]
    expect = sum(((z[i] + z[n] - z[j] - z[m]) ** 2).mean() < 0.01 for i, j, m, n in quads) / len(quads)
    assert json.loads(capsys.readouterr().out)["rqi"] == pytest.approx(expect)
    assert main(["plot", str(out)]) == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--p", "2"], "--p must be >= 3"),
        (["train", "--train-fraction", "0"], "(0, 1]"),
        (["train", "--train-fraction", "1.01"], "(0, 1]"),
        (["critical-fraction", "--p", "1"], "p must be"),
        (["rqi", "--embedding", "a,b"], "comma-separated"),
        (["train", "--device", "tpu"], "--device must be"),
        (["phase-diagram", "--seeds", ",", "--steps", "5", "--quiet"], "empty"),
    ],
)
def test_clear_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_critical_fraction_prints_json(capsys):
    assert main(["critical-fraction", "--p", "10", "--trials", "300", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["r_c"] == pytest.approx(0.41, abs=0.03)


def test_phase_diagram_quick(tmp_path, capsys):
    out = tmp_path / "pd"
    assert main(["phase-diagram", "--quick", "--steps", "40", "--quiet", "--out", str(out)]) == 0
    d = json.loads((out / "phase_diagram.json").read_text())
    assert sum(d["phase_counts"].values()) == len(d["x_values"]) * len(d["y_values"])
    assert (out / "phase_diagram.png").stat().st_size > 1000
