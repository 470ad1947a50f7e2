"""Entry for tools/reproduce.py: the paper's headline experiments, small and honest in --quick."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

NAME = "grokking-theory"


def _fig3_fig4(quick: bool, seed: int, device: str, workers: int) -> dict:
    """Predicted (Acc^) vs actual test accuracy and lambda_3-predicted vs measured time to RQI."""
    from grokking_theory._batched import RunSpec, run_sweep
    from grokking_theory._combinatorics import predicted_accuracy
    from grokking_theory._config import ToyConfig
    from grokking_theory._theory import predicted_time_to_structure

    nums = [25, 35, 45] if quick else [20, 25, 30, 35, 40, 45, 50, 54]
    seeds = [seed, seed + 1] if quick else [seed, seed + 1, seed + 2]
    steps = 2500 if quick else 5000
    rows = []
    for n in nums:
        cfg = ToyConfig(train_num=n, steps=steps)
        run = run_sweep(cfg, [RunSpec.from_config(cfg, seed=s) for s in seeds], workers=1,
                        device=device, early_stop=False)
        for k, s in enumerate(seeds):
            ids = run.train_ids[k]
            pred = predicted_accuracy(cfg.p, ids, run.final_reprs[k])
            th = predicted_time_to_structure(cfg.p, ids, eta=cfg.eta_reprs)
            rows.append({"train_num": n, "seed": s, "test_acc": float(run.final_test_acc[k]),
                         "pred_test_acc": pred["pred_test_acc"], "step_rqi": int(run.step_rqi[k]),
                         "n_h": th["n_h"], "lambda3": th["lambda3"]})
    acc = np.array([r["test_acc"] for r in rows])
    pred = np.array([r["pred_test_acc"] for r in rows])
    both = [(r["n_h"], r["step_rqi"]) for r in rows if r["step_rqi"] >= 0 and np.isfinite(r["n_h"])]
    rank_corr = None
    if len(both) >= 3:
        a, b = np.array(both).T
        ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
        rank_corr = float(np.corrcoef(ra, rb)[0, 1])
    return {"rows": rows, "steps": steps, "mean_abs_diff": float(np.abs(acc - pred).mean()),
            "within_0.05": float((np.abs(acc - pred) <= 0.05).mean()),
            "corr": float(np.corrcoef(acc, pred)[0, 1]) if acc.std() > 0 and pred.std() > 0 else None,
            "rank_corr_nh_vs_step_rqi": rank_corr, "n_rank_pairs": len(both)}


def reproduce(out_dir: Path, *, quick: bool, seed: int, device: str, quiet: bool) -> str:
    import torch

    from grokking_theory._cli import _device
    from grokking_theory._config import ToyConfig
    from grokking_theory._io import write_json
    from grokking_theory._phases import grid, phase_diagram
    from grokking_theory._plot import plot_critical, plot_phase_diagram, plot_run
    from grokking_theory._theory import critical_fraction
    from grokking_theory._toy import train_toy

    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = _device(device)
    t0 = time.perf_counter()

    # 1. the published default run (seed 58: the paper's, independent of --seed)
    cfg = ToyConfig(steps=1600 if quick else 5000)  # 1600: past the published 1130 / 1530 / 800
    run = train_toy(cfg, device=dev, progress=not quiet)
    m = run.metrics()
    write_json(out_dir / "toy_run.json", {**m, "rqi_curve": run.rqi, "train_acc": run.train_acc,
                                          "test_acc": run.test_acc})
    plot_run({**m, "train_acc": run.train_acc, "test_acc": run.test_acc, "rqi": run.rqi},
             out_dir / "toy_run.png", title="default toy (p=10, 45/55 train, seed 58)")
    t_run = time.perf_counter() - t0

    # 2. critical training fraction
    crit = []
    for p in (6, 10, 15, 20, 30, 59):
        trials = (300 if p == 59 else 1000) if quick else (2000 if p == 59 else 10000)
        crit.append(critical_fraction(p, trials=trials, seed=seed, progress=False))
    write_json(out_dir / "critical_fraction.json", crit)
    plot_critical(crit, out_dir / "critical_fraction.png")
    t_crit = time.perf_counter() - t0 - t_run

    # 3. coarse phase diagram (decoder lr x decoder wd, sweep RNG order)
    g = grid("dec-lr-wd", "mse")
    x_name, y_name, xs, ys = g.x_name, g.y_name, g.x_values, g.y_values
    if quick:
        xs, ys, budget, seeds = xs[::5], ys[::3], 2000, [58]  # 3 x 6 cells: about 15 CPU-s per core
    else:
        budget, seeds = 10000, [58, 59, 60]
    base = ToyConfig(rng_order="sweep", steps=budget)
    t1 = time.perf_counter()
    dia = phase_diagram(base, x_name=x_name, x_values=xs, y_name=y_name, y_values=ys, seeds=seeds,
                        workers=1 if dev.startswith("cuda") else 2, device=dev, progress=not quiet)
    t_pd = time.perf_counter() - t1
    write_json(out_dir / "phase_diagram.json", dia.to_dict())
    plot_phase_diagram(dia, out_dir / "phase_diagram.png",
                       title=f"regression, decoder lr x wd, budget {budget} steps")

    # 4. Acc^ vs Acc and lambda_3 time scale vs measured time to RQI
    fig34 = _fig3_fig4(quick, seed, dev, 1)
    write_json(out_dir / "pred_vs_actual.json", fig34)
    total = time.perf_counter() - t0

    counts = dia.phase_counts()
    write_json(out_dir / "record.json", {
        "experiment": "reproduce_quick" if quick else "reproduce",
        "seeds": [58, seed],
        "config": {"quick": quick, "seed": seed, "device": dev, "toy_steps": cfg.steps,
                   "phase_diagram": {"grid": "dec-lr-wd (every 5th wd, every 3rd lr)" if quick else "dec-lr-wd",
                                     "budget": budget, "seeds": seeds},
                   "critical_fraction_trials": {str(c["p"]): c["trials"] for c in crit}},
        "metrics": {"toy_run": {k: m[k] for k in ("step_train_acc", "step_test_acc", "step_rqi")},
                    "critical_fraction": [{k: c[k] for k in ("p", "trials", "n_c", "n_c_stderr", "r_c", "r_c_stderr")}
                                          for c in crit],
                    "phase_counts": counts,
                    "pred_vs_actual": {k: fig34[k] for k in ("mean_abs_diff", "within_0.05", "corr",
                                                             "rank_corr_nh_vs_step_rqi", "n_rank_pairs")},
                    "seconds": {"toy_run": t_run, "critical_fraction": t_crit, "phase_diagram": t_pd,
                                "total": total}},
        "tables": [
            {"name": "toy", "caption": f"default toy run (official RNG order, {cfg.steps} steps); published 1130 / 1530 / 800",
             "columns": ["quantity", "measured", "published"],
             "rows": [["first step train acc >= 0.9", m["step_train_acc"], 1130],
                      ["first step test acc >= 0.9", m["step_test_acc"], 1530],
                      ["first step RQI > 0.95", m["step_rqi"], 800]]},
            {"name": "critical_fraction", "caption": "critical training fraction r_c (Monte Carlo, 50 % crossing; bootstrap standard error)",
             "columns": ["p", "trials", "n_c", "r_c", "r_c std. error"],
             "rows": [[c["p"], c["trials"], c["n_c"], c["r_c"], c["r_c_stderr"]] for c in crit],
             "formats": {"n_c": ".1f", "r_c": ".3f", "r_c std. error": ".3f"}},
            {"name": "pred_vs_actual", "caption": f"Acc^ vs Acc over {len(fig34['rows'])} runs, {fig34['steps']} steps",
             "columns": ["mean abs(Acc - Acc^)", "within 0.05", "corr"],
             "rows": [[fig34["mean_abs_diff"], fig34["within_0.05"], fig34["corr"] if fig34["corr"] is not None else "n/a"]],
             "formats": {"mean abs(Acc - Acc^)": ".3f", "within 0.05": ".2f", "corr": ".3f"}},
            {"name": "phase_counts", "caption": f"phase diagram, {len(ys)} decoder lr x {len(xs)} decoder wd, seeds {seeds}, budget {budget}",
             "columns": list(counts), "rows": [list(counts.values())]},
        ],
    })
    rc = " | ".join(f"{c['r_c']:.3f}" for c in crit)
    ps = " | ".join(str(c["p"]) for c in crit)
    lines = [
        f"## {NAME}: Towards Understanding Grokking (Liu et al. 2022), effective theory",
        "",
        f"Default toy run (official code's RNG order, {cfg.steps} steps): train acc >= 0.9 at step "
        f"**{m['step_train_acc']}**, test at **{m['step_test_acc']}**, RQI > 0.95 at **{m['step_rqi']}** "
        f"(published: 1130 / 1530 / 800).",
        "",
        f"![toy run]({NAME}/toy_run.png)",
        "",
        "Critical training fraction (Monte Carlo, 50 % crossing of P(linear structure fixed)); paper: r_c ~ 0.4 for p = 10.",
        "",
        f"| p | {ps} |",
        "|---|" + "---|" * len(crit),
        f"| r_c | {rc} |",
        "",
        f"![critical fraction]({NAME}/critical_fraction.png)",
        "",
        f"Phase diagram ({len(ys)} decoder lr x {len(xs)} decoder wd, seeds {seeds}, budget {budget}; "
        f"paper: 10^5): " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f"; {t_pd:.0f} s.",
        "",
        f"![phase diagram]({NAME}/phase_diagram.png)",
        "",
        f"Predicted vs actual test accuracy ({len(fig34['rows'])} runs, {fig34['steps']} steps): mean |Acc - Acc^| = "
        f"{fig34['mean_abs_diff']:.3f}, within 0.05: {fig34['within_0.05']:.0%}"
        + (f", corr {fig34['corr']:.3f}" if fig34["corr"] is not None else "")
        + "; rank correlation of the effective-theory time 1/(lambda_3 eta) with the measured step to RQI > 0.95: "
        + (f"{fig34['rank_corr_nh_vs_step_rqi']:.2f} over {fig34['n_rank_pairs']} runs." if fig34["rank_corr_nh_vs_step_rqi"] is not None else "n/a (too few runs reached RQI).")
        ,
        "",
        f"_Timings: toy run {t_run:.0f} s, r_c {t_crit:.0f} s, total {total:.0f} s on {dev}._",
    ]
    return "\n".join(lines) + "\n"
