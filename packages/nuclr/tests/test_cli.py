"""One tiny end-to-end run of the console script (train -> predict -> evaluate -> baselines)."""

import json

import pytest

from nuclr._cli import main


def test_cli_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--epochs", "1", "--width", "8", "--depth", "1", "--quiet",
                 "--device", "cpu"]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["config"]["epochs"] == 1 and info["seed"] == 0 and "torch" in info["versions"]
    assert (run / "model.safetensors").exists() and (run / "train_state.safetensors").exists()
    capsys.readouterr()
    assert main(["predict", "--z", "50", "--n", "82", "--model", str(run), "--json"]) == 0
    pred = json.loads(capsys.readouterr().out)
    assert pred["z"] == 50 and not pred["extrapolation"]
    assert pred["predictions"]["binding"]["nubase2020_measured"] == pytest.approx(8354.872 * 132, abs=5)  # AME2020 132Sn B/A 8354.872 keV
    # resuming a finished run is a no-op that still succeeds
    assert main(["train", "--out", str(run), "--epochs", "1", "--width", "8", "--depth", "1", "--quiet",
                 "--resume", "--device", "cpu"]) == 0
    ev = tmp_path / "ev"
    assert main(["evaluate", "--protocol", "ame2016-to-2020", "--quick", "--epochs", "1", "--width", "8",
                 "--out", str(ev), "--quiet", "--device", "cpu"]) == 0
    metrics = json.loads((ev / "metrics.json").read_text())
    assert metrics["protocol"] == "ame2016-to-2020"
    assert metrics["model"]["binding"]["n"] + metrics["folds"][0]["n_unseen_test_nuclei"] == 71
    assert "WS3" in metrics["baselines"] and metrics["baselines"]["WS3"]["binding"]["unit"] == "keV"


def test_cli_errors(tmp_path, capsys):
    assert main(["predict", "--z", "50", "--n", "82", "--model", str(tmp_path / "none")]) == 2
    assert "train first" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "--protocol", "nonsense", "--out", str(tmp_path)])
    assert main(["predict", "--z", "-1", "--n", "82", "--model", str(tmp_path)]) == 2
    assert "non-negative" in capsys.readouterr().err


def test_cli_baselines(tmp_path):
    assert main(["baselines", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "baselines.json").read_text())
    assert 250 < res["baselines"]["WS3"]["binding"]["rms"] < 275  # 261.5 keV on 2457 nuclei


def test_import_is_light_and_exports_resolve():
    import subprocess
    import sys

    code = "import sys, nuclr; assert 'torch' not in sys.modules; print(nuclr.__version__)"
    subprocess.run([sys.executable, "-c", code], check=True)
    import nuclr

    assert nuclr.TrainConfig().epochs >= 1 and callable(nuclr.ground_states)
    with pytest.raises(AttributeError):
        nuclr.does_not_exist  # noqa: B018
