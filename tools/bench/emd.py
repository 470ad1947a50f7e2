"""Benchmark: emd-lipschitz against POT's exact ot.emd2 and POT Sinkhorn, side by side.

    uv run --group bench python tools/bench/emd.py --quick      # ~3 minutes on 2 shared cores
    uv run --group bench python tools/bench/emd.py              # ~15 minutes

Writes ``emd.md`` (markdown tables) and ``emd.json`` into ``--out``. All data are generated with
fixed seeds (no files are read; ``--data`` is accepted for uniformity and unused).
Sinkhorn: ``ot.sinkhorn2(method="sinkhorn")`` with ``reg`` = eps in the units of the cost
(coordinates of order 0.3, costs below 3, so exp(-C/reg) stays representable), 1000 iterations at most.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import ot
import torch

from emd_lipschitz import (
    CriticConfig,
    FitConfig,
    Ring,
    cluster_events,
    estimate_emd,
    fit_shape,
    kmeans,
    shape_points,
)


def ring_event(rng: np.random.Generator, m: int, sigma: float, dirichlet: bool):
    r = rng.uniform(0.15, 0.4)
    c = rng.uniform(-0.2, 0.2, 2)
    t = rng.uniform(0, 2 * np.pi, m)
    x = np.stack([c[0] + r * np.cos(t), c[1] + r * np.sin(t)], 1) + rng.normal(0, sigma, (m, 2))
    a = rng.dirichlet(np.ones(m)) if dirichlet else np.full(m, 1.0 / m)
    return x, a, c, r


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def accuracy(n_problems: int, seed: int, n_shape: int) -> dict:
    """Shape frozen: event (M points) vs an evenly spaced ``n_shape``-point ring near it."""
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in ("critic", "ctransform", "semidual", "sinkhorn 1e-1", "sinkhorn 1e-2")}
    times = {k: [] for k in [*rows, "exact"]}
    for i in range(n_problems):
        m = (30, 100, 300)[i % 3]
        sigma = (0.02, 0.05)[(i // 3) % 2]
        x, a, c, r = ring_event(rng, m, sigma, dirichlet=bool(i % 2))
        y, _ = shape_points(Ring(n_shape), [c[0] + rng.normal(0, 0.03), c[1] + rng.normal(0, 0.03), math.log(r * rng.uniform(0.8, 1.2))])
        y = y.numpy()
        b = np.full(len(y), 1.0 / len(y))
        cost = ot.dist(x, y, metric="euclidean")
        exact, t = timed(lambda: ot.emd2(a, b, cost))  # noqa: B023
        times["exact"].append(t)
        for name, refine in (("critic", "none"), ("ctransform", "ctransform"), ("semidual", "semidual")):
            res, t = timed(lambda: estimate_emd(x, a, y, b, refine=refine, seed=i))  # noqa: B023
            rows[name].append((res.value - exact) / exact)
            times[name].append(t)
        for reg in (1e-1, 1e-2):
            val, t = timed(lambda: float(ot.sinkhorn2(a, b, cost, reg, method="sinkhorn", numItermax=1000)))  # noqa: B023
            rows[f"sinkhorn {reg:.0e}".replace("e-0", "e-")].append((val - exact) / exact)
            times[f"sinkhorn {reg:.0e}".replace("e-0", "e-")].append(t)
    out = {}
    for k, errs in rows.items():
        e = np.array(errs)
        out[k] = {"median_abs_rel": float(np.median(np.abs(e))), "p95_abs_rel": float(np.percentile(np.abs(e), 95)),
                  "max_over": float(e.max()), "median_s": float(np.median(times[k]))}
    out["exact"] = {"median_s": float(np.median(times["exact"]))}
    return out


def runtime(sizes: list[int], exact_cap: int, semidual_cap: int, sinkhorn_cap: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        x = rng.normal(0, 0.3, (n, 2))
        y = rng.normal(0, 0.3, (n, 2)) + 0.1
        a = np.full(n, 1.0 / n)
        row = {"n": n}
        if n <= exact_cap:
            (val, row["exact_s"]) = timed(lambda: ot.emd2(a, a, ot.dist(x, y, metric="euclidean"), numItermax=10_000_000))  # noqa: B023
            row["exact"] = float(val)
        for name, refine, cap in (("critic", "none", None), ("ctransform", "ctransform", None), ("semidual", "semidual", semidual_cap)):
            if cap is not None and n > cap:
                continue
            res, row[f"{name}_s"] = timed(lambda: estimate_emd(x, a, y, a, refine=refine, config=CriticConfig(), num_threads=None))  # noqa: B023
            row[name] = res.value
        if n <= sinkhorn_cap:
            (val, row["sinkhorn 1e-2_s"]) = timed(lambda: ot.sinkhorn2(a, a, ot.dist(x, y, metric="euclidean"), 1e-2, method="sinkhorn", numItermax=1000))  # noqa: B023
            row["sinkhorn 1e-2"] = float(val)
        rows.append(row)
        print(f"  runtime n={n}: " + ", ".join(f"{k}={v:.3g}" for k, v in row.items() if k != "n"), flush=True)
    return rows


def fits(n_events: int, m: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    events, truth = [], []
    for _ in range(n_events):
        x, a, c, r = ring_event(rng, m, 0.02, dirichlet=False)
        events.append((x, a))
        truth.append((c, r))
    out = {}
    for mode in ("exact", "accurate"):
        errs_c, errs_r, secs, final = [], [], [], []
        for (x, a), (c, r) in zip(events, truth):
            res = fit_shape((x, a), Ring(200), config=FitConfig(mode=mode, steps=300), num_threads=1)
            p = res.params[0].numpy()
            errs_c.append(float(np.hypot(*(p[:2] - c))))
            errs_r.append(abs(math.exp(p[2]) - r) / r)
            secs.append(res.seconds)
            final.append(float(res.exact[0]))
        out[mode] = {"centre_err_median": float(np.median(errs_c)), "dr_over_r_median": float(np.median(errs_r)),
                     "seconds_median": float(np.median(secs)), "final_exact": final}
    out["final_ratio_max"] = float(np.max(np.array(out["accurate"]["final_exact"]) / np.array(out["exact"]["final_exact"])))
    return out


def clusters(n_per_k: int, seed: int, steps: int) -> dict:
    rng = np.random.default_rng(seed)
    events, truth, centres = [], [], []
    for n in (3, 4, 5):
        for _ in range(n_per_k):
            cs = rng.uniform(0, 4, (n, 2))
            x = np.concatenate([c + rng.normal(0, 0.1, (10, 2)) for c in cs])
            events.append((x, np.full(len(x), 1.0 / len(x))))
            truth.append(n)
            centres.append(cs)
    out = {}
    for mode in ("accurate", "exact"):
        res, secs = timed(lambda: cluster_events(events, config=FitConfig(mode=mode, steps=steps, lr=0.02)))  # noqa: B023
        dist = []
        for b, cs in enumerate(centres):
            if res.k[b] == truth[b]:
                d = np.linalg.norm(res.centres[b][:, None] - cs[None], axis=-1)
                dist.append(float(np.median(d.min(0))))
        out[mode] = {"k_accuracy": float(np.mean(res.k == np.array(truth))), "centre_dist_median": float(np.median(dist)) if dist else math.nan,
                     "seconds_per_event": secs / len(events)}
    km = []
    for (x, a), cs in zip(events, centres):
        found, _ = kmeans(x, a, len(cs), seed=0, n_init=1)
        km.append(float(np.median(np.linalg.norm(found[:, None] - cs[None], axis=-1).min(0))))
    out["kmeans"] = {"centre_dist_median": float(np.median(km))}
    return out


def joint_gap(n_events: int, steps: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    events = [ring_event(rng, 100, 0.02, False)[:2] for _ in range(n_events)]
    out = {}
    for mode in ("paper", "accurate"):
        res = fit_shape(events, Ring(200), config=FitConfig(mode=mode, steps=steps))
        out[mode] = {"gap_median": float(np.median(res.gap)), "gap_worst": float(res.gap[np.argmax(np.abs(res.gap))]),
                     "final_exact_median": float(np.median(res.exact))}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer events (~3 min)")
    parser.add_argument("--out", type=Path, default=Path("results/bench"), help="output folder (default results/bench)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="unused: all data are generated")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--parts", default="accuracy,runtime,fits,clusters,joint",
                        help="comma-separated subset of accuracy,runtime,fits,clusters,joint (default all)")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    torch.set_num_threads(1)
    q = args.quick
    report: dict = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": "2-core CPU (shared with other jobs)",
                    "python": platform.python_version(), "torch": torch.__version__, "pot": ot.__version__, "quick": q,
                    "argv": sys.argv}
    if "accuracy" in parts:
        print("accuracy (shape frozen) ...", flush=True)
        report["accuracy"] = accuracy(6 if q else 12, args.seed, 500 if q else 1000)
    sizes = [100, 300, 1000] if q else [100, 300, 1000, 3000, 10000, 20000]
    if "runtime" in parts:
        print("runtime ...", flush=True)
        report["runtime"] = runtime(sizes, exact_cap=1000 if q else 3000, semidual_cap=1000, sinkhorn_cap=1000 if q else 3000, seed=args.seed)
    if "fits" in parts:
        print("ring fits ...", flush=True)
        report["fits_m100"] = fits(1 if q else 4, 100, args.seed)
        if not q:
            report["fits_m300"] = fits(2, 300, args.seed + 1)
    if "clusters" in parts:
        print("clusters ...", flush=True)
        report["clusters"] = clusters(1 if q else 3, args.seed, 40 if q else 100)
    if "joint" in parts:
        print("joint-fit gap ...", flush=True)
        report["joint"] = joint_gap(1 if q else 2, 200 if q else 600, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "emd.json").write_text(json.dumps(report, indent=2))
    md = to_markdown(report)
    (args.out / "emd.md").write_text(md)
    print(md)
    return 0


def _pct(v: float) -> str:
    return f"{100 * v:+.2f} %" if v < 0 or v > 0 else "0 %"


def to_markdown(r: dict) -> str:
    lines = [f"Measured {r['date']} on a {r['machine']}, torch {r['torch']}, POT {r['pot']}{' (--quick)' if r['quick'] else ''}.", ""]
    lines += ["| estimator (shape frozen) | median abs rel err | p95 abs rel err | largest overestimate | median time |", "|---|---|---|---|---|"]
    for k, v in r.get("accuracy", {}).items():
        if k == "exact":
            lines.append(f"| POT ot.emd2 (exact) | 0 | 0 | 0 | {v['median_s'] * 1e3:.1f} ms |")
            continue
        lines.append(f"| {k} | {100 * v['median_abs_rel']:.3f} % | {100 * v['p95_abs_rel']:.3f} % | {_pct(v['max_over'])} | {v['median_s'] * 1e3:.0f} ms |")
    lines += ["", "| n = m | exact s | critic s | +c-transform s | +semidual s | Sinkhorn 1e-2 s | critic rel err | +c-transform rel err |", "|---|---|---|---|---|---|---|---|"]
    for row in r.get("runtime", []):
        ex = row.get("exact")

        def rel(k: str, row: dict = row, ex: float | None = ex) -> str:
            return f"{100 * (row[k] - ex) / ex:+.1f} %" if ex and k in row else "-"

        def s(k: str, row: dict = row) -> str:
            return f"{row[k]:.2f}" if k in row else "-"

        lines.append(f"| {row['n']} | {s('exact_s')} | {s('critic_s')} | {s('ctransform_s')} | {s('semidual_s')} | {s('sinkhorn 1e-2_s')} | {rel('critic')} | {rel('ctransform')} |")
    for key in ("fits_m100", "fits_m300"):
        if key not in r:
            continue
        f = r[key]
        lines += ["", f"Ring fits ({key[-4:].upper()}, sigma 0.02, 200-point ring, 300 Adam steps):", "",
                  "| mode | median centre err | median abs dr / r | median s per fit |", "|---|---|---|---|"]
        for mode in ("exact", "accurate"):
            v = f[mode]
            lines.append(f"| {mode} | {v['centre_err_median']:.4f} | {100 * v['dr_over_r_median']:.2f} % | {v['seconds_median']:.2f} |")
        lines.append(f"\nworst final exact EMD, accurate / exact-gradient fit: {f['final_ratio_max']:.4f}")
    c = r.get("clusters")
    lines += [] if c is None else ["", "| clustering (3/4/5 clusters, 10 particles, sigma 0.1) | k correct | median centre distance | s per event (all k) |", "|---|---|---|---|"]
    for mode in ("accurate", "exact") if c else ():
        v = c[mode]
        lines.append(f"| {mode} | {100 * v['k_accuracy']:.0f} % | {v['centre_dist_median']:.4f} | {v['seconds_per_event']:.1f} |")
    if c:
        lines.append(f"| k-means (true k) | - | {c['kmeans']['centre_dist_median']:.4f} | - |")
    lines += ["", "| joint fit | median gap to exact | worst gap | median final exact EMD |", "|---|---|---|---|"]
    for mode, v in r.get("joint", {}).items():
        lines.append(f"| {mode} | {_pct(v['gap_median'])} | {_pct(v['gap_worst'])} | {v['final_exact_median']:.4f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
