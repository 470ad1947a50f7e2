"""The experiment grid: per-task presets, objectives per task, tables (markdown + CSV) and curves."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

from factorization_curse._experiment import RunConfig, run_experiment

# The paper gives no sizes for the synthetic tasks. "quick" fits a 2-core CPU; "full" follows the
# authors' follow-up code (4+4 layers, 256 dims, lr 1e-3) and has NOT been run here.
# Warmup is the decisive setting on small budgets: on retrieval, MLM-U and PLM with a 50-step
# warmup (5 % of 1000 steps) stayed at 0 % on held-out queries, with a 400-step warmup they reach
# 100 % both ways within 1000 steps (README, "Measured results").
QUICK_WARMUP = 0.4
PRESETS: dict[str, dict[str, dict]] = {
    # single-symbol keys and values: where token reversal equals entity reversal
    "retrieval": {
        "quick": dict(task="retrieval", n_items=100, entity_len=1, n_symbols=200, steps=1000,
                      batch_size=64, warmup_fraction=QUICK_WARMUP),
        "full": dict(task="retrieval", n_items=1000, entity_len=1, n_symbols=2000, steps=20000,
                     batch_size=128, d_model=256, n_layers=4, n_heads=4, warmup_fraction=0.1),
    },
    # the two-token variant ([FC] camera-ready): reversing tokens reverses each entity too
    "retrieval-2tok": {
        "quick": dict(task="retrieval", n_items=100, entity_len=2, n_symbols=60, steps=1000,
                      batch_size=64, warmup_fraction=QUICK_WARMUP),
        "full": dict(task="retrieval", n_items=1000, entity_len=2, n_symbols=200, steps=20000,
                     batch_size=128, d_model=256, n_layers=4, n_heads=4, warmup_fraction=0.1),
    },
    # 3000 steps: with 1000 (400 of warmup) MLM-U had not even fitted its trained queries
    "relationship": {
        "quick": dict(task="relationship", n_items=100, entity_len=1, n_symbols=300, steps=3000,
                      batch_size=64, warmup_fraction=QUICK_WARMUP),
        "full": dict(task="relationship", n_items=500, entity_len=2, n_symbols=100, steps=20000,
                     batch_size=128, d_model=256, n_layers=4, n_heads=4, warmup_fraction=0.1),
    },
    "bios": {
        "quick": dict(task="bios", n_items=100, bios_per_person=2, steps=1000, batch_size=64,
                      warmup_fraction=QUICK_WARMUP),
        "full": dict(task="bios", n_items=1000, bios_per_person=3, steps=20000, batch_size=128,
                     d_model=256, n_layers=4, n_heads=4, warmup_fraction=0.1),
    },
    # Bachmann & Nagarajan's G(2, 5, 50); their counts are 200,000 / 20,000 graphs (the GPU
    # configs in configs/); the CPU preset is far smaller
    "star-graph": {
        "quick": dict(task="star-graph", n_items=2000, star_nodes=50, star_test=200, steps=1000,
                      batch_size=64, warmup_fraction=QUICK_WARMUP),
        "full": dict(task="star-graph", n_items=200000, star_nodes=50, star_test=20000, steps=20000,
                     batch_size=256, d_model=256, n_layers=4, n_heads=4, warmup_fraction=0.05),
    },
    "countries": {
        "quick": dict(task="countries", steps=1000, batch_size=64, warmup_fraction=QUICK_WARMUP),
        "full": dict(task="countries", steps=20000, batch_size=128, d_model=256, n_layers=4, n_heads=4,
                     warmup_fraction=0.1),
    },
}


def facts_preset(n_facts: int, quick: bool) -> dict:
    """Preset of a facts file, sized from its number of facts.

    Steps grow with the number of training sequences (statements + trained questions, about
    2 n_facts) so every sequence is seen about FACTS_QUICK_EPOCHS times whatever the file's size.
    Quick: batch 32 (more updates per epoch), lr 3e-3, a 40 % warmup as for the synthetic tasks,
    and the decoder position embedding (PAST learned the 20-token facts sequences too slowly without:
    after 1200 of 1500 steps it had fitted under half of its trained questions).
    """
    n_seq = 2 * n_facts
    if quick:
        steps = int(min(8000, max(1000, round(FACTS_QUICK_EPOCHS * n_seq / 32))))
        # lr 3e-3 and 640 epochs (6000 steps for 150 facts) chosen on validation questions of
        # examples/timezone_facts.jsonl: MLM-U 0.45 / 0.18 at 6000 steps, 0.23 / 0.23 at 3000,
        # 0.00 / 0.05 with lr 1e-3; without the decoder position embedding (everything else the
        # same) 0.14 / 0.00 at 6000 steps, so it stays (results/facts_timezones_no_decoder_positions.json)
        # weight decay 0.1 (not 1e-4): MLM-U 0.55 / 0.18 on validation at 3000 steps against
        # 0.23 / 0.23 (results/facts_timezones_wd01_3000.json, facts_timezones_lr3e-3.json)
        return dict(task="facts", steps=steps, batch_size=32, lr=3e-3, weight_decay=0.1,
                    warmup_fraction=QUICK_WARMUP, decoder_positions=True)
    steps = int(min(50000, max(5000, round(2 * FACTS_QUICK_EPOCHS * n_seq / 128))))
    return dict(task="facts", steps=steps, batch_size=128, d_model=256, n_layers=4, n_heads=4,
                warmup_fraction=0.1, decoder_positions=True)


FACTS_QUICK_EPOCHS = 640  # twice the retrieval quick preset's (1000 steps x 64 / 200 sequences)


def preset_kwargs(task: str, *, quick: bool, facts: str | None = None) -> dict:
    """The preset fields of `task` (a grid experiment name, a task, or "facts" with its file)."""
    if task == "facts":
        if not facts:
            raise ValueError("task 'facts' needs a facts file (--facts FILE.jsonl)")
        from factorization_curse._tasks import load_facts

        return facts_preset(len(load_facts(facts)), quick) | {"facts": str(facts)}
    if task == "wikireversal":
        # the paper: 1500 epochs, lr 5e-5 for MLM-U at 109 M parameters; quick: a CPU smoke size
        if quick:
            return dict(task=task, steps=1000, batch_size=32, warmup_fraction=QUICK_WARMUP,
                        train_query_fraction=0.8, validation_fraction=0.1, min_relation_count=1)
        return dict(task=task, steps=100000, batch_size=128, d_model=576, n_heads=9, n_layers=12,
                    lr=5e-5, weight_decay=0.0, warmup_fraction=0.01, train_query_fraction=0.8,
                    validation_fraction=0.1)
    if task not in PRESETS:
        raise ValueError(f"no preset for task {task!r}; valid: {list(PRESETS)}")
    return dict(PRESETS[task]["quick" if quick else "full"])


# Each experiment's cells: objectives on PAST (the same architecture and parameter count for all),
# then "objective@family" rows, the paper's GPT-2 / BERT baselines (2 * n_layers layers: matched
# parameter count).
GRID: dict[str, tuple[str, ...]] = {
    "retrieval": ("ar", "ar-reverse-token", "ar-reverse-entity", "mlm-15", "mlm-40", "mlm-85",
                  "mlm-u", "plm", "ar@gpt2", "mlm-15@bert"),
    "retrieval-2tok": ("ar", "ar-reverse-token", "ar-reverse-entity", "mlm-u", "plm", "ar@gpt2",
                       "ar-reverse-token@gpt2"),
    "relationship": ("ar", "ar-reverse-entity", "ar-reverse-entity-nodelim", "mlm-15", "mlm-40",
                     "mlm-85", "mlm-u", "plm", "ar@gpt2", "mlm-15@bert"),
    "bios": ("ar", "ar-reverse-token", "ar-reverse-entity", "mlm-15", "mlm-40", "mlm-85", "mlm-u",
             "plm", "ar@gpt2", "mlm-15@bert"),
    "star-graph": ("ar", "mlm-u", "plm", "ar@gpt2"),
    "countries": ("ar", "mlm-15", "mlm-u", "plm", "ar@gpt2"),
}

COLUMNS = ("task", "variant", "objective", "family", "forward_accuracy", "backward_accuracy",
           "incorrect_inference", "val_forward_accuracy", "val_backward_accuracy",
           "forward_token_accuracy", "backward_token_accuracy",
           "confidence_forward_accuracy", "confidence_backward_accuracy", "steps", "n_parameters",
           "seconds", "device")


def parse_cell(cell: str) -> tuple[str, str | None]:
    """"objective" or "objective@family" -> (objective, family or None)."""
    obj, _, fam = cell.partition("@")
    return obj, (fam or None)


def preset_config(task: str, objective: str, *, quick: bool, seed: int = 0, **overrides: object) -> RunConfig:
    """The RunConfig of one grid experiment (`task` is a PRESETS key) and objective."""
    kw = preset_kwargs(task, quick=quick)
    kw.update(overrides)
    kw["objective"] = objective
    kw["seed"] = seed
    return RunConfig(**kw)


def _row(m: dict, variant: str) -> dict:
    conf = m.get("by_decode", {}).get("confidence", {})
    row = {k: m.get(k) for k in COLUMNS}
    row["variant"] = variant
    row["confidence_forward_accuracy"] = conf.get("forward_accuracy")
    row["confidence_backward_accuracy"] = conf.get("backward_accuracy")
    return row


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def write_tables(rows: list[dict], out: Path) -> str:
    """results.csv and results.md; returns the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "results.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in COLUMNS})
    head = ("experiment", "objective", "model", "forward", "backward", "incorrect", "val fwd", "val bwd",
            "fwd (conf.)", "bwd (conf.)", "steps", "params", "seconds")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = (r["variant"], r["objective"], r["family"], r["forward_accuracy"], r["backward_accuracy"],
                r["incorrect_inference"], r["val_forward_accuracy"], r["val_backward_accuracy"],
                r["confidence_forward_accuracy"],
                r["confidence_backward_accuracy"], r["steps"], r["n_parameters"],
                None if r["seconds"] is None else round(r["seconds"]))
        lines.append("| " + " | ".join(_fmt(v) for v in vals) + " |")
    md = "\n".join(lines) + "\n"
    (out / "results.md").write_text(md)
    return md


