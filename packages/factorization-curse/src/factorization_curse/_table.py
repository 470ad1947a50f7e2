"""The experiment grid: per-task presets, objectives per task, tables (markdown + CSV) and curves."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from factorization_curse._experiment import RunConfig, run_experiment

# The paper gives no sizes for the synthetic tasks. "quick" fits a 2-core CPU; "full" follows the
# authors' follow-up code (4+4 layers, 256 dims, lr 1e-3) and has NOT been run here.
# Warmup is the decisive setting on small budgets: on retrieval, MLM-U and PLM with a 50-step
# warmup (5 % of 1000 steps) stayed at 0 % on held-out queries, with a 400-step warmup they reach
# 100 % both ways within 1000 steps (README, "Measured results").
QUICK_WARMUP = 0.4
PRESETS: dict[str, dict[str, dict]] = {
    # single-symbol keys and values are the paper's main retrieval variant; entity_len=2 gives
    # the camera-ready's two-token variant
    "retrieval": {
        "quick": dict(n_items=100, entity_len=1, n_symbols=200, steps=1000, batch_size=64,
                      warmup_fraction=QUICK_WARMUP),
        "full": dict(n_items=1000, entity_len=1, n_symbols=2000, steps=20000, batch_size=128,
                     d_model=256, n_layers=4, n_heads=4, warmup_fraction=0.1),
    },
    # 3000 steps: with 1000 (400 of warmup) MLM-U had not even fitted its trained queries
    "relationship": {
        "quick": dict(n_items=100, entity_len=1, n_symbols=300, steps=3000, batch_size=64,
                      warmup_fraction=QUICK_WARMUP),
        "full": dict(n_items=500, entity_len=2, n_symbols=100, steps=20000, batch_size=128,
                     d_model=256, n_layers=4, n_heads=4, warmup_fraction=0.1),
    },
    "bios": {
        "quick": dict(n_items=100, bios_per_person=2, steps=1000, batch_size=64,
                      warmup_fraction=QUICK_WARMUP),
        "full": dict(n_items=1000, bios_per_person=3, steps=20000, batch_size=128,
                     d_model=256, n_layers=4, n_heads=4, warmup_fraction=0.1),
    },
    "star-graph": {
        "quick": dict(n_items=2000, star_nodes=20, star_test=200, steps=1000, batch_size=64,
                      warmup_fraction=QUICK_WARMUP),
        "full": dict(n_items=20000, star_nodes=50, star_test=500, steps=20000, batch_size=256,
                     d_model=256, n_layers=4, n_heads=4, warmup_fraction=0.1),
    },
    "countries": {
        "quick": dict(steps=1000, batch_size=64, warmup_fraction=QUICK_WARMUP),
        "full": dict(steps=20000, batch_size=128, d_model=256, n_layers=4, n_heads=4, warmup_fraction=0.1),
    },
}

GRID: dict[str, tuple[str, ...]] = {
    "retrieval": ("ar", "ar-reverse-token", "ar-reverse-entity", "mlm-15", "mlm-40", "mlm-85",
                  "mlm-u", "plm"),
    "relationship": ("ar", "ar-reverse-entity", "ar-reverse-entity-nodelim", "mlm-15", "mlm-40",
                     "mlm-85", "mlm-u", "plm"),
    "bios": ("ar", "ar-reverse-token", "ar-reverse-entity", "mlm-15", "mlm-40", "mlm-85", "mlm-u",
             "plm"),
    "star-graph": ("ar", "ar-reverse-token", "mlm-u"),
    "countries": ("ar", "mlm-15", "mlm-u", "plm"),
}

COLUMNS = ("task", "objective", "family", "forward_accuracy", "backward_accuracy",
           "incorrect_inference", "forward_token_accuracy", "backward_token_accuracy",
           "confidence_forward_accuracy", "confidence_backward_accuracy", "steps", "n_parameters",
           "seconds", "device")


def preset_config(task: str, objective: str, *, quick: bool, seed: int = 0, **overrides: object) -> RunConfig:
    if task not in PRESETS:
        raise ValueError(f"no preset for task {task!r}; valid: {list(PRESETS)}")
    kw = dict(PRESETS[task]["quick" if quick else "full"])
    kw.update(overrides)
    return RunConfig(task=task, objective=objective, seed=seed, **kw)


def _row(m: dict) -> dict:
    conf = m.get("by_decode", {}).get("confidence", {})
    row = {k: m.get(k) for k in COLUMNS}
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
    head = ("task", "objective", "model", "forward", "backward", "incorrect", "fwd (conf.)",
            "bwd (conf.)", "steps", "params", "seconds")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = (r["task"], r["objective"], r["family"], r["forward_accuracy"], r["backward_accuracy"],
                r["incorrect_inference"], r["confidence_forward_accuracy"],
                r["confidence_backward_accuracy"], r["steps"], r["n_parameters"],
                None if r["seconds"] is None else round(r["seconds"]))
        lines.append("| " + " | ".join(_fmt(v) for v in vals) + " |")
    md = "\n".join(lines) + "\n"
    (out / "results.md").write_text(md)
    return md


def plot_curves(histories: dict[str, list[dict]], path: Path, title: str) -> Path:
    """Forward (solid) and backward (dashed) held-out accuracy against training step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, (name, hist) in enumerate(histories.items()):
        color = f"C{i % 10}"
        steps = [h["step"] for h in hist]
        for key, style in (("forward_accuracy", "-"), ("backward_accuracy", "--")):
            ys = [h.get(key) for h in hist]
            if any(y is not None for y in ys):
                ax.plot(steps, [float("nan") if y is None else y for y in ys], style, color=color,
                        label=f"{name} {key.split('_')[0]}")
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out exact match")
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

    cfg, out, device, threads, resume, every = args
    torch.set_num_threads(threads)
    return run_experiment(cfg, out, device=device, quiet=True, argv=["table", cfg.task, cfg.objective],
                          resume=resume, checkpoint_every=every)


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
) -> list[dict]:
    """Run the grid (tasks x their objectives), write tables, curves and per-run folders.

    `resume` skips cells that already finished with the same configuration and continues
    interrupted ones from their saved training state.

    `jobs` > 1 runs that many cells at once in separate processes (e.g. on a many-core machine
    or sharing one GPU between small models).
    """
    out = Path(out)
    tasks = tasks or tuple(GRID)
    cells = []
    for task in tasks:
        if task not in GRID:
            raise ValueError(f"unknown task {task!r}; valid: {list(GRID)}")
        for obj in GRID[task]:
            if objectives and obj not in objectives:
                continue
            cells.append(preset_config(task, obj, quick=quick, seed=seed, **(overrides or {})))
    results: dict[tuple[str, str], dict] = {}

    def report(m: dict) -> None:
        results[(m["task"], m["objective"])] = m
        if not quiet:
            print(f"{m['task']:13s} {m['objective']:26s} fwd={_fmt(m['forward_accuracy'])} "
                  f"bwd={_fmt(m['backward_accuracy'])} ({m['seconds']:.0f} s)", flush=True)

    if jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            args = [(c, out / c.task / c.objective, device, 1, resume, checkpoint_every) for c in cells]
            for m in pool.map(_cell, args):
                report(m)
    else:
        for c in cells:
            report(run_experiment(c, out / c.task / c.objective, device=device, quiet=quiet,
                                  argv=["table", c.task, c.objective], resume=resume,
                                  checkpoint_every=checkpoint_every))
    rows: list[dict] = []
    for task in tasks:
        histories = {}
        for c in cells:
            if c.task != task:
                continue
            m = results[(task, c.objective)]
            histories[c.objective] = m["history"]
            rows.append(_row(m))
        if rows:
            write_tables(rows, out)
        if histories:
            try:
                plot_curves(histories, out / f"curves_{task}.png", f"{task}: held-out accuracy")
            except ImportError:
                print("matplotlib not installed: no learning-curve PNG (pip install factorization-curse[plot])")
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    return rows
