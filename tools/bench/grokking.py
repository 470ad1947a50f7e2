"""Benchmark grokking-theory: batched engine vs a plain per-run loop, and phase-diagram agreement
with the authors' raw data (shared/data/grokking/phase_diagram/*.h5).

    uv run --group bench tools/bench/grokking.py                        # CPU: speed + 10^4-budget agreement
    uv run --group bench tools/bench/grokking.py --budget 100000 --device cuda --seeds 58,59,60
    uv run --group bench tools/bench/grokking.py --figures-from packages/grokking-theory/docs/gpu_h200_paper_scale.json --out /tmp/figs

Agreement at a budget B < 10^5 compares against the authors' steps truncated to B (a cell whose
stored step is >= B counts as "not reached"), with the paper's lag of 10^3 steps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from grokking_theory._batched import RunSpec, run_sweep, train_batched
from grokking_theory._config import ToyConfig
from grokking_theory._phases import (
    PHASES,
    classify_phase,
    from_budget_encoding,
    phase_agreement,
    truncate_budget,
)
from grokking_theory._toy import train_toy

ROOT = Path(__file__).resolve().parents[2]
DIAGRAMS = {
    # name: (file, seed, loss, x field, y field, x dataset, y dataset, transpose)
    "add_r": ("data_add_r.h5", 58, "mse", "weight_decay_dec", "eta_dec", "weight_decay", "learning_rate"),
    "add_c": ("data_add_c.h5", 6, "ce", "weight_decay_dec", "eta_dec", "weight_decay", "learning_rate"),
    "add_r_reprlr": ("data_add_r_reprlr.h5", 58, "mse", "eta_reprs", "eta_dec", "repr_lr", "decoder_lr"),
}


def base_config(loss: str, seed: int, steps: int) -> ToyConfig:
    cfg = ToyConfig(seed=seed, steps=steps, rng_order="sweep", loss=loss)
    if loss == "ce":  # classification notebook: softmax + mean(-log p * onehot) = CE/19, Adam on E
        cfg = cfg.replace(ce_scale=1 / (2 * cfg.p - 1), repr_optimizer="adam")
    return cfg


def load_authors(data: Path, name: str) -> dict:
    import h5py

    file, seed, loss, xf, yf, xd, yd = DIAGRAMS[name]
    path = data / "grokking" / "phase_diagram" / file
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; pass --data pointing at shared/data")
    with h5py.File(path, "r") as f:
        tr, te = f["train_steps"][()], f["test_steps"][()]
        xs, ys = f[xd][()], f[yd][()]
    if tr.shape != (len(ys), len(xs)) or not np.isfinite(tr).all() or not np.isfinite(te).all():
        raise ValueError(f"{path}: expected finite train/test steps of shape {(len(ys), len(xs))}")
    return {"train": from_budget_encoding(tr, 100000), "test": from_budget_encoding(te, 100000),
            "x": [float(v) for v in xs], "y": [float(v) for v in ys], "seed": seed, "loss": loss,
            "x_name": xf, "y_name": yf}


def bench_speed(n_runs: int, steps: int, repeats: int) -> dict:
    """Per-run loop (the faithful trainer, one run after another) vs one batched call."""
    torch.set_num_threads(1)
    cfg = base_config("mse", 58, steps)
    lrs = 10 ** np.linspace(-5, -2, n_runs)
    specs = [RunSpec(seed=58, eta_dec=float(lr)) for lr in lrs]
    loop_t, batch_t, loop_c, batch_c = [], [], [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for s in specs:
            train_toy(cfg.replace(eta_dec=s.eta_dec))
        loop_t.append(time.perf_counter() - t0)
        loop_c.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        train_batched(cfg, specs, early_stop=False)
        batch_t.append(time.perf_counter() - t0)
        batch_c.append(time.process_time() - c0)
    loop, batch = statistics.median(loop_t), statistics.median(batch_t)
    lc, bc = statistics.median(loop_c), statistics.median(batch_c)
    return {"n_runs": n_runs, "steps": steps, "loop_s": loop, "batched_s": batch, "ratio": loop / batch,
            "loop_cpu_s": lc, "batched_cpu_s": bc, "cpu_ratio": lc / bc,
            "loop_ms_per_run_step": 1e3 * loop / (n_runs * steps),
            "batched_ms_per_run_step": 1e3 * batch / (n_runs * steps),
            "batched_cpu_ms_per_run_step": 1e3 * bc / (n_runs * steps)}


def bench_paper_batch_cpu(steps: int) -> float:
    """CPU milliseconds per run-step of the batched engine at the diagram's batch (176 runs, one
    thread); process time, so other jobs on a shared machine do not inflate it."""
    torch.set_num_threads(1)
    cfg = base_config("mse", 58, steps)
    specs = [RunSpec(seed=58, eta_dec=float(lr), weight_decay_dec=float(wd))
             for lr in 10 ** np.linspace(-5, -2, 16) for wd in range(11)]
    c0 = time.process_time()
    train_batched(cfg, specs, early_stop=False)
    return 1e3 * (time.process_time() - c0) / (len(specs) * steps)


def bench_agreement(data: Path, name: str, budget: int, seeds: list[int], workers: int, device: str,
                    max_seconds: float | None = None) -> dict:
    a = load_authors(data, name)
    cfg = base_config(a["loss"], a["seed"], budget)
    run_seeds = [a["seed"]] + [s for s in seeds if s != a["seed"]]
    specs = [RunSpec.from_config(cfg, seed=s, **{a["x_name"]: x, a["y_name"]: y})
             for s in run_seeds for y in a["y"] for x in a["x"]]
    t0 = time.perf_counter()
    run = run_sweep(cfg, specs, workers=workers, device=device, max_seconds=max_seconds)
    wall = time.perf_counter() - t0
    shape = (len(run_seeds), len(a["y"]), len(a["x"]))
    tr, te = run.step_train.reshape(shape), run.step_test.reshape(shape)
    theirs = classify_phase(truncate_budget(a["train"], budget), truncate_budget(a["test"], budget))
    ours = classify_phase(tr, te)
    exact = (tr[0] == truncate_budget(a["train"], budget)) & (te[0] == truncate_budget(a["test"], budget))
    counts = lambda ph: {n: int((ph == k).sum()) for k, n in enumerate(PHASES)}  # noqa: E731
    return {
        "diagram": name, "budget": budget, "seeds": run_seeds, "cells": int(np.prod(shape[1:])),
        "agreement_same_seed": phase_agreement(ours[0], theirs),
        "agreement_other_seeds": [phase_agreement(ours[i], theirs) for i in range(1, len(run_seeds))],
        "exact_step_cells": int(exact.sum()),
        "ours_counts": counts(ours[0]), "authors_counts": counts(theirs),
        "wall_s": wall, "run_steps": int(run.stopped_at.sum()),
        "truncated_by_time": int(((run.stopped_at < budget) & ~((run.step_train >= 0) & (run.step_test >= 0))).sum()),
        "ms_per_run_step": 1e3 * wall / max(1, int(run.stopped_at.sum())),
        "ours_phases": ours.tolist(), "authors_phases": theirs.tolist(),
        "ours_train": tr.tolist(), "ours_test": te.tolist(),
    }


def paper_scale_estimate(data: Path, ms_per_run_step: float, workers: int) -> dict:
    """Run-steps the paper-scale regression diagram needs with early stopping (a cell stops once
    both accuracies reached; the others run the whole 10^5), from the authors' seed-58 steps."""
    a = load_authors(data, "add_r")
    tr, te = a["train"], a["test"]
    stop = np.where((tr >= 0) & (te >= 0), np.maximum(tr, te) + 1, 100000)
    run_steps = int(stop.sum()) * 3
    return {"run_steps_3_seeds": run_steps, "ms_per_run_step": ms_per_run_step, "workers": workers,
            "estimated_minutes": run_steps * ms_per_run_step / 1e3 / 60 / workers}


