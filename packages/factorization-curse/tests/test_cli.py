import json
from dataclasses import replace

import pytest

from factorization_curse import RunConfig
from factorization_curse._cli import main

TINY = ["--set", "steps=30", "--set", "d_model=32", "--set", "n_layers=1", "--set", "n_items=20",
        "--set", "batch_size=16", "--device", "cpu", "--quiet", "--quick"]


def test_run_writes_metrics_config_and_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--task", "retrieval", "--objective", "mlm-u", "--out", str(out), *TINY]) == 0
    m = json.loads((out / "metrics.json").read_text())
    for key in ("forward_accuracy", "backward_accuracy"):
        assert 0.0 <= m[key] <= 1.0
    assert m["objective"] == "mlm-u" and m["family"] == "past" and m["steps"] == 30
    assert set(m["by_decode"]) == {"l2r", "confidence"}
    cfg = json.loads((out / "config.json").read_text())
    assert RunConfig.from_dict(cfg).n_items == 20
    run = json.loads((out / "run.json").read_text())
    assert run["seed"] == 0 and run["versions"]["torch"]
    assert (out / "checkpoint" / "model.safetensors").stat().st_size > 1000
    assert (out / "checkpoint" / "tokenizer.json").exists()
    assert len(json.loads((out / "predictions.json").read_text())) == m["n_test_forward"] + m["n_test_backward"]
    assert '"forward_accuracy"' in capsys.readouterr().out


def test_run_facts_file(tmp_path):
    facts = tmp_path / "kb.jsonl"
    facts.write_text("\n".join(
        json.dumps({"subject": f"Town {i}", "relation": "mayor", "object": f"Ms {i}"}) for i in range(8)
    ))
    out = tmp_path / "facts"
    assert main(["run", "--facts", str(facts), "--objective", "ar", "--out", str(out), *TINY]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["task"] == "kb" and m["family"] == "past" and 0 <= m["backward_accuracy"] <= 1


def test_bad_facts_file_reports_line(tmp_path, capsys):
    facts = tmp_path / "bad.jsonl"
    facts.write_text('{"subject": "a", "relation": "r", "object": "b"}\n{"subject": "a"}\n')
    assert main(["run", "--facts", str(facts), "--out", str(tmp_path / "x"), *TINY]) == 2
    assert "bad.jsonl:2: missing key 'relation'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,expected",
    [
        (["run", "--task", "sudoku"], "valid tasks: retrieval, relationship, bios, star-graph"),
        (["run", "--objective", "mlm-50"], "valid objectives: ar, ar-reverse-token"),
        (["table", "--objectives", "bogus"], "valid objectives: ar,"),
    ],
)
def test_unknown_names_list_the_valid_ones(args, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert expected in capsys.readouterr().err


def test_incompatible_family_is_a_clear_error(tmp_path, capsys):
    code = main(["run", "--objective", "plm", "--family", "gpt2", "--out", str(tmp_path), *TINY])
    assert code == 2
    assert "cannot train model family 'gpt2'; supported: ['past']" in capsys.readouterr().err


def test_list_and_help(capsys):
    assert main(["list"]) == 0
    assert "mlm-u" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    assert "--loss-weighting" in capsys.readouterr().out


def test_resume_skips_a_finished_run_and_refuses_another_config(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "--task", "retrieval", "--objective", "mlm-u", "--out", str(out), *TINY]
    assert main(args) == 0
    assert not (out / "train_state").exists()  # removed once the results are written
    first = (out / "metrics.json").read_text()
    stamp = (out / "metrics.json").stat().st_mtime_ns
    assert main([*args, "--resume"]) == 0  # same config, finished: stored metrics, nothing rerun
    assert (out / "metrics.json").stat().st_mtime_ns == stamp and (out / "metrics.json").read_text() == first
    # an interrupted run's state belongs to its configuration
    (out / "train_state").mkdir()
    (out / "train_state" / "run_config.json").write_text(json.dumps({"steps": 999}))
    capsys.readouterr()
    assert main([*args, "--set", "lr=0.002", "--resume"]) == 2
    assert "belongs to another run configuration" in capsys.readouterr().err


def test_resume_accepts_state_saved_before_a_defaulted_field_existed(tmp_path, capsys):
    """A finished run or a train state written by an older version (its config lacks a field
    added later with a default that keeps the old behaviour) is still the same run; a
    non-default value of the new field is a different one."""
    out = tmp_path / "run"
    args = ["run", "--task", "retrieval", "--objective", "mlm-u", "--out", str(out), *TINY]
    assert main(args) == 0
    cfg = json.loads((out / "config.json").read_text())
    stamp = (out / "metrics.json").stat().st_mtime_ns
    old = {k: v for k, v in cfg.items() if k not in ("test_max_queries", "eval_seconds")}
    (out / "config.json").write_text(json.dumps(old))
    assert main([*args, "--resume"]) == 0  # finished under the old schema: not rerun
    assert (out / "metrics.json").stat().st_mtime_ns == stamp
    (out / "train_state").mkdir()
    (out / "train_state" / "run_config.json").write_text(json.dumps(old))
    (out / "config.json").unlink()  # unfinished: resume must accept the old state's owner file
    from factorization_curse._experiment import RunConfig, _claim_state_dir

    mine = RunConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
    _claim_state_dir(out / "train_state", mine, resume=True)  # no error
    with pytest.raises(ValueError, match="test_max_queries"):
        _claim_state_dir(out / "train_state", replace(mine, test_max_queries=5), resume=True)


# --- 0.2 defects: explicit flags win, defaults never override a config ------------------------
def _facts(tmp_path, n=12, bom=False):
    p = tmp_path / "kb.jsonl"
    text = "\n".join(json.dumps({"subject": f"Town {i}", "relation": "mayor", "object": f"Ms {i}"})
                     for i in range(n))
    p.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")
    return p


def _dry(argv, capsys):
    capsys.readouterr()
    assert main([*argv, "--dry-run"]) == 0
    return json.loads(capsys.readouterr().out)


# field -> (value in the config file, value of the explicit flag, the flag)
FLAGS = {
    "objective": ("ar", "plm", ["--objective", "plm"]),
    "family": ("past", "gpt2", ["--family", "gpt2"]),
    "steps": (7, 11, ["--steps", "11"]),
    "decode": ("confidence", "l2r", ["--decode", "l2r"]),
    "loss_weighting": ("elbo", "sequence-mean", ["--loss-weighting", "sequence-mean"]),
    "seed": (5, 3, ["--seed", "3"]),
    "task": ("relationship", "bios", ["--task", "bios"]),
}


@pytest.mark.parametrize("field", sorted(FLAGS))
def test_config_value_survives_flag_defaults_and_explicit_flag_wins(field, tmp_path, capsys):
    in_file, flag_value, flag = FLAGS[field]
    cfg = {field: in_file}
    if field == "family":
        cfg["objective"] = "ar"  # gpt2 trains AR only
    if field == "decode":
        cfg["family"] = "past"
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    assert _dry(["run", "--quick", "--config", str(path)], capsys)[field] == in_file
    assert _dry(["run", "--quick", "--config", str(path), *flag], capsys)[field] == flag_value
    # --set beats the config file, an explicit flag beats --set
    setv = f"{field}={in_file}"
    assert _dry(["run", "--quick", "--config", str(path), "--set", setv, *flag], capsys)[field] == flag_value


def test_facts_flag_beats_config_and_config_facts_is_used(tmp_path, capsys):
    a, b = _facts(tmp_path), tmp_path / "other.jsonl"
    b.write_text(a.read_text())
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"facts": str(a), "objective": "ar"}))
    got = _dry(["run", "--config", str(path)], capsys)
    assert got["facts"] == str(a) and got["task"] == "facts" and got["objective"] == "ar"
    assert _dry(["run", "--config", str(path), "--facts", str(b)], capsys)["facts"] == str(b)


