"""Benchmark for emd-lipschitz: POT exact, POT Sinkhorn, GeomLoss and the NEEMo critic side by side.

    uv run python tools/bench/emd.py --out /tmp/emd_bench              # CPU, several minutes
    uv run python tools/bench/emd.py --out /tmp/emd_bench --quick      # smoke size, seconds
    uv run python tools/records.py run --record packages/emd-lipschitz/results/bench_cpu.json \
        --payload /tmp/emd_bench/record.json -- python tools/bench/emd.py --out /tmp/emd_bench

The logic lives in ``emd_lipschitz._bench`` so that the GPU campaign can run the same code as
``python3 -m emd_lipschitz bench`` without tools/ on the path; see its docstring for the parts.
All data are generated with fixed seeds. Writes ``record.json`` (a result-record payload) into
``--out``, rewritten after every finished cell.
"""

from __future__ import annotations

import sys

from emd_lipschitz._bench import run

if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