def plot_curves(histories: dict[str, list[dict]], path: Path, title: str) -> Path:
    """Forward (solid) and backward (dashed) validation accuracy against training step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, (name, hist) in enumerate(histories.items()):
        color = f"C{i % 10}"
        steps = [h["step"] for h in hist]
        for key, style in (("val_forward_accuracy", "-"), ("val_backward_accuracy", "--")):
            ys = [h.get(key) for h in hist]
            if any(y is not None for y in ys):
                ax.plot(steps, [float("nan") if y is None else y for y in ys], style, color=color,
                        label=f"{name} {key.split('_')[1]}")
    ax.set_xlabel("training step")
    ax.set_ylabel("validation exact match")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _cell(args: tuple) -> dict:
    """One grid cell in a worker process (one torch thread each)."""
    import torch

    cfg, out, device, threads, resume, every, *rest = args
    torch.set_num_threads(threads)
    return run_experiment(cfg, out, device=device, quiet=True, argv=["table", cfg.task, cfg.objective],
                          resume=resume, checkpoint_every=every, deadline=rest[0] if rest else None)


def grid_cells(
    tasks: tuple[str, ...] | None = None,
    objectives: tuple[str, ...] | None = None,
    *,
    quick: bool = True,
    seed: int = 0,
    overrides: dict | None = None,
    cells: tuple[str, ...] | None = None,
) -> list[tuple[str, str, RunConfig]]:
    """(experiment, cell name, RunConfig) for every selected cell of the grid (`cells`: names
    such as "mlm-u" or "ar@gpt2")."""
    wanted = cells
    cells = []
    for task in tasks or tuple(GRID):
        if task not in GRID:
            raise ValueError(f"unknown task {task!r}; valid: {list(GRID)}")
        for cell in GRID[task]:
            obj, fam = parse_cell(cell)
            if (objectives and obj not in objectives) or (wanted and cell not in wanted):
                continue
            kw = dict(overrides or {})
            if fam is not None:
                kw["family"] = fam
            cells.append((task, cell, preset_config(task, obj, quick=quick, seed=seed, **kw)))
    return cells


def table_payload(rows: list[dict], cells: list, quick: bool, seed: int, experiment: str = "table",
                  partial: list[dict] | None = None) -> dict:
    """The result-record payload of a (possibly partial) grid.

    `partial`: rows of cells still running (from their progress.json): no test numbers, the
    last validation point and the steps done so far. With them the table gains the columns
    "status", "steps done" and "test queries" (queries scored / test set)."""
    columns = ["experiment", "objective", "model", "params", "test forward", "test backward",
               "incorrect inference", "val forward", "val backward", "steps", "seconds"]
    acc = ("test forward", "test backward", "incorrect inference", "val forward", "val backward")
    if partial is not None:
        return _progress_payload(rows, partial, cells, quick, seed, experiment, acc)
    return {
        "experiment": experiment,
        "seeds": [seed],
        "config": {"quick": quick, "cells": {f"{t}/{c}": asdict(cfg) for t, c, cfg in cells}},
        # each cell's validation curve rides along, so prose about a curve cites the record
        "metrics": {f"{r['variant']}/{r['cell']}": {**{k: r.get(k) for k in COLUMNS},
                                                     "validation_curve": r.get("history")} for r in rows},
        "tables": [{
            "name": "main",
            "caption": "held-out exact match, greedy left-to-right decoding; test scored once, "
                       "validation curves only",
            "columns": columns,
            "rows": [[r["variant"], r["objective"], r["family"], r["n_parameters"], r["forward_accuracy"],
                      r["backward_accuracy"], r["incorrect_inference"], r["val_forward_accuracy"],
                      r["val_backward_accuracy"], r["steps"],
                      None if r["seconds"] is None else round(r["seconds"])] for r in rows],
            "formats": {c: ".2f" for c in acc},
        }],
    }


def _progress_row(path: Path, task: str, cell: str) -> dict | None:
    """A running cell's row from its progress.json (None if it has not evaluated yet)."""
    try:
        p = json.loads((path / "progress.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    last = p["history"][-1] if p.get("history") else {}
    return {"variant": task, "cell": cell, "objective": p["objective"], "family": p["family"],
            "n_parameters": p.get("n_parameters"), "val_forward_accuracy": last.get("val_forward_accuracy"),
            "val_backward_accuracy": last.get("val_backward_accuracy"), "steps_done": last.get("step"),
            "steps": last.get("steps_budgeted", p.get("steps_planned")), "seconds": last.get("seconds"),
            "status": "partial: training (no test score)", "history": p.get("history")}


def _progress_payload(rows, partial, cells, quick, seed, experiment, acc) -> dict:
    columns = ["experiment", "objective", "model", "params", "status", "test forward", "test backward",
               "incorrect inference", "val forward", "val backward", "steps done", "steps planned",
               "test queries", "seconds"]
    table_rows = []
    for r in rows:
        n_eval, n_all = r.get("test_evaluated"), r.get("n_test_total")
        table_rows.append([r["variant"], r["objective"], r["family"], r["n_parameters"],
                           "done" if n_eval == n_all else "done (test subset)", r["forward_accuracy"],
                           r["backward_accuracy"], r["incorrect_inference"], r["val_forward_accuracy"],
                           r["val_backward_accuracy"], r.get("steps_done"), r.get("steps_budgeted") or r["steps"],
                           f"{n_eval}/{n_all}", None if r["seconds"] is None else round(r["seconds"])])
    for r in partial:
        table_rows.append([r["variant"], r["objective"], r["family"], r["n_parameters"], r["status"], None, None,
                           None, r["val_forward_accuracy"], r["val_backward_accuracy"], r["steps_done"], r["steps"],
                           None, None if r["seconds"] is None else round(r["seconds"])])
    metrics = {f"{r['variant']}/{r['cell']}": {k: r.get(k) for k in (*COLUMNS, "steps_done", "steps_budgeted",
                                                                      "test_evaluated", "n_test_total")}
               for r in rows}
    metrics |= {f"{r['variant']}/{r['cell']}": r for r in partial}
    return {
        "experiment": experiment,
        "seeds": [seed],
        "config": {"quick": quick, "cells": {f"{t}/{c}": asdict(cfg) for t, c, cfg in cells}},
        "metrics": metrics,
        "tables": [{
            "name": "main",
            "caption": "held-out exact match, greedy left-to-right decoding; test scored once (on a seeded "
                       "random subset where the time budget demanded it), validation curves only",
            "columns": columns, "rows": table_rows, "formats": {c: ".2f" for c in acc},
        }],
    }


def run_table(
    out: str | Path,
    *,
    tasks: tuple[str, ...] | None = None,
    objectives: tuple[str, ...] | None = None,
    quick: bool = True,
    seed: int = 0,
    device: str = "auto",
    quiet: bool = False,
    overrides: dict | None = None,
    jobs: int = 1,
    resume: bool = False,
    checkpoint_every: int = 0,
    experiment: str = "table",
    plot: bool = True,
    cells: tuple[str, ...] | None = None,
    deadline: float | None = None,
    progress_rows: bool = False,
) -> list[dict]:
    """Run the grid (experiments x their cells), write tables, curves, per-run folders and the
    result-record payload `record.json`, all rewritten after every finished cell.

    `resume` skips cells that already finished with the same configuration and continues
    interrupted ones from their saved training state.

    `jobs` > 1 runs that many cells at once in separate processes (e.g. on a many-core machine
    or sharing one GPU between small models).

    `deadline` (a `time.time()` value) is handed to every cell (see `run_experiment`).
    `progress_rows`: record.json also lists the cells still training (status, steps done, last
    validation point), rewritten whenever a cell evaluates, so a job killed by a time limit keeps
    them.
    """
    from factorization_curse._train import atomic_write

    out = Path(out)
    cells = grid_cells(tasks, objectives, quick=quick, seed=seed, overrides=overrides, cells=cells)
    if not cells:
        raise ValueError("no grid cell matches the selection")
    results: dict[tuple[str, str], dict] = {}

    def finish() -> list[dict]:
        rows, partial = [], []
        for t, c, _ in cells:
            if (t, c) in results:
                m = results[(t, c)]
                rows.append(_row(m, t) | {"cell": c} | {k: m.get(k) for k in (
                    "steps_done", "steps_budgeted", "test_evaluated", "n_test_total", "history")})
            elif progress_rows:
                r = _progress_row(out / t / c, t, c)
                if r is not None:
                    partial.append(r)
        if rows:
            write_tables(rows, out)
            atomic_write(out / "results.json", lambda tmp: tmp.write_text(json.dumps(rows, indent=2)))
        if rows or partial:
            payload = table_payload(rows, cells, quick, seed, experiment, partial if progress_rows else None)
            atomic_write(out / "record.json", lambda tmp: tmp.write_text(json.dumps(payload, indent=2)))
        return rows

    def report(t: str, c: str, m: dict) -> None:
        results[(t, c)] = m
        if not quiet:
            print(f"{t:15s} {c:28s} fwd={_fmt(m['forward_accuracy'])} bwd={_fmt(m['backward_accuracy'])} "
                  f"val={_fmt(m['val_forward_accuracy'])}/{_fmt(m['val_backward_accuracy'])} "
                  f"({m['seconds']:.0f} s)", flush=True)
        finish()

    if jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(_cell, (cfg, out / t / c, device, 1, resume, checkpoint_every, deadline)): (t, c)
                       for t, c, cfg in cells}
            from concurrent.futures import FIRST_COMPLETED, wait

            pending = set(futures)
            while pending:
                # wake up every 15 s to fold running cells' progress into record.json
                finished, pending = wait(pending, timeout=15 if progress_rows else None,
                                         return_when=FIRST_COMPLETED)
                for f in finished:
                    report(*futures[f], f.result())
                if progress_rows and not finished:
                    finish()
    else:
        for t, c, cfg in cells:
            report(t, c, run_experiment(cfg, out / t / c, device=device, quiet=quiet,
                                        argv=["table", t, c], resume=resume, checkpoint_every=checkpoint_every,
                                        deadline=deadline, on_progress=finish if progress_rows else None))
    rows = finish()
    for task in dict.fromkeys(t for t, _, _ in cells) if plot else ():
        histories = {f"{c}" + ("" if "@" in c else "@past"): results[(t, c)]["history"]
                     for t, c, _ in cells if t == task}
        try:
            plot_curves(histories, out / f"curves_{task}.png", f"{task}: validation accuracy")
        except ImportError:
            print("matplotlib not installed: no learning-curve PNG (pip install factorization-curse[plot])")
    return rows
