"""GPU-campaign jobs: bounded evaluation and progressive payloads (the 0.2 campaign lost fc-bios
and fc-star-graph because evaluating every test query did not end in the window)."""

import json

import torch

from factorization_curse import RunConfig
from factorization_curse._experiment import (
    bounded_evaluate,
    build_task,
    run_experiment,
    shuffled_subset,
)
from factorization_curse._table import _progress_row, table_payload

torch.set_num_threads(1)

TINY = dict(task="retrieval", n_items=24, entity_len=1, n_symbols=60, d_model=16, n_heads=2, n_layers=1,
            batch_size=8, warmup_fraction=0.4)


def test_test_subset_is_seeded_balanced_and_any_prefix_has_both_directions():
    task = build_task(RunConfig(**(TINY | {"n_items": 200, "n_symbols": 500})))
    a, b = shuffled_subset(task.test, 40, 1), shuffled_subset(task.test, 40, 1)
    assert a == b and len(a) == 40 and set(a) <= set(task.test)
    assert sum(q.direction == "forward" for q in a) == 20
    assert {q.direction for q in a[:6]} == {"forward", "backward"}  # shuffled, not forward-then-backward
    assert shuffled_subset(task.test, 40, 2) != a


def test_bounded_evaluation_stops_after_the_chunk_that_exhausts_the_budget():
    from factorization_curse._data import Vocab
    from factorization_curse._decode import evaluate_queries
    from factorization_curse._models import ModelConfig, build_model

    task = build_task(RunConfig(**TINY))
    vocab = Vocab.train(task.corpus())
    model = build_model(ModelConfig(vocab_size=len(vocab), max_len=8, d_model=16, n_heads=2, n_layers=1))
    qs = task.test
    r = bounded_evaluate(model, "past", vocab, qs, 8, 0.0, order="l2r", device="cpu",
                         reveal_order_attention=False, return_predictions=True, chunk=4)
    assert r["evaluated"] == 4 == len(r["predictions"]) == r["forward_count"] + r["backward_count"]
    full = bounded_evaluate(model, "past", vocab, qs, 8, float("inf"), order="l2r", device="cpu",
                            reveal_order_attention=False, chunk=4)
    assert full["evaluated"] == len(qs)
    ref = evaluate_queries(model, "past", vocab, qs, 8, order="l2r", device="cpu")
    assert full["forward_accuracy"] == ref["forward_accuracy"] and full["backward_accuracy"] == ref["backward_accuracy"]


def test_run_with_test_cap_and_eval_budget_reports_what_it_scored(tmp_path):
    cfg = RunConfig(**TINY, steps=6, objective="mlm-u", test_max_queries=6, eval_seconds=30.0)
    m = run_experiment(cfg, tmp_path / "run", device="cpu", quiet=True)
    assert m["test_evaluated"] == 6 == m["n_test_forward"] + m["n_test_backward"]
    assert m["n_test_total"] > 6 and set(m["by_decode"]) == {"l2r"}  # bounded: one decoding order
    assert len(json.loads((tmp_path / "run" / "predictions.json").read_text())) == 6


def test_progress_is_written_during_training_and_becomes_a_partial_row(tmp_path):
    snapshots = []
    out = tmp_path / "retrieval" / "mlm-u"

    def grab():
        snapshots.append(json.loads((out / "progress.json").read_text()))

    cfg = RunConfig(**TINY, steps=6, eval_every=2, objective="mlm-u")
    m = run_experiment(cfg, out, device="cpu", quiet=True, on_progress=grab)
    assert [s["history"][-1]["step"] for s in snapshots] == [2, 4, 6]
    row = _progress_row(out, "retrieval", "mlm-u")
    assert row["steps_done"] == 6 and row["status"].startswith("partial")
    payload = table_payload([], [("retrieval", "mlm-u", cfg)], False, 0, "paper-x", partial=[row])
    (r,) = payload["tables"][0]["rows"]
    cols = payload["tables"][0]["columns"]
    assert r[cols.index("status")].startswith("partial") and r[cols.index("test forward")] is None
    assert r[cols.index("val forward")] == m["history"][-1]["val_forward_accuracy"]
    assert _progress_row(tmp_path / "nothing", "retrieval", "ar") is None


def test_deadline_shrinks_training_to_leave_the_evaluation_budget(tmp_path):
    import time

    cfg = RunConfig(**TINY, steps=100000, objective="ar", eval_seconds=1.0, test_max_queries=4)
    t0 = time.time()
    m = run_experiment(cfg, tmp_path / "run", device="cpu", quiet=True, deadline=time.time() + 18.5)
    assert m["steps_budgeted"] is not None and m["steps_done"] == m["steps_budgeted"] < 100000
    assert time.time() - t0 < 18.5


def test_the_grid_record_keeps_each_cells_validation_curve(tmp_path):
    """Prose that reads a learning curve (a peak, then a fall) must cite the record, so the grid's
    payload carries every finished cell's validation history, the same list run_experiment kept."""
    from factorization_curse._table import run_table

    rows = run_table(tmp_path, tasks=("retrieval",), quick=True, device="cpu", quiet=True, plot=False,
                     cells=("ar",), overrides={**{k: v for k, v in TINY.items() if k != "task"},
                                               "steps": 4, "eval_every": 2})
    record = json.loads((tmp_path / "record.json").read_text())
    curve = record["metrics"]["retrieval/ar"]["validation_curve"]
    saved = json.loads((tmp_path / "retrieval" / "ar" / "metrics.json").read_text())["history"]
    assert [h["step"] for h in curve] == [2, 4] and curve == saved and len(rows) == 1