def test_set_objective_is_trained_end_to_end(tmp_path):
    out = tmp_path / "r"
    assert main(["run", "--task", "retrieval", "--set", "objective=ar", "--out", str(out), *TINY]) == 0
    assert json.loads((out / "metrics.json").read_text())["objective"] == "ar"


def test_facts_presets_sized_from_the_file_and_quick_honoured(tmp_path, capsys):
    small, big = _facts(tmp_path, 20), tmp_path / "big.jsonl"
    big.write_text("\n".join(json.dumps({"subject": f"T{i}", "relation": "r", "object": f"O{i}"})
                             for i in range(400)))
    q_small = _dry(["run", "--facts", str(small), "--quick"], capsys)
    q_big = _dry(["run", "--facts", str(big), "--quick"], capsys)
    full = _dry(["run", "--facts", str(small)], capsys)
    assert q_big["steps"] > q_small["steps"]  # sized from the number of facts
    assert q_small["warmup_fraction"] >= 0.3  # the long warmup MLM-U needs (not 5 %)
    assert full["d_model"] > q_small["d_model"]  # --quick selects a different preset


def test_set_n_items_1_is_refused(tmp_path, capsys):
    code = main(["run", "--task", "retrieval", "--out", str(tmp_path / "x"), *TINY, "--set", "n_items=1"])
    assert code == 2
    assert "n_items=1 leaves no held-out queries" in capsys.readouterr().err


