"""Forward+backward cost of lipschitz-core's layers against nn.Linear and the competitors.

Side by side in one process: ``nn.Linear``, ``lipschitz_core.LipschitzLinear`` (every kind),
``monotonicnetworks.LipschitzLinear`` 1.5.1 (the authors' layer, kinds one/inf/one-inf/two-inf)
and ``deel.torchlip.SpectralLinear`` (spectral kind), plus frozen inference. Measurements are
interleaved round-robin (each repeat times every competitor once), so load from other processes
hits all of them alike; the table reports medians and ratios to ``nn.Linear``.

    uv run tools/bench/lipschitz_layers.py --out results/bench_lipschitz_layers.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn

from lipschitz_core import KINDS, LipschitzLinear, freeze

AUTHOR_KINDS = ("one", "inf", "one-inf", "two-inf")


def make_step(layer: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        layer.zero_grad(set_to_none=True)
        layer(x).sum().backward()

    return step


def make_forward(layer: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def forward() -> None:
        with torch.inference_mode():
            layer(x)

    return forward


def time_once(fn: Callable[[], None], inner: int) -> float:
    sync = torch.cuda.synchronize if DEVICE.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    sync()
    return (time.perf_counter() - start) / inner


DEVICE = torch.device("cpu")


def competitors(width: int, batch: int, kind: str) -> dict[str, tuple[nn.Module, str]]:
    torch.manual_seed(0)
    out: dict[str, tuple[nn.Module, str]] = {"nn.Linear": (nn.Linear(width, width), "train")}
    ours = LipschitzLinear(width, width, kind=kind, lipschitz_const=1.0)
    out["lipschitz_core"] = (ours, "train")
    # always_norm: the normalization is active on every step (the worst case for our layer;
    # with the default, a weight inside the ball skips the division).
    out["lipschitz_core always_norm"] = (LipschitzLinear(width, width, kind=kind, lipschitz_const=1.0, always_norm=True), "train")
    if kind in AUTHOR_KINDS:
        import monotonicnetworks

        out["monotonicnetworks"] = (monotonicnetworks.LipschitzLinear(width, width, kind=kind, lipschitz_const=1.0), "train")
    if kind == "two":
        from deel.torchlip import SpectralLinear

        out["deel SpectralLinear"] = (SpectralLinear(width, width), "train")
    out["nn.Linear (inference)"] = (nn.Linear(width, width), "infer")
    out["lipschitz_core frozen (inference)"] = (freeze(ours), "infer")
    return {name: (module.to(DEVICE), mode) for name, (module, mode) in out.items()}


def run(widths: list[int], batches: list[int], repeats: int, threads: int) -> list[dict[str, object]]:
    torch.set_num_threads(threads)
    rows = []
    for width in widths:
        for batch in batches:
            x = torch.randn(batch, width, device=DEVICE)
            for kind in KINDS:
                comps = competitors(width, batch, kind)
                fns = {name: (make_step(m.train(), x) if mode == "train" else make_forward(m.eval(), x)) for name, (m, mode) in comps.items()}
                # calibrate inner loop to ~20 ms per sample on nn.Linear training
                base = time_once(fns["nn.Linear"], 3)
                inner = max(1, int(0.02 / max(base, 1e-6)))
                for fn in fns.values():
                    time_once(fn, inner)  # warm-up
                samples: dict[str, list[float]] = {name: [] for name in fns}
                for _ in range(repeats):
                    for name, fn in fns.items():
                        samples[name].append(time_once(fn, inner))
                med = {name: statistics.median(v) for name, v in samples.items()}
                row: dict[str, object] = {"width": width, "batch": batch, "kind": kind, "median_s": med}
                row["ours_ratio"] = med["lipschitz_core"] / med["nn.Linear"]
                row["ours_active_ratio"] = med["lipschitz_core always_norm"] / med["nn.Linear"]
                if "monotonicnetworks" in med:
                    row["authors_ratio"] = med["monotonicnetworks"] / med["nn.Linear"]
                    row["ours_vs_authors"] = med["lipschitz_core"] / med["monotonicnetworks"]
                if "deel SpectralLinear" in med:
                    row["deel_ratio"] = med["deel SpectralLinear"] / med["nn.Linear"]
                row["frozen_ratio"] = med["lipschitz_core frozen (inference)"] / med["nn.Linear (inference)"]
                rows.append(row)
                print(
                    f"w={width:5d} b={batch:5d} {kind:8s} ours {row['ours_ratio']:.3f}x (always_norm {row['ours_active_ratio']:.3f}x)"
                    + (f"  authors {row['authors_ratio']:.3f}x" if "authors_ratio" in row else "")
                    + (f"  deel {row['deel_ratio']:.3f}x" if "deel_ratio" in row else "")
                    + f"  frozen {row['frozen_ratio']:.3f}x",
                    flush=True,
                )
    return rows


def to_markdown(rows: list[dict[str, object]], threads: int, repeats: int) -> str:
    def fmt(v: object) -> str:
        return f"{v:.2f}x" if isinstance(v, float) else "—"

    lines = [
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d')} on {platform.machine()} "
        + (f"{torch.cuda.get_device_name(DEVICE)}" if DEVICE.type == "cuda" else f"CPU ({torch.get_num_threads()} torch threads of {os.cpu_count()} cores)")
        + f", torch {torch.__version__}, median of {repeats} interleaved repeats. "
        "Ratios are forward+backward time over `nn.Linear` of the same shape; 'frozen' is inference time of "
        "`freeze(layer)` over `nn.Linear` inference.",
        "",
        "| width | batch | kind | nn.Linear fwd+bwd (µs) | lipschitz-core | lipschitz-core always_norm | monotonicnetworks 1.5.1 | ours / authors | deel SpectralLinear | frozen inference |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        med = r["median_s"]
        assert isinstance(med, dict)
        lines.append(
            f"| {r['width']} | {r['batch']} | {r['kind']} | {med['nn.Linear'] * 1e6:.0f} | {fmt(r['ours_ratio'])} | {fmt(r['ours_active_ratio'])} | "
            f"{fmt(r.get('authors_ratio'))} | {fmt(r.get('ours_vs_authors'))} | {fmt(r.get('deel_ratio'))} | {fmt(r['frozen_ratio'])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 4096])
    parser.add_argument("--repeats", type=int, default=15, help="interleaved repeats per measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = least noise on a shared machine)")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = torch.device(args.device)
    rows = run(args.widths, args.batches, args.repeats, args.threads)
    table = to_markdown(rows, args.threads, args.repeats)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
