import json

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
    assert m["task"] == "kb" and m["family"] == "gpt2" and 0 <= m["backward_accuracy"] <= 1


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
