"""entity-diffusion tabular benchmark: the paper's TabDDPM protocol (KBFormer vs SMOTE, CTGAN,
TVAE and the real-data bound; utility, fidelity and privacy).

The protocol lives in the package (``entity_diffusion._paper``) so that the GPU campaign can run it
as ``python3 -m entity_diffusion paper-tabular`` with nothing installed; this script is the same
command for a uv checkout, e.g. a CPU-sized run:

    uv run python tools/bench/tabular.py --datasets abalone,wilt --sets 2 --eval-seeds 2 \\
        --steps 600 --d-model 32 --batch-size 256 --max-train 1500 --device cpu --out /tmp/tab
"""

from __future__ import annotations

import sys

from entity_diffusion._cli import main

if __name__ == "__main__":
    raise SystemExit(main(["paper-tabular", *sys.argv[1:]]))