def h200_figures(source: Path, out: Path) -> list[Path]:
    """Redraw the phase-diagram figures of an agreement run (``docs/gpu_h200_paper_scale.json``)
    from the JSON alone: one panel per seed plus the majority over seeds; also write each diagram's
    steps as ``<diagram>/phase_diagram.json`` for ``grokking-theory compare-authors``.

    The script that drew ``docs/add_*_h200.png`` in 0.1 was not committed; this reconstruction
    draws them with the package's own ``plot_phase_diagram`` and the title format of those figures.
    """
    from grokking_theory._phases import PhaseDiagram, grid
    from grokking_theory._plot import plot_phase_diagram

    data = json.loads(source.read_text())
    out.mkdir(parents=True, exist_ok=True)
    grids = {"add_r": ("authors", "mse"), "add_c": ("authors", "ce"), "add_r_reprlr": ("authors-reprlr", "mse")}
    paths = []
    for r in data["results"]:
        name, loss = grids[r["diagram"]]
        g = grid(name, loss)
        seeds = r["seeds"]
        dia = PhaseDiagram(x_name=g.x_name, x_values=g.x_values, y_name=g.y_name, y_values=g.y_values,
                           seeds=seeds, budget=r["budget"], lag=1000.0,
                           step_train=np.array(r["ours_train"]), step_test=np.array(r["ours_test"]),
                           step_rqi=np.full(np.shape(r["ours_train"]), -1),
                           final_rqi=np.full(np.shape(r["ours_train"]), np.nan),
                           config=base_config(loss, seeds[0], r["budget"]))
        if dia.phases.tolist() != r["ours_phases"]:
            raise ValueError(f"{source}: {r['diagram']} phases do not follow from its steps")
        title = (f"{r['diagram']}: 10^5 steps on H200, {100 * r['agreement_same_seed']:.1f} % cells as the "
                 f"authors' seed-{seeds[0]} data")
        paths.append(plot_phase_diagram(dia, out / f"{r['diagram']}_h200.png", title=title))
        # the same steps as a phase_diagram.json, for `grokking-theory compare-authors`
        (out / r["diagram"]).mkdir(exist_ok=True)
        (out / r["diagram"] / "phase_diagram.json").write_text(json.dumps(dia.to_dict()))
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--figures-from", type=Path, default=None,
                    help="only redraw the phase-diagram PNGs from an agreement JSON (e.g. "
                         "packages/grokking-theory/docs/gpu_h200_paper_scale.json) into --out")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="shared data folder")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench", help="output folder")
    ap.add_argument("--budget", type=int, default=10000, help="update budget of the agreement sweeps")
    ap.add_argument("--diagrams", default="add_r", help=f"comma list of {sorted(DIAGRAMS)}")
    ap.add_argument("--seeds", default="", help="extra seeds for the agreement sweeps (comma list)")
    ap.add_argument("--workers", type=int, default=2, help="processes for CPU sweeps")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--speed-runs", type=int, default=8)
    ap.add_argument("--speed-steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--paper-batch-steps", type=int, default=50, help="steps of the 176-run CPU-cost probe")
    ap.add_argument("--max-seconds", type=float, default=None, help="wall limit per sweep (cells cut short are counted)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.figures_from is not None:
        for path in h200_figures(args.figures_from, args.out):
            print(path)
        return 0
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    res: dict = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": platform.machine(),
                 "cpus": os.cpu_count(), "torch": torch.__version__, "device": args.device,
                 "argv": sys.argv}
    if args.device.startswith("cuda"):
        res["gpu"] = torch.cuda.get_device_name(0)
    if not args.skip_speed:
        res["speed"] = bench_speed(args.speed_runs, args.speed_steps, args.repeats)
        print(json.dumps(res["speed"]), flush=True)
        if not args.device.startswith("cuda"):
            cpu_ms = bench_paper_batch_cpu(args.paper_batch_steps)
            res["paper_scale_cpu"] = paper_scale_estimate(args.data, cpu_ms, 2)
            print(json.dumps(res["paper_scale_cpu"]), flush=True)
    res["agreement"] = []
    for name in [d for d in args.diagrams.split(",") if d]:
        r = bench_agreement(args.data, name, args.budget, seeds, args.workers, args.device, args.max_seconds)
        res["agreement"].append(r)
        print(json.dumps({k: v for k, v in r.items() if not k.startswith(("ours_p", "authors_p", "ours_t"))}), flush=True)
        (args.out / "grokking.json").write_text(json.dumps(res, indent=1))
    if res["agreement"]:
        add = [r for r in res["agreement"] if r["diagram"] == "add_r"]
        if add:
            res["paper_scale"] = paper_scale_estimate(args.data, add[0]["ms_per_run_step"] * (args.workers if args.device == "cpu" else 1), args.workers if args.device == "cpu" else 1)
    lines = [f"# grokking-theory benchmark ({res['date']}, {res['machine']}, {res['cpus']} CPUs, torch {res['torch']}, device {args.device})", ""]
    if "speed" in res:
        s = res["speed"]
        lines += ["| engine | runs x steps | median s | ms / run-step |", "|---|---|---|---|",
                  f"| per-run loop (faithful trainer) | {s['n_runs']} x {s['steps']} | {s['loop_s']:.2f} | {s['loop_ms_per_run_step']:.3f} |",
                  f"| batched (1 thread) | {s['n_runs']} x {s['steps']} | {s['batched_s']:.2f} | {s['batched_ms_per_run_step']:.3f} |",
                  f"| **ratio** (wall; CPU-time ratio {s['cpu_ratio']:.1f}x) | | **{s['ratio']:.1f}x** | |", ""]
    if "paper_scale_cpu" in res:
        p = res["paper_scale_cpu"]
        lines += [f"Paper-scale regression diagram (16x11, 10^5 steps, 3 seeds) on 2 dedicated cores, from the "
                  f"CPU time of a 176-run batch ({p['ms_per_run_step']:.3f} ms / run-step) and early stopping "
                  f"({p['run_steps_3_seeds']:.3g} run-steps): **{p['estimated_minutes']:.0f} min** (target <= 60).", ""]
    if res["agreement"]:
        lines += ["| diagram | budget | cells | same phase as authors (same seed) | other seeds | exact steps | wall s | target |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in res["agreement"]:
            other = ", ".join(f"{v:.2f}" for v in r["agreement_other_seeds"]) or "-"
            ok = "met" if r["agreement_same_seed"] >= 0.85 else "missed"
            lines.append(f"| {r['diagram']} | {r['budget']} | {r['cells']} | {r['agreement_same_seed']:.3f} | {other} | {r['exact_step_cells']} | {r['wall_s']:.0f} | >= 0.85: {ok} |")
    if "paper_scale" in res:
        p = res["paper_scale"]
        lines += ["", f"Paper-scale regression diagram (16x11, 10^5 steps, 3 seeds) with early stopping: "
                  f"{p['run_steps_3_seeds']:.3g} run-steps x {p['ms_per_run_step']:.3f} ms / {p['workers']} worker(s) "
                  f"= **{p['estimated_minutes']:.0f} min** (target <= 60)."]
    (args.out / "grokking.md").write_text("\n".join(lines) + "\n")
    (args.out / "grokking.json").write_text(json.dumps(res, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
