"""Benchmark helpers on generated data (no ../shared): loader validation, MCAR, metrics, baselines."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from entity_diffusion._bench import (
    baseline_impute,
    imputation_scores,
    load_tabddpm,
    mcar,
    ml_efficiency,
)


def _write_tabddpm(root, n=(80, 20, 40)) -> None:
    rng = np.random.default_rng(0)
    folder = root / "toy"
    folder.mkdir()
    for split, size in zip(("train", "val", "test"), n):
        x = rng.normal(size=(size, 2))
        np.save(folder / f"X_num_{split}.npy", x)
        np.save(folder / f"X_cat_{split}.npy", rng.choice(["a", "b"], size=(size, 1)).astype(object))
        np.save(folder / f"y_{split}.npy", (x[:, 0] > 0).astype(np.int64))
    info = {"task_type": "binclass", "n_num_features": 2, "n_cat_features": 1,
            "train_size": n[0], "val_size": n[1], "test_size": n[2]}
    (folder / "info.json").write_text(json.dumps(info))


def test_loader_reads_and_validates(tmp_path) -> None:
    _write_tabddpm(tmp_path)
    ds = load_tabddpm(tmp_path, "toy")
    assert list(ds["train"].columns) == ["num_0", "num_1", "cat_0", "y"] and len(ds["test"]) == 40
    info = json.loads((tmp_path / "toy" / "info.json").read_text())
    (tmp_path / "toy" / "info.json").write_text(json.dumps({**info, "test_size": 41}))
    with pytest.raises(ValueError, match="test has 40 rows, info.json says 41"):
        load_tabddpm(tmp_path, "toy")
    with pytest.raises(FileNotFoundError, match="info.json"):
        load_tabddpm(tmp_path, "absent")


def test_ml_efficiency_real_beats_shuffled_labels(tmp_path) -> None:
    _write_tabddpm(tmp_path, (400, 20, 200))
    ds = load_tabddpm(tmp_path, "toy")
    real, evaluator = ml_efficiency(ds["train"], ds["test"], "binclass", evaluator="hist-gradient-boosting",
                                    iterations=60)
    noise = ds["train"].assign(y=np.random.default_rng(1).permutation(ds["train"]["y"].to_numpy()))
    shuffled, _ = ml_efficiency(noise, ds["test"], "binclass", evaluator="hist-gradient-boosting", iterations=60)
    assert evaluator == "hist-gradient-boosting" and real > 0.85 and shuffled < real - 0.2


def test_mcar_rate_and_imputation_metrics() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2000, 3))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 0] + 0.1 * x[:, 1], "c": rng.choice(["u", "v"], 2000)})
    gapped = mcar(frame, 0.3, rng)
    assert abs(gapped.isna().to_numpy().mean() - 0.3) < 0.02
    assert not gapped.isna().all(axis=1).any()
    perfect = imputation_scores(frame, gapped, frame, ["a", "b"], ["c"])
    assert perfect == {"nrmse": 0.0, "accuracy": 1.0}
    mean = imputation_scores(frame, gapped, baseline_impute(frame, gapped, ["a", "b"], ["c"], "mean"), ["a", "b"], ["c"])
    knn = imputation_scores(frame, gapped, baseline_impute(frame, gapped, ["a", "b"], ["c"], "knn"), ["a", "b"], ["c"])
    assert 0.9 < mean["nrmse"] < 1.1  # the mean's RMSE is the column std
    assert knn["nrmse"] < 0.8 * mean["nrmse"]  # a and b predict each other


def test_cli_bench_runs_on_a_tabddpm_folder(tmp_path, capsys) -> None:
    from entity_diffusion._cli import main

    _write_tabddpm(tmp_path, (120, 20, 60))
    assert main(["bench", "--data", str(tmp_path), "--dataset", "toy", "--quick", "--steps", "5",
                 "--out", str(tmp_path / "out"), "--quiet"]) == 0
    result = json.loads((tmp_path / "out" / "bench_toy.json").read_text())
    assert result["train_rows"] == 120 and 0 <= result["real"] <= 1
    assert "| toy | macro-F1 real" in capsys.readouterr().out
