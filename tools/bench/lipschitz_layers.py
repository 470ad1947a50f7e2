"""Forward+backward cost of lipschitz-core's layers against nn.Linear and the competitors, like for like.

Side by side in one process, per kind: ``nn.Linear``; ``lipschitz_core.LipschitzLinear`` with one
scale per matrix (``vectorwise=False``, our default) and per row/column (``vectorwise=True``);
``monotonicnetworks.LipschitzLinear`` 1.5.1 (the authors' layer: always vectorwise, so it is
compared with our vectorwise layer); ``deel.torchlip.SpectralLinear`` for the spectral kind
(note: deel also orthonormalizes its weight with Björck iterations on top of the spectral
normalization, so it computes more than a norm bound). A "fused" variant compiles the
constraint with ``torch.compile`` (no host sync, one graph) to see whether fusing the
normalization meets the overhead target (<= 1.4x nn.Linear at width 64, batch 256). Eval
(inference-mode) forwards compare nn.Linear, our layer in eval (cached normalized weight) and
``freeze``. Measurements are interleaved round-robin, so load from other processes hits every
competitor alike; tables report medians and ratios to ``nn.Linear``.

    uv run python tools/bench/lipschitz_layers.py --record packages/lipschitz-core/results/bench_lipschitz_layers.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from lipschitz_core import KINDS, LipschitzLinear, freeze

AUTHOR_KINDS = ("one", "inf", "one-inf", "two-inf")
TARGET = 1.4
DEVICE = torch.device("cpu")


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


class _Fused(nn.Module):
    """Our layer's normalization as one compiled graph (no host sync; ``torch.where`` instead of the skip)."""

    def __init__(self, layer: LipschitzLinear) -> None:
        super().__init__()
        self.layer = layer
        target = layer.constraint.target(layer.weight_orig)
        kind = layer.kind

        def constrained_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            if kind == "inf":
                n = w.abs().sum(dim=1).amax()
            elif kind == "one":
                n = w.abs().sum(dim=0).amax()
            elif kind == "one-inf":
                n = w.abs().amax()
            else:  # two-inf
                n = torch.linalg.vector_norm(w, ord=2, dim=1).amax()
            scale = torch.clamp(target / n, max=1.0)
            return torch.nn.functional.linear(x, w * scale, b)

        self.fn = torch.compile(constrained_linear, dynamic=False, fullgraph=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, self.layer.weight_orig, self.layer.bias)


def competitors(width: int, kind: str, fused: bool) -> dict[str, tuple[nn.Module, str]]:
    torch.manual_seed(0)
    out: dict[str, tuple[nn.Module, str]] = {"nn.Linear": (nn.Linear(width, width), "train")}
    ours = LipschitzLinear(width, width, kind=kind, lipschitz_const=1.0)
    out["ours"] = (ours, "train")
    out["ours always_norm"] = (LipschitzLinear(width, width, kind=kind, lipschitz_const=1.0, always_norm=True), "train")
    if kind != "two":
        out["ours vectorwise"] = (LipschitzLinear(width, width, kind=kind, lipschitz_const=1.0, vectorwise=True), "train")
    if kind in AUTHOR_KINDS:
        import monotonicnetworks

        out["monotonicnetworks (vectorwise)"] = (monotonicnetworks.LipschitzLinear(width, width, kind=kind, lipschitz_const=1.0), "train")
    if kind == "two":
        from deel.torchlip import SpectralLinear

        out["deel SpectralLinear (+Björck)"] = (SpectralLinear(width, width), "train")
    if fused and kind != "two":
        out["ours fused (torch.compile)"] = (_Fused(LipschitzLinear(width, width, kind=kind, lipschitz_const=1.0)), "train")
    out["nn.Linear (inference)"] = (nn.Linear(width, width), "infer")
    out["ours eval (cached)"] = (LipschitzLinear(width, width, kind=kind, lipschitz_const=1.0), "infer")
    out["ours frozen (inference)"] = (freeze(ours), "infer")
    return {name: (module.to(DEVICE), mode) for name, (module, mode) in out.items()}


def measure(width: int, batch: int, kind: str, repeats: int, fused: bool) -> dict[str, float]:
    x = torch.randn(batch, width, device=DEVICE)
    comps = competitors(width, kind, fused)
    fns = {name: (make_step(m.train(), x) if mode == "train" else make_forward(m.eval(), x)) for name, (m, mode) in comps.items()}
    base = time_once(fns["nn.Linear"], 3)
    inner = max(1, int(0.02 / max(base, 1e-6)))  # ~20 ms per sample of nn.Linear training
    for fn in fns.values():
        time_once(fn, max(3, inner))  # warm-up (and compilation)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(time_once(fn, inner))
    return {name: statistics.median(v) for name, v in samples.items()}


