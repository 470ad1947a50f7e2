"""lipschitz-core's section of tools/reproduce.py: certified bounds against empirical estimates."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from lipschitz_core._bounds import estimate_lipschitz, lipschitz_bound
from lipschitz_core._builders import lipschitz_mlp
from lipschitz_core._freeze import freeze
from lipschitz_core._layers import LipschitzLinear
from lipschitz_core._norms import KIND_NORMS, KINDS


def _fit_steep_target(model: nn.Module, norm: str, steps: int, generator: torch.Generator) -> None:
    """Fit a function steeper than the budget allows, so the net uses its whole Lipschitz constant."""
    p_in, _ = KIND_NORMS[norm]
    x = torch.randn(256, 4, generator=generator)
    target = 5.0 * torch.linalg.vector_norm(x, ord=p_in, dim=1, keepdim=True).expand(
        -1, model[-1].out_features
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), target).backward()
        optimizer.step()


def _overhead(
    widths: tuple[int, ...], batch: int, repeats: int
) -> list[dict[str, float | int | str]]:
    rows: list[dict[str, float | int | str]] = []
    for width in widths:
        x = torch.randn(batch, width)
        for kind in KINDS:
            layers = {
                "linear": nn.Linear(width, width),
                "ours": LipschitzLinear(width, width, kind=kind),
            }
            samples: dict[str, list[float]] = {k: [] for k in layers}
            for (
                layer
            ) in layers.values():  # warm-up: first calls pay for allocation and dispatch caches
                for _ in range(20):
                    layer.zero_grad(set_to_none=True)
                    layer(x).sum().backward()
            for _ in range(repeats):
                for name, layer in layers.items():
                    start = time.perf_counter()
                    for _ in range(10):
                        layer.zero_grad(set_to_none=True)
                        layer(x).sum().backward()
                    samples[name].append(time.perf_counter() - start)
            ratio = statistics.median(samples["ours"]) / statistics.median(samples["linear"])
            rows.append({"width": width, "batch": batch, "kind": kind, "ratio": ratio})
    return rows


def reproduce(out_dir: Path, *, quick: bool, seed: int, device: str, quiet: bool) -> str:
    """Certified bound vs empirical estimate for each norm and depth, plus a brief overhead table."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    depths = (1, 2, 4) if quick else (1, 2, 4, 8)
    steps = 150 if quick else 1000
    constant = 2.0
    rows = []
    for norm in KINDS:
        for depth in depths:
            model = lipschitz_mlp(4, 32, 2, depth, lipschitz_const=constant, norm=norm)
            _fit_steep_target(model, norm, steps, generator)
            x = torch.randn(64, 4, generator=generator)
            bound = lipschitz_bound(model, norm)
            estimate = estimate_lipschitz(
                model, x, norm, steps=40 if quick else 200, generator=generator
            )
            frozen_bound = lipschitz_bound(freeze(model), norm)
            rows.append(
                {
                    "norm": norm,
                    "depth": depth,
                    "requested": constant,
                    "certified": bound,
                    "estimate": estimate,
                    "frozen_certified": frozen_bound,
                }
            )
            if not quiet:
                print(
                    f"  {norm:8s} depth {depth}: certified {bound:.4f}, empirical {estimate:.4f}",
                    flush=True,
                )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the least noisy timing on a shared machine
    try:
        overhead = _overhead((64,) if quick else (64, 256), 256 if quick else 4096, 5 if quick else 15)
    finally:
        torch.set_num_threads(threads)
    (out_dir / "bounds.json").write_text(
        json.dumps({"bounds": rows, "overhead": overhead}, indent=2)
    )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for norm in KINDS:
        sel = [r for r in rows if r["norm"] == norm]
        ax.plot(
            [r["depth"] for r in sel],
            [r["estimate"] / r["certified"] for r in sel],
            marker="o",
            label=norm,
        )
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("depth (linear layers)")
    ax.set_ylabel("empirical estimate / certified bound")
    ax.set_ylim(0, 1.1)
    ax.set_title("Certified bounds are never exceeded (ratio <= 1)")
    ax.legend(title="norm")
    fig.tight_layout()
    fig.savefig(out_dir / "bounds.png", dpi=120)
    plt.close(fig)

    lines = [
        "## lipschitz-core: certified Lipschitz bounds",
        "",
        f"MLPs from `lipschitz_mlp(4, 32, 2, depth, lipschitz_const={constant}, norm=...)`, trained {steps} Adam steps "
        "towards a target 5x steeper than the budget (so they use it). `certified` = `lipschitz_bound` "
        "(exact per-layer operator norms, composed); `empirical` = `estimate_lipschitz` (adversarial gradient "
        "search, a lower bound). A valid certificate has empirical <= certified <= requested.",
        "",
        "| norm | depth | requested | certified | empirical | empirical / certified | frozen certified |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['norm']} | {r['depth']} | {r['requested']:.2f} | {r['certified']:.4f} | {r['estimate']:.4f} | "
            f"{r['estimate'] / r['certified']:.3f} | {r['frozen_certified']:.4f} |"
        )
    violations = sum(
        r["estimate"] > r["certified"] * (1 + 1e-6) or r["certified"] > constant * (1 + 1e-6)
        for r in rows
    )
    lines += [
        "",
        f"Violations: {violations} of {len(rows)}.",
        "",
        "![bounds](lipschitz-core/bounds.png)",
        "",
    ]
    lines += [
        "Overhead in brief (forward+backward time over `nn.Linear`, median of a few interleaved repeats, "
        "this machine as it was loaded during the run; the full side-by-side benchmark is "
        "`tools/bench/lipschitz_layers.py`):",
        "",
        "| width | batch | " + " | ".join(KINDS) + " |",
        "|---:|---:|" + "---:|" * len(KINDS),
    ]
    for width in sorted({r["width"] for r in overhead}):
        sel = {r["kind"]: r["ratio"] for r in overhead if r["width"] == width}
        batch = next(r["batch"] for r in overhead if r["width"] == width)
        lines.append(f"| {width} | {batch} | " + " | ".join(f"{sel[k]:.2f}x" for k in KINDS) + " |")
    _write_payload(
        out_dir, rows, overhead, violations, quick=quick, seed=seed, steps=steps, constant=constant
    )
    return "\n".join(lines) + "\n"


