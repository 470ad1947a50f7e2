"""Estimator, checkpoints and the console script, end to end on tiny data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from entity_diffusion import EntityDiffusion, KBFormerConfig, UnseenCategoryError
from entity_diffusion._cli import main

TINY = KBFormerConfig(steps=8, batch_size=32).updated(d_model=8, n_heads=2, n_layers=1, n_mixtures=2, n_frequencies=2)


def _frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"body.x": x, "body.y": 3 * x + 1, "kind": np.where(x > 0, "hi", "lo"),
                         "label": [f"e{i % 4}" for i in range(n)]})


def test_fit_sample_impute_save_load(tmp_path) -> None:
    frame = _frame()
    frame.loc[::5, "body.y"] = np.nan
    model = EntityDiffusion(TINY, random_state=1).fit(frame)
    assert len(model.loss_history_) == 8 and np.isfinite(model.loss_history_).all()
    rows = model.sample(7, seed=3)
    assert list(rows.columns) == model.schema_.names and len(rows) == 7
    assert rows.notna().all().all()
    assert set(rows["kind"]) <= {"hi", "lo"}
    gapped = frame.head(10).copy()
    gapped.loc[[1, 2], "kind"] = None
    filled = model.impute(gapped, n_samples=3, seed=0)
    assert filled.notna().all().all()
    observed = gapped["body.x"].notna()
    np.testing.assert_array_equal(filled.loc[observed, "body.x"], gapped.loc[observed, "body.x"])
    bounds = model.intervals(gapped, n_samples=19)
    assert (bounds["body.y:lower"] <= bounds["body.y:upper"]).all()
    # observed cells have zero-width intervals at the observed value
    np.testing.assert_allclose(bounds.loc[observed, "body.x:lower"], gapped.loc[observed, "body.x"], atol=1e-4)
    model.save(tmp_path / "ck")
    again = EntityDiffusion.load(tmp_path / "ck", device="cpu")
    pd.testing.assert_frame_equal(again.sample(5, seed=9), model.sample(5, seed=9))
    with pytest.raises(UnseenCategoryError):
        again.impute(pd.DataFrame({"kind": ["medium"]}))


def test_nested_records_in_nested_records_out() -> None:
    records = [{"a": {"x": float(i), "c": "p" if i % 2 else "q"}, "t": f"n{i}"} for i in range(20)]
    records[3]["a"].pop("x")
    model = EntityDiffusion(TINY).fit(records)
    out = model.sample(3, nested=True)
    assert set(out[0]) == {"a", "t"} and set(out[0]["a"]) == {"x", "c"}


def test_config_round_trip_and_unknown_keys() -> None:
    cfg = KBFormerConfig.from_dict(json.loads(json.dumps(TINY.to_dict())))
    assert cfg == TINY
    with pytest.raises(ValueError, match="unknown config keys"):
        KBFormerConfig.from_dict({"stepz": 3})
    with pytest.raises(RuntimeError, match="not fitted"):
        EntityDiffusion().sample(3)


def test_cli_fit_sample_impute(tmp_path) -> None:
    frame = _frame()
    table = tmp_path / "t.csv"
    frame.to_csv(table, index=False)
    config = tmp_path / "c.json"
    config.write_text(json.dumps(TINY.to_dict()))
    out = tmp_path / "model"
    assert main(["fit", str(table), "--out", str(out), "--config", str(config), "--quiet"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["seed"] == 0 and run["config"]["steps"] == 8 and "torch" in run["versions"]
    assert (out / "model.safetensors").exists() and (out / "schema.json").exists()
    assert main(["sample", str(out), "--n", "5", "--out", str(tmp_path / "s.csv"), "--quiet"]) == 0
    assert len(pd.read_csv(tmp_path / "s.csv")) == 5
    gaps = frame.head(6).copy()
    gaps.loc[0, "body.x"] = np.nan
    gaps.to_csv(tmp_path / "g.csv", index=False)
    assert main(["impute", str(out), str(tmp_path / "g.csv"), "--out", str(tmp_path / "f.csv"), "--intervals",
                 "--n-samples", "3", "--quiet"]) == 0
    filled = pd.read_csv(tmp_path / "f.csv")
    assert filled["body.x"].notna().all() and "body.x:lower" in filled.columns


def test_cli_help_lists_subcommands(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for word in ("fit", "sample", "impute", "bench"):
        assert word in text


@pytest.mark.slow
def test_multi_step_sampling_keeps_dependencies_one_step_loses_them() -> None:
    """The paper's one-step vs multi-step gap on a two-property toy: y = x^2 + small noise.
    Random-order unmasking reproduces the dependency; leaps = D samples both from their
    marginals given nothing, so the dependency vanishes."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 3000)
    frame = pd.DataFrame({"x": x, "y": x**2 + 0.1 * rng.normal(size=3000)})
    config = KBFormerConfig(steps=400, batch_size=256).updated(d_model=32, n_mixtures=8)
    model = EntityDiffusion(config, random_state=0).fit(frame)
    multi = model.sample(1000, leaps=1, seed=1)
    one = model.sample(1000, leaps=2, seed=1)
    err_multi = float(np.sqrt(np.mean((multi["y"] - multi["x"] ** 2) ** 2)))
    err_one = float(np.sqrt(np.mean((one["y"] - one["x"] ** 2) ** 2)))
    assert err_multi < 0.5 * err_one, (err_multi, err_one)
    # conditional completion recovers y from x far better than the marginal spread of y
    query = pd.DataFrame({"x": [-1.5, 0.0, 1.5], "y": [np.nan] * 3})
    filled = model.impute(query, n_samples=20, seed=2)
    assert np.abs(filled["y"].to_numpy() - np.array([2.25, 0.0, 2.25])).max() < 0.5


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, entity_diffusion; print('torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_cli_quick_is_sized_by_early_stopping_not_a_fixed_step_count() -> None:
    """Issue 17: `--quick` sized by the held-out ELBO, not by a fixed step count. 0.2.0's first
    CLI quick settings stopped at 300 steps with evaluations every 100 and patience 5: early
    stopping could never end such a fit. The CLI's --quick is now the imputer's quick preset."""
    import argparse

    from entity_diffusion._cli import _config
    from entity_diffusion._imputer import preset_config

    args = argparse.Namespace(config=None, quick=True, steps=None, d_model=None)
    config = _config(args)
    assert config.val_fraction > 0 and config.patience > 0
    assert config.steps >= config.eval_every * (config.patience + 2), config
    assert config == preset_config("quick")
