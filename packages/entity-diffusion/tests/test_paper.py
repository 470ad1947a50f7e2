"""The paper protocol's fidelity/privacy measures on cases with known answers, and its smoke run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from entity_diffusion._paper import c2st_auc, dcr


def _rows(n: int, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"num_0": rng.normal(shift, 1, n), "num_1": rng.normal(size=n),
                         "cat_0": rng.choice(["a", "b"], n), "y": rng.normal(size=n)})


def test_c2st_is_chance_for_the_same_law_and_high_for_a_shift() -> None:
    same = c2st_auc(_rows(400, 0, 0), _rows(400, 0, 1), seed=0)
    shifted = c2st_auc(_rows(400, 0, 0), _rows(400, 2.0, 1), seed=0)
    assert abs(same - 0.5) < 0.07 and shifted > 0.85, (same, shifted)


def test_dcr_flags_copies_of_the_training_rows() -> None:
    train, test = _rows(400, 0, 0), _rows(400, 0, 1)
    copies = dcr(train, test, train.copy(), seed=0)
    assert copies["exact_copies"] == 1.0 and copies["share_closer_than_holdout_median"] == 1.0
    fresh = dcr(train, test, _rows(400, 0, 2), seed=0)
    assert fresh["exact_copies"] == 0.0 and 0.3 < fresh["share_closer_than_holdout_median"] < 0.7


@pytest.mark.slow
def test_paper_tabular_smoke_writes_a_payload(tmp_path) -> None:
    from entity_diffusion._cli import main

    folder = tmp_path / "tabular" / "toy"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 120), ("val", 40), ("test", 60)):
        x = rng.normal(size=(n, 2))
        np.save(folder / f"X_num_{split}.npy", x)
        np.save(folder / f"y_{split}.npy", (x[:, 0] > 0).astype(np.int64))
    (folder / "info.json").write_text(json.dumps({"task_type": "binclass", "n_num_features": 2, "n_cat_features": 0}))
    out = tmp_path / "out"
    assert main(["paper-tabular", "--smoke", "--data", str(tmp_path), "--datasets", "toy", "--generators", "kbformer",
                 "--device", "cpu", "--out", str(out)]) == 0
    record = json.loads((out / "record.json").read_text())
    cell = record["metrics"]["datasets"]["toy"]
    assert len(cell["generators"]["kbformer"]["scores"]) == 4  # 2 sets x 2 evaluator seeds
    assert {t["name"] for t in record["tables"]} == {"utility", "fidelity"}


def _stub_measures(monkeypatch, tmp_path) -> None:
    """paper-tabular's data and measures replaced by constants: the tests below check its control
    flow (time shares, failures), not the measures, which have their own tests above."""
    from entity_diffusion import _paper

    toy = _rows(60, 0, 0)
    monkeypatch.setattr(_paper, "find_data", lambda path: tmp_path)
    monkeypatch.setattr(_paper, "load", lambda data, name: {"train": toy, "val": toy, "test": toy, "task": "regression"})
    monkeypatch.setattr(_paper, "utility", lambda frames, ds, seeds, args, deadline=None: ([0.5], "fake"))
    monkeypatch.setattr(_paper, "c2st_auc", lambda real, synth, seed: 0.5)
    monkeypatch.setattr(_paper, "dcr", lambda *a: {"share_closer_than_holdout_median": 0.5, "exact_copies": 0.0})
    monkeypatch.setattr(_paper, "quality", lambda *a: "not installed")


def _parser():
    """The paper-tabular flags plus the two the CLI adds (--seed, --device)."""
    import argparse

    from entity_diffusion import _paper

    parser = argparse.ArgumentParser()
    _paper.add_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    return parser


def test_every_dataset_gets_a_share_of_the_window(monkeypatch, tmp_path) -> None:
    """The first GPU run gave each KBFormer fit its full --fit-seconds and ran out of its window
    after the first sets (tabular-a stopped after california, tabular-b after house). Each dataset
    must now get a fair share of what is left, the fit capped inside it."""
    import time

    from entity_diffusion import _paper

    _stub_measures(monkeypatch, tmp_path)
    fits: list[float] = []

    def fake_sets(ds, n_sets, seed, args, fit_seconds=None):
        cap = args.fit_seconds if fit_seconds is None else fit_seconds
        fits.append(cap)
        time.sleep(cap)  # a time-capped fit uses its whole cap
        return [ds["train"]] * n_sets, {}

    monkeypatch.setattr(_paper, "kbformer_sets", fake_sets)
    parser = _parser()
    args = parser.parse_args(["--datasets", "a,b,c", "--generators", "kbformer", "--fit-seconds", "3",
                              "--max-minutes", str(1.5 / 60), "--out", str(tmp_path / "out")])
    assert _paper.run(args) == 0
    record = json.loads((tmp_path / "out" / "record.json").read_text())
    reached = [n for n, cell in record["metrics"]["datasets"].items() if "kbformer" in cell.get("generators", {})
               and "scores" in cell["generators"]["kbformer"]]
    assert reached == ["a", "b", "c"], (reached, fits)
    assert max(fits) <= 0.5 * 1.5, fits


def test_utility_scores_a_synthetic_set_that_lost_a_class() -> None:
    """A collapsed generator (TVAE on buddy, CPU run of 2026-12-04) produced no row of one class;
    CatBoost then refused the real validation split (a label absent from the learn set) and the
    whole run died. The set must be scored, the missing class counting against it."""
    import argparse

    pytest.importorskip("catboost")
    from entity_diffusion._paper import utility

    rng = np.random.default_rng(0)

    def frame(n: int, labels: list[int]) -> pd.DataFrame:
        y = rng.choice(labels, n)
        return pd.DataFrame({"num_0": y + rng.normal(0, 0.3, n), "num_1": rng.normal(size=n), "y": y})

    ds = {"task": "multiclass", "train": frame(300, [0, 1, 2]), "val": frame(150, [0, 1, 2]),
          "test": frame(150, [0, 1, 2])}
    args = argparse.Namespace(eval_iterations=60, eval_threads=1)
    full, _ = utility([ds["train"]], ds, 1, args)
    collapsed, _ = utility([frame(300, [0, 1])], ds, 1, args)
    assert len(collapsed) == 1 and full[0] > 0.9
    assert collapsed[0] < full[0] - 0.2, (full, collapsed)  # class 2 is never predicted


def test_a_failing_generator_is_recorded_and_the_others_still_run(monkeypatch, tmp_path) -> None:

    from entity_diffusion import _paper

    _stub_measures(monkeypatch, tmp_path)

    def broken(*a, **k):
        raise RuntimeError("generator collapsed\nsecond line")

    monkeypatch.setattr(_paper, "kbformer_sets", broken)
    monkeypatch.setattr(_paper, "smote_sets", lambda train, task, n, seed: [train] * n)
    # the run checks that SMOTE's library imports; a package installed alone may lack it
    import sys
    import types

    monkeypatch.setitem(sys.modules, "imblearn", sys.modules.get("imblearn") or types.ModuleType("imblearn"))
    parser = _parser()
    args = parser.parse_args(["--datasets", "a,b", "--generators", "kbformer,smote", "--out", str(tmp_path / "out")])
    assert _paper.run(args) == 0
    record = json.loads((tmp_path / "out" / "record.json").read_text())
    for name in ("a", "b"):
        gens = record["metrics"]["datasets"][name]["generators"]
        assert gens["kbformer"]["status"] == "failed: RuntimeError: generator collapsed"
        assert gens["smote"]["scores"] == [0.5]
    assert "failed: RuntimeError" in record["tables"][0]["rows"][0][3]