def _write_payload(
    out_dir: Path, rows: list, overhead: list, violations: int, **config: object
) -> None:
    """``out_dir/record.json``: the payload tools/reproduce.py --record stamps (written atomically)."""
    bounds = {
        "name": "bounds",
        "caption": "lipschitz_mlp(4, 32, 2, depth, lipschitz_const=2) trained towards a 5x steeper target: "
        "certified bound (lipschitz_bound) vs empirical lower bound (estimate_lipschitz)",
        "columns": [
            "norm",
            "depth",
            "requested",
            "certified",
            "empirical",
            "empirical / certified",
            "frozen certified",
        ],
        "rows": [
            [
                r["norm"],
                r["depth"],
                r["requested"],
                r["certified"],
                r["estimate"],
                r["estimate"] / r["certified"],
                r["frozen_certified"],
            ]
            for r in rows
        ],
        "formats": {
            "requested": ".2f",
            "certified": ".4f",
            "empirical": ".4f",
            "empirical / certified": ".3f",
            "frozen certified": ".4f",
        },
    }
    widths = sorted({r["width"] for r in overhead})
    over = {
        "name": "overhead",
        "caption": "forward+backward time / nn.Linear (brief; full benchmark: tools/bench/lipschitz_layers.py)",
        "columns": ["width", "batch", *KINDS],
        "rows": [
            [w, next(r["batch"] for r in overhead if r["width"] == w)]
            + [
                next(r["ratio"] for r in overhead if r["width"] == w and r["kind"] == k)
                for k in KINDS
            ]
            for w in widths
        ],
        "formats": {k: ".2f" for k in KINDS},
    }
    payload = {
        "experiment": "reproduce_quick" if config.get("quick") else "reproduce_full",
        "seeds": [config.get("seed")],
        "config": config,
        "metrics": {
            "violations": violations,
            "n_models": len(rows),
            "bounds": rows,
            "overhead": overhead,
        },
        "tables": [bounds, over],
    }
    tmp = out_dir / "record.json.tmp"
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(out_dir / "record.json")
