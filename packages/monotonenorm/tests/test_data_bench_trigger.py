"""Loaders (on small CSVs written here), the protocol helpers, the trigger generator, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import monotonenorm as mn
from monotonenorm import bench
from monotonenorm import trigger as T
from monotonenorm._cli import main
from monotonenorm._data import load_auto_mpg, load_compas, load_heart

COMPAS_HEADER = (
    "id,sex,age,race,juv_fel_count,juv_misd_count,juv_other_count,priors_count,days_b_screening_arrest,"
    "c_charge_degree,is_recid,score_text,priors_count,two_year_recid"
)


def _write_compas(folder: Path, n: int = 50) -> None:
    rng = np.random.default_rng(0)
    races = ["African-American", "Caucasian", "Hispanic", "Other"]
    lines = [COMPAS_HEADER]
    for i in range(n):
        days = ["", "-40", "5", "0", "31"][i % 5]  # blank and |days| > 30 are filtered out
        degree = "O" if i % 7 == 0 else "F"
        lines.append(
            f"{i},{'Male' if i % 2 else 'Female'},{20 + i % 40},{races[i % 4]},{i % 2},{i % 3},0,{rng.integers(0, 9)},{days},"
            f"{degree},{-1 if i % 11 == 0 else 1},Low,99,{i % 2}"
        )
    (folder / "compas_scores_two_years.csv").write_text("\n".join(lines) + "\n")


def test_compas_loader_filters_and_encodes(tmp_path: Path) -> None:
    _write_compas(tmp_path)
    ds = load_compas(tmp_path)
    # kept: days in {5, 0} (2 of 5), degree != O, is_recid != -1
    expected = [i for i in range(50) if i % 5 in (2, 3) and i % 7 and i % 11]
    assert len(ds.y) == len(expected)
    assert ds.X.shape[1] == 13 and ds.monotonic_constraints[:4] == (1, 1, 1, 1)
    assert np.all(ds.X[:, 5:11].sum(1) == 1) and np.all(ds.X[:, 11:].sum(1) == 1)  # one-hot race, sex
    assert sorted(np.concatenate([ds.train_index, ds.test_index]).tolist()) == list(range(len(ds.y)))
    assert len(ds.train_index) == int(0.8 * len(ds.y))
    # the first priors_count column is used, not the duplicate (always 99)
    assert ds.X[:, 0].max() < 9


def test_loaders_report_bad_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="auto-mpg.csv"):
        load_auto_mpg(tmp_path)
    (tmp_path / "auto-mpg.csv").write_text(
        "mpg,cylinders,displacement,horsepower,weight,acceleration,model year,origin,car name\n"
        "18,8,307,130,3504,12,70,1,a\n20,4,97,?,2000,15,71,2,b\n21,4,ninety,88,2100,15,71,2,c\n"
    )
    with pytest.raises(ValueError, match=r"row 4, column 'displacement'.*'ninety'"):
        load_auto_mpg(tmp_path)
    (tmp_path / "heart_train.csv").write_text(",age,trestbps,chol,target\n0,63,145,233,0\n")
    (tmp_path / "heart_test.csv").write_text(",age,trestbps,chol,target\n1,67,160,286,1\n")
    heart = load_heart(tmp_path)
    assert heart.monotonic_constraints == (0, 1, 1) and heart.test_index.tolist() == [1]


def test_honest_split_never_leaks_test_rows(tmp_path: Path) -> None:
    _write_compas(tmp_path, 400)
    ds = load_compas(tmp_path)
    split = bench.honest_split(ds, seed=3)
    rows = lambda A: {tuple(r) for r in A}  # noqa: E731
    n_test = len(ds.test_index)
    assert len(split.X_test) == n_test
    assert len(split.X_train) + len(split.X_val) == len(ds.train_index)
    assert abs(len(split.X_val) - 0.2 * len(ds.train_index)) <= 2
    test_ids = set(ds.test_index.tolist())
    assert not test_ids & set(np.flatnonzero(np.isin(np.arange(len(ds.y)), ds.train_index)).tolist())
    assert rows(split.X_test) == rows(ds.X[ds.test_index])


def test_choose_threshold_maximizes_validation_accuracy() -> None:
    p = np.array([0.1, 0.2, 0.3, 0.35, 0.8, 0.9])
    y = np.array([0, 0, 0, 1, 1, 1])
    t = bench.choose_threshold(p, y)
    assert 0.3 < t < 0.35
    assert np.mean((p > t) == y) == 1.0


def test_trigger_generator_physics() -> None:
    short = T.generate_signal(4000, T.TriggerConfig(lifetime_ps=0.5), seed=1)
    long = T.generate_signal(4000, T.TriggerConfig(lifetime_ps=10.0), seed=1)
    bkg = T.generate_background(4000, seed=2)
    assert short.shape == (4000, 4) and np.isfinite(short).all()
    assert np.median(long[:, 0]) > np.median(short[:, 0]) > np.median(bkg[:, 0])  # displacement grows with lifetime
    assert np.median(long[:, 3]) > np.median(short[:, 3])
    assert np.median(short[:, 1]) > np.median(bkg[:, 1])  # harder pT spectrum
    assert 0.02 < np.mean(bkg[:, 0] > 4) < 0.045  # the displaced background tail, ~3 %
    X, y = T.generate(100, 300, seed=0)
    assert X.shape == (400, 4) and y.sum() == 100
    assert T.efficiency_at_rate(np.arange(100.0), np.arange(100.0), 0.1) == pytest.approx(0.1, abs=0.02)
    with pytest.raises(ValueError, match="lifetime_ps"):
        T.generate_signal(5, T.TriggerConfig(lifetime_ps=0.0))


def test_cli_example_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cfg.json").write_text(json.dumps({"max_epochs": 20, "n_samples": 30, "mlp_max_iter": 100}))
    assert main(["example", "--quick", "--quiet", "--out", str(tmp_path / "ex"), "--config", str(tmp_path / "cfg.json")]) == 0
    run = json.loads((tmp_path / "ex" / "run.json").read_text())
    assert run["config"]["max_epochs"] == 20 and run["seed"] == 0 and "torch" in run["versions"]
    result = json.loads((tmp_path / "ex" / "example.json").read_text())
    assert result["violations"]["monotone"] == 0
    assert np.all(np.diff(result["monotone"]) >= -1e-9)
    assert "certified" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text(json.dumps({"not_a_field": 1}))
    with pytest.raises(ValueError, match="not_a_field"):
        main(["example", "--out", str(tmp_path / "x"), "--config", str(tmp_path / "bad.json")])


def test_public_api_is_importable() -> None:
    for name in mn.__all__:
        assert getattr(mn, name) is not None
    assert mn.MonotonicRegressor.__name__ == "MonotonicRegressor"
