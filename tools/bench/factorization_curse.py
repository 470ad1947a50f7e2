"""Benchmark: objectives side by side on the reversal tasks (forward vs backward exact match).

    uv run tools/bench/factorization_curse.py --quick --tasks retrieval --out results/bench-fc

Runs every cell of each selected experiment's grid (objectives on PAST, plus GPT-2/BERT baseline
cells), writes results.md / results.csv, validation learning-curve PNGs and the result-record
payload OUT/record.json (stamp it with tools/records.py). The tasks are generated in code, so
`--data` is accepted for symmetry with the other benchmarks but not read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from factorization_curse._table import GRID, run_table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", choices=list(GRID), default=["retrieval"])
    p.add_argument("--objectives", nargs="+", default=None, help="subset of each task's grid")
    p.add_argument("--cells", nargs="+", default=None, help="subset of cells by name, e.g. mlm-u ar@gpt2")
    p.add_argument("--quick", action="store_true", help="CPU preset (default: the full GPU preset)")
    p.add_argument("--out", type=Path, default=Path("results/bench-factorization-curse"))
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="unused (tasks are generated)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--jobs", type=int, default=1, help="grid cells run at once (separate processes)")
    p.add_argument("--resume", action="store_true", help="skip finished cells, continue interrupted ones")
    a = p.parse_args(argv)
    run_table(a.out, tasks=tuple(a.tasks), objectives=tuple(a.objectives) if a.objectives else None,
              quick=a.quick, seed=a.seed, device=a.device, quiet=a.quiet, jobs=a.jobs, resume=a.resume,
              cells=tuple(a.cells) if a.cells else None)
    print((a.out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
