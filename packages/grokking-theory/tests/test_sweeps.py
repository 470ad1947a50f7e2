"""Sweeps a user can trust with hours of compute: output checked first, one-line errors, cells
written as they finish, resume, shards and merge; the authors' grids; compare-authors."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from grokking_theory import rqi
from grokking_theory._cli import build_parser, main
from grokking_theory._phases import classify_phase

TINY = {"width": 16, "steps": 60, "rng_order": "sweep"}


def _tiny_config(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({**TINY, **changes}))
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_bad_out_is_refused_before_training(tmp_path, monkeypatch, capsys):
    import grokking_theory._batched as batched
    import grokking_theory._toy as toy

    def no_training(*a, **k):
        raise AssertionError("training started before --out was checked")

    monkeypatch.setattr(toy, "train_toy", no_training)
    monkeypatch.setattr(batched, "run_sweep", no_training)
    afile = tmp_path / "a_file"
    afile.write_text("x")
    assert main(["train", "--quiet", "--device", "cpu", "--out", str(afile / "run")]) == 2
    assert "--out" in _one_line_error(capsys)
    assert main(["phase-diagram", "--quick", "--quiet", "--device", "cpu", "--out", "/proc/grokking-pd"]) == 2
    assert "not a writable folder" in _one_line_error(capsys)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["phase-diagram", "--seeds", "a,b"], "--seeds must be comma-separated integers"),
        (["phase-diagram", "--lag", "-5"], "--lag must be > 0"),
        (["phase-diagram", "--lag", "0"], "--lag must be > 0"),
        (["train", "--device", "cudaXYZ"], "not a device name"),
        (["phase-diagram", "--device", "cuda:x"], "not a device name"),
        (["phase-diagram", "--shard", "3/3"], "0 <= K < N"),
        (["phase-diagram", "--shard", "1-3"], "K/N"),
        (["rqi", "--embedding", "2,2,2,2"], "degenerate embedding"),
        (["train", "--no-such-flag"], "unrecognized arguments"),
        (["phase-diagram", "--grid", "nope"], "invalid choice"),
        (["merge", "/nonexistent-grokking-folder"], "no sweep.json"),
    ],
)
def test_cli_errors_are_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in _one_line_error(capsys)


def test_rqi_of_degenerate_embedding_is_a_clear_error():
    with pytest.raises(ValueError, match="degenerate embedding"):
        rqi(np.ones((6, 1)))
    with pytest.raises(ValueError, match="degenerate embedding: dimension\\(s\\) \\[1\\]"):
        rqi(np.stack([np.arange(6.0), np.full(6, 3.0)], 1))
    with pytest.raises(ValueError, match="NaN"):
        rqi(np.array([0.0, 1.0, np.nan, 3.0]))


def test_cells_are_written_as_they_finish_and_match_the_batch(tmp_path):
    from grokking_theory import RunSpec, ToyConfig, train_batched

    cfg = ToyConfig(rng_order="sweep", width=32, steps=400)
    specs = [RunSpec(seed=58, eta_dec=1e-2, eta_reprs=1e-2), RunSpec(seed=3, eta_dec=1e-5),
             RunSpec(seed=4, eta_dec=3e-3)]
    seen = {}
    run = train_batched(cfg, specs, check_every=20, on_finish=lambda i, r: seen.setdefault(i, r))
    assert sorted(seen) == [0, 1, 2]
    for i, r in seen.items():
        assert (r["step_train"], r["step_test"], r["stopped_at"]) == (
            int(run.step_train[i]), int(run.step_test[i]), int(run.stopped_at[i]))
    # the slow cell ran the whole budget; the fast one left the batch early
    assert seen[1]["stopped_at"] == 400 and seen[0]["stopped_at"] == 280  # both reached at 174 / 266


def _diagram(out: Path) -> dict:
    return json.loads((out / "phase_diagram.json").read_text())


def test_killed_sweep_resumes_and_shards_merge_to_the_same_diagram(tmp_path, monkeypatch, capsys):
    import grokking_theory._sweep as sweep

    cfg = _tiny_config(tmp_path)
    common = ["phase-diagram", "--quick", "--config", str(cfg), "--seeds", "1,2", "--quiet", "--device", "cpu"]
    clean = tmp_path / "clean"
    assert main(common + ["--out", str(clean)]) == 0
    n_cells = len(list((clean / "cells").glob("*.json")))
    assert n_cells == 2 * 4 * 6

    # a sweep killed after 5 finished cells keeps exactly those 5 on disk
    real_write, calls = sweep.SweepStore.write, []

    def dying_write(self, cell, result):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(cell.key)
        real_write(self, cell, result)

    killed = tmp_path / "killed"
    monkeypatch.setattr(sweep.SweepStore, "write", dying_write)
    with pytest.raises(KeyboardInterrupt):
        main(common + ["--out", str(killed)])
    monkeypatch.setattr(sweep.SweepStore, "write", real_write)
    assert sorted(p.stem for p in (killed / "cells").glob("*.json")) == sorted(calls)
    assert not list((killed / "cells").glob("*.tmp"))
    record = json.loads((killed / "record.json").read_text())
    # the progress record is refreshed at most every 5 s: it never claims more than is on disk
    assert 1 <= record["metrics"]["cells_finished"] <= 5 and not record["metrics"]["complete"]

    # --resume trains only the missing cells and ends with the clean diagram
    import grokking_theory._batched as batched

    trained = []
    real_sweep = batched.run_sweep
    monkeypatch.setattr(batched, "run_sweep", lambda base, specs, **k: trained.append(len(specs)) or real_sweep(base, specs, **k))
    capsys.readouterr()
    assert main(common + ["--out", str(killed), "--resume"]) == 0
    assert trained == [n_cells - 5]
    for key in ("step_train", "step_test", "phases"):
        assert _diagram(killed)[key] == _diagram(clean)[key]
    # resuming a finished sweep trains nothing
    assert main(common + ["--out", str(killed), "--resume"]) == 0 and trained == [n_cells - 5]

    # two shards in two folders, merged
    for k in (0, 1):
        assert main(common + ["--out", str(tmp_path / f"shard{k}"), "--shard", f"{k}/2"]) == 0
    assert len(list((tmp_path / "shard0" / "cells").glob("*.json"))) == n_cells // 2
    assert not (tmp_path / "shard0" / "phase_diagram.json").exists()
    merged = tmp_path / "merged"
    assert main(["merge", str(merged), str(tmp_path / "shard0"), str(tmp_path / "shard1")]) == 0
    for key in ("step_train", "step_test", "phases"):
        assert _diagram(merged)[key] == _diagram(clean)[key]
    # a merge with a shard missing names what is missing
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "m2"), str(tmp_path / "shard0")]) == 2
    assert f"{n_cells // 2} of {n_cells} cells are missing" in _one_line_error(capsys)


def test_out_holding_another_sweep_is_refused(tmp_path, capsys):
    common = ["phase-diagram", "--quick", "--seeds", "1", "--quiet", "--device", "cpu", "--out", str(tmp_path / "d")]
    assert main(common + ["--config", str(_tiny_config(tmp_path, steps=20))]) == 0
    capsys.readouterr()
    assert main(common + ["--config", str(_tiny_config(tmp_path, steps=30)), "--resume"]) == 2
    assert "different sweep" in _one_line_error(capsys)


def _setup(argv):
    from grokking_theory._cli import _phase_setup

    return _phase_setup(build_parser().parse_args(["phase-diagram", *argv]))


def test_authors_grids_match_the_files():
    # axes, seeds and budgets of the authors' files as documented with the data (shared/data README)
    lr16 = 10 ** np.linspace(-5, -2, 16)
    r = _setup(["--grid", "authors"])
    assert r["config"].steps == 100_000 and r["seeds"] == [58] and r["config"].rng_order == "sweep"
    assert np.allclose(r["ys"], lr16) and r["xs"] == list(range(11)) and r["grid"].y_name == "eta_dec"
    c = _setup(["--grid", "authors", "--loss", "ce"])
    assert c["config"].steps == 100_000 and c["seeds"] == [6]
    assert c["xs"] == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert c["config"].ce_scale == pytest.approx(1 / 19) and c["config"].repr_optimizer == "adam"
    rr = _setup(["--grid", "authors-reprlr"])
    assert np.allclose(rr["xs"], 10 ** np.linspace(-5, -2, 13)) and rr["grid"].x_name == "eta_reprs"
    # the classification decoder-wd grid is the authors' 0..20 too, not 0..10
    assert _setup(["--loss", "ce"])["xs"][-1] == 20
    assert _setup(["--grid", "authors", "--seeds", "1,2"])["seeds"] == [1, 2]


def _help(command: str, capsys) -> str:
    assert main([command, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())


def test_help_prints_the_defaults_actually_used(capsys, monkeypatch):
    from grokking_theory._cli import _config

    monkeypatch.setenv("COLUMNS", "1000")  # no line wrapping inside the flags' help

    text = _help("phase-diagram", capsys)
    m = re.search(r"--steps STEPS update budget \(default: the grid's, (\d+) for dec-lr-wd / repr-dec-lr, (\d+) for authors", text)
    assert m and int(m.group(1)) == _setup([])["config"].steps
    assert int(m.group(2)) == _setup(["--grid", "authors"])["config"].steps
    text = _help("train", capsys)
    m = re.search(r"--steps STEPS update budget \(default (\d+); (\d+) with --quick\)", text)
    args = build_parser().parse_args(["train"])
    assert m and int(m.group(1)) == _config(args).steps
    for flag, field in (("--eta-dec", "eta_dec"), ("--eta-reprs", "eta_reprs")):
        m = re.search(re.escape(flag) + r" [A-Z_]+ [a-z][^()]*\(default ([0-9.e-]+)\)", text)
        assert m and float(m.group(1)) == getattr(_config(args), field)


def _fake_authors(path: Path, train: np.ndarray, test: np.ndarray) -> Path:
    import h5py

    with h5py.File(path, "w") as f:
        f["learning_rate"] = np.array([1e-4, 1e-3])
        f["weight_decay"] = np.array([0, 1, 2])
        f["train_steps"] = train
        f["test_steps"] = test
    return path


def test_compare_authors_command(tmp_path, capsys):
    # authors (budget 10^5, 99999 = never): [lr, wd]
    a_tr = np.array([[100.0, 200, 99999], [50, 60, 70]])
    a_te = np.array([[300.0, 5000, 99999], [99999, 80, 90]])
    h5 = _fake_authors(tmp_path / "data_add_r.h5", a_tr, a_te)
    ours = {"x_name": "weight_decay_dec", "x_values": [0.0, 1.0, 2.0], "y_name": "eta_dec",
            "y_values": [1e-4, 1e-3], "seeds": [58, 59], "budget": 100_000,
            "step_train": [[[100, 200, -1], [50, 60, 70]], [[100, -1, -1], [50, 60, 70]]],
            "step_test": [[[300, 5000, -1], [-1, 80, 90]], [[2000, -1, -1], [-1, -1, 90]]]}
    (tmp_path / "pd.json").write_text(json.dumps(ours))
    out = tmp_path / "cmp"
    assert main(["compare-authors", str(h5), str(tmp_path / "pd.json"), "--out", str(out)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["per_seed"]["58"]["agreement"] == 1.0 and metrics["per_seed"]["58"]["exact_step_cells"] == 6
    # seed 59 by hand: cells (0,0) C vs C... (0,0): ours 100/2000 -> grokking, theirs comprehension
    theirs = classify_phase(np.where(a_tr >= 99999, -1, a_tr).astype(int), np.where(a_te >= 99999, -1, a_te).astype(int))
    mine = classify_phase(np.array(ours["step_train"][1]), np.array(ours["step_test"][1]))
    assert metrics["per_seed"]["59"]["agreement"] == pytest.approx(float((theirs == mine).mean()))
    assert metrics["per_seed"]["59"]["agreement"] == pytest.approx(3 / 6)
    assert json.loads((out / "record.json").read_text())["tables"][0]["rows"][0][2] == 1.0
    # at a 10^3 budget the authors' later steps read "not reached"
    short = {**ours, "budget": 1000, "step_test": [[[300, -1, -1], [-1, 80, 90]]] * 2}
    (tmp_path / "short.json").write_text(json.dumps(short))
    assert main(["compare-authors", str(h5), str(tmp_path / "short.json")]) == 0
    assert json.loads(capsys.readouterr().out)["per_seed"]["58"]["agreement"] == 1.0
    # axes that are not the file's are refused
    (tmp_path / "bad.json").write_text(json.dumps({**ours, "x_values": [0.0, 2.0, 4.0]}))
    assert main(["compare-authors", str(h5), str(tmp_path / "bad.json")]) == 2
    assert "differ" in _one_line_error(capsys)


def test_compare_authors_reads_a_partial_sweep_record(tmp_path, capsys):
    """A GPU job's record.json (progressive, some cells unfinished) is a valid RESULTS argument."""
    cfg = _tiny_config(tmp_path, steps=30)
    out = tmp_path / "sweep"
    assert main(["phase-diagram", "--quick", "--grid", "authors", "--config", str(cfg), "--seeds", "58",
                 "--quiet", "--device", "cpu", "--out", str(out)]) == 0
    rec = json.loads((out / "record.json").read_text())
    steps_tr = np.array(rec["metrics"]["step_train"])
    steps_tr[0, 0, 0] = -2  # as if that cell had not finished
    rec["metrics"]["step_train"] = steps_tr.tolist()
    (tmp_path / "partial.json").write_text(json.dumps(rec))
    d = json.loads((out / "phase_diagram.json").read_text())
    ys, xs = d["y_values"], d["x_values"]
    h5 = _fake_authors_axes(tmp_path / "a.h5", xs, ys)
    capsys.readouterr()
    assert main(["compare-authors", str(h5), str(tmp_path / "partial.json")]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["per_seed"]["58"]["cells"] == len(xs) * len(ys) - 1


def _fake_authors_axes(path: Path, xs, ys) -> Path:
    import h5py

    with h5py.File(path, "w") as f:
        f["learning_rate"] = np.array(ys)
        f["weight_decay"] = np.array(xs)
        f["train_steps"] = np.full((len(ys), len(xs)), 99999.0)
        f["test_steps"] = np.full((len(ys), len(xs)), 99999.0)
    return path