@pytest.mark.parametrize("item,message", [
    ("steps", "--set expects KEY=VALUE"),
    ("nope=3", "--set: unknown field 'nope'"),
    ("steps=many", "--set steps: cannot parse 'many'"),
])
def test_set_errors_use_the_cli_format_and_exit_2(item, message, tmp_path, capsys):
    assert main(["run", "--set", item, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("factorization-curse: error: ") and message in err


def test_facts_file_with_byte_order_mark_runs(tmp_path):
    facts = _facts(tmp_path, bom=True)
    out = tmp_path / "bom"
    assert main(["run", "--facts", str(facts), "--out", str(out), *TINY]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_test_forward"] >= 1


def test_compare_prints_both_objectives_and_writes_a_record(tmp_path, capsys):
    facts = _facts(tmp_path, 12)
    out = tmp_path / "cmp"
    assert main(["run", "--facts", str(facts), "--compare", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "| ar | past |" in printed and "| mlm-u | past |" in printed
    rec = json.loads((out / "record.json").read_text())
    assert [r[0] for r in rec["tables"][0]["rows"]] == ["ar", "mlm-u"]
    assert set(rec["metrics"]) == {"ar", "mlm-u"} and rec["seeds"] == [0]
    # the same architecture and parameter count for both objectives
    assert len({r[2] for r in rec["tables"][0]["rows"]}) == 1


def test_seconds_after_resume_count_the_whole_run(tmp_path):
    import factorization_curse._train as tr

    out = tmp_path / "run"
    args = ["run", "--task", "retrieval", "--objective", "mlm-u", "--out", str(out), "--set", "eval_every=10",
            *TINY]
    real = tr.objective_loss
    calls = {"n": 0}

    def slow_then_die(*a, **k):
        import time

        calls["n"] += 1
        if calls["n"] > 20:
            raise KeyboardInterrupt
        time.sleep(0.1)  # 20 steps x 0.1 s = at least 2 s before the interruption
        return real(*a, **k)

    tr.objective_loss = slow_then_die
    try:
        with pytest.raises(KeyboardInterrupt):
            main(args)
    finally:
        tr.objective_loss = real
    assert (out / "train_state").exists()
    assert main([*args, "--resume"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["seconds"] >= 2.0


def test_paper_configs_load_and_smoke_runs(tmp_path, capsys):
    from factorization_curse._paper import experiment_names, load_experiment

    assert set(experiment_names()) >= {"bios", "star-graph", "relationship"}
    for name in experiment_names():
        cfg = load_experiment(name)
        assert cfg["cells"] and cfg["smoke"] and 0 < cfg["wall_seconds"] <= 400  # a 7-minute campaign job
        over = cfg["overrides"]
        assert over["warmup_fraction"] == 0.4  # the warmup fraction validated on the CPU tasks
        assert over["test_max_queries"] > 0 and 0 < over["eval_seconds"] <= 60  # bounded evaluation
        assert RunConfig(task=cfg["preset"], **over)  # the sizes are valid configs
    star = load_experiment("star-graph")["overrides"]
    assert (star["star_degree"], star["star_path_len"], star["star_nodes"]) == (2, 5, 50)  # B&N's G(2, 5, 50)
    out = tmp_path / "smoke"
    assert main(["paper", "--experiment", "relationship", "--smoke", "--device", "cpu", "--out", str(out)]) == 0
    rec = json.loads((out / "record.json").read_text())
    assert [r[1] for r in rec["tables"][0]["rows"]] == ["mlm-u", "ar"]
    assert [r[4] for r in rec["tables"][0]["rows"]] == ["done", "done"]
    with pytest.raises(ValueError, match="unknown experiment"):
        load_experiment("sudoku")


def test_time_budget_shrinks_the_schedule(tmp_path):
    import time

    import torch

    from factorization_curse import OBJECTIVES, TrainConfig, build_model, train
    from factorization_curse._models import ModelConfig

    model = build_model(ModelConfig(vocab_size=12, max_len=8, d_model=16, n_heads=2, n_layers=1))
    data = torch.randint(5, 12, (32, 8))
    data[:, 0] = 2
    import factorization_curse._train as tr

    real = tr.objective_loss

    def slow(*a, **k):
        time.sleep(0.01)
        return real(*a, **k)

    tr.objective_loss = slow
    try:
        hist = train(model, "past", OBJECTIVES["mlm-u"], data, TrainConfig(steps=100000, batch_size=8, max_seconds=1.5),
                     pad_id=0, progress=False)
    finally:
        tr.objective_loss = real
    assert hist[-1]["steps_planned"] == 100000 and hist[-1]["step"] == hist[-1]["steps_budgeted"] < 200
    assert hist[-1]["lr"] < 2e-4  # the cosine schedule ran to its end (min_lr_ratio 0.1 of 1e-3)


def test_compare_with_jobs_refuses_bad_input_before_spawning_workers(tmp_path, capsys, monkeypatch):
    import concurrent.futures

    class NoPool:
        def __init__(self, *a, **k):
            raise AssertionError("worker processes spawned before the input was checked")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", NoPool)
    facts = _facts(tmp_path, 3)  # 3 facts: trained + validation questions leave no test question
    code = main(["run", "--facts", str(facts), "--compare", "--jobs", "2", "--out", str(tmp_path / "c"), *TINY])
    assert code == 2
    assert "leave no held-out test queries" in capsys.readouterr().err