def run(configs: list[tuple[int, int]], repeats: int, fused_at: tuple[int, int] | None, log: Callable[[str], None]) -> list[dict]:
    rows = []
    for width, batch in configs:
        for kind in KINDS:
            fused = fused_at == (width, batch)
            med = measure(width, batch, kind, repeats, fused)
            train = {k: v / med["nn.Linear"] for k, v in med.items() if k != "nn.Linear" and "inference" not in k and "eval" not in k}
            infer = {k: v / med["nn.Linear (inference)"] for k, v in med.items() if "inference" in k or "eval" in k}
            rows.append({"width": width, "batch": batch, "kind": kind, "median_s": med, "train_ratio": train, "infer_ratio": infer})
            log(f"w={width} b={batch} {kind}: " + ", ".join(f"{k} {v:.2f}x" for k, v in {**train, **infer}.items()))
    return rows


def payload(rows: list[dict], args: argparse.Namespace) -> dict:
    def ratio(row: dict, key: str) -> float | str:
        value = row["train_ratio"].get(key, row["infer_ratio"].get(key))
        return round(value, 3) if value is not None else "—"

    train_cols = ["ours", "ours always_norm", "ours vectorwise", "monotonicnetworks (vectorwise)", "deel SpectralLinear (+Björck)", "ours fused (torch.compile)"]
    main = {
        "name": "train",
        "caption": "forward+backward time / nn.Linear (median of interleaved repeats, 1 torch thread)",
        "columns": ["width", "batch", "kind", "nn.Linear (µs)"] + train_cols,
        "rows": [[r["width"], r["batch"], r["kind"], round(r["median_s"]["nn.Linear"] * 1e6)] + [ratio(r, c) for c in train_cols] for r in rows],
    }
    infer_cols = ["ours eval (cached)", "ours frozen (inference)"]
    infer = {
        "name": "inference",
        "caption": "inference-mode forward time / nn.Linear inference",
        "columns": ["width", "batch", "kind", "nn.Linear (µs)"] + infer_cols,
        "rows": [[r["width"], r["batch"], r["kind"], round(r["median_s"]["nn.Linear (inference)"] * 1e6)] + [ratio(r, c) for c in infer_cols] for r in rows],
    }
    target_rows = [r for r in rows if (r["width"], r["batch"]) == (64, 256) and r["kind"] != "two"]
    verdict = []
    for r in target_rows:
        best_name, best = min(((k, v) for k, v in r["train_ratio"].items() if k in ("ours", "ours fused (torch.compile)")), key=lambda kv: kv[1])
        verdict.append([r["kind"], round(r["train_ratio"]["ours"], 3), ratio(r, "ours fused (torch.compile)"), "met" if best <= TARGET else "missed", best_name])
    target = {
        "name": "target",
        "caption": f"overhead target at width 64, batch 256: <= {TARGET}x nn.Linear (fwd+bwd)",
        "columns": ["kind", "ours", "ours fused (torch.compile)", f"<= {TARGET}x", "best variant"],
        "rows": verdict,
    }
    metrics = {f"{r['kind']}_w{r['width']}_b{r['batch']}": {"train": r["train_ratio"], "infer": r["infer_ratio"]} for r in rows}
    metrics["target_met"] = {row[0]: row[3] == "met" for row in verdict}
    return {
        "experiment": "bench_lipschitz_layers",
        "seeds": [0],
        "config": {"configs": args.configs, "repeats": args.repeats, "threads": args.threads, "device": args.device, "fused_at": [64, 256],
                   "torch": torch.__version__},
        "metrics": metrics,
        "tables": [main, infer, target],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["64x256", "256x256", "64x4096"], help="WIDTHxBATCH pairs")
    parser.add_argument("--repeats", type=int, default=11, help="interleaved repeats per measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = least noise on a shared machine)")
    parser.add_argument("--no-fused", action="store_true", help="skip the torch.compile variant (compiling takes minutes on CPU)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--record", type=Path, default=None, help="write the stamped result record here (tools/records.py)")
    parser.add_argument("--payload", type=Path, default=None, help="write the bare payload JSON here")
    args = parser.parse_args(argv)
    try:
        configs = [tuple(int(v) for v in c.lower().split("x")) for c in args.configs]
        assert all(len(c) == 2 and min(c) >= 1 for c in configs)
    except (ValueError, AssertionError):
        parser.error(f"--configs must be WIDTHxBATCH pairs such as 64x256, got {args.configs}")
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available here")
    torch.set_num_threads(args.threads)
    rows = run(configs, args.repeats, None if args.no_fused else (64, 256), lambda m: print(m, flush=True))
    data = payload(rows, args)
    for table in data["tables"]:
        print(f"\n{table['caption']}\n| " + " | ".join(table["columns"]) + " |")
        for row in table["rows"]:
            print("| " + " | ".join(str(v) for v in row) + " |")
    if args.payload:
        import json

        args.payload.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.payload.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(args.payload)
    if args.record:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from records import write_record

        write_record(args.record, data, command=["python", "tools/bench/lipschitz_layers.py", *(argv or sys.argv[1:])], package="lipschitz-core")
        print(f"record written: {args.record}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
