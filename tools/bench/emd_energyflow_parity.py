"""Reference EMDs from EnergyFlow 1.4 for emd-lipschitz's jet API (run OUTSIDE the workspace).

EnergyFlow's C++ backend (``wasserstein``) is built against numpy 1, so this runs in its own
environment and is never a dependency of the library:

    uv venv /tmp/efenv --python 3.11
    uv pip install --python /tmp/efenv 'energyflow==1.4.*' 'numpy<2'
    /tmp/efenv/bin/python tools/bench/emd_energyflow_parity.py \
        --out packages/emd-lipschitz/tests/data/energyflow_parity.json

It draws random events (fixed seed), computes ``energyflow.emd.emd`` for every combination of
R, beta, norm and periodic_phi, one flow matrix and one ``emds`` matrix, and writes them with the
events as a small JSON fixture that ``tests/test_jets.py`` compares against to 1e-8 relative.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import tempfile
from pathlib import Path


def _event(rng, m: int, extra: bool):
    import numpy as np

    pt = rng.uniform(0.1, 50.0, m)
    y = rng.normal(0.0, 0.8, m)
    phi = rng.uniform(0.0, 2 * np.pi, m)
    cols = [pt, y, phi] + ([rng.uniform(0.0, 1.0, m)] if extra else [])  # a mass column, ignored with gdim=2
    return np.stack(cols, axis=1)


def main() -> int:
    import energyflow as ef
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="fixture JSON to write")
    parser.add_argument("--seed", type=int, default=20261204, help="random seed (default 20261204)")
    parser.add_argument("--pairs", type=int, default=6, help="random event pairs (default 6)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    cases = []
    settings = list(itertools.product((0.4, 1.0, 3.0), (0.5, 1.0, 2.0), (False, True), (False, True)))
    for p in range(args.pairs):
        ev0 = _event(rng, int(rng.integers(2, 25)), extra=p % 2 == 1)
        ev1 = _event(rng, int(rng.integers(2, 25)), extra=p % 2 == 1)
        values = []
        for R, beta, norm, periodic in settings:
            v = ef.emd.emd(ev0, ev1, R=R, beta=beta, norm=norm, periodic_phi=periodic, gdim=2)
            values.append({"R": R, "beta": beta, "norm": norm, "periodic_phi": periodic, "emd": float(v)})
        cases.append({"ev0": ev0.tolist(), "ev1": ev1.tolist(), "values": values})
    ev0, ev1 = np.array(cases[0]["ev0"]), np.array(cases[0]["ev1"])
    value, flow = ef.emd.emd(ev0, ev1, R=0.8, return_flow=True, gdim=2)
    events = [_event(rng, int(rng.integers(3, 15)), extra=False) for _ in range(5)]
    pairwise = ef.emd.emds(events, R=1.0, beta=1.0, n_jobs=1, gdim=2)
    cross = ef.emd.emds(events[:2], events[2:], R=0.6, beta=2.0, norm=True, periodic_phi=True, n_jobs=1, gdim=2)
    payload = {
        "produced_by": "tools/bench/emd_energyflow_parity.py",
        "energyflow": ef.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "seed": args.seed,
        "cases": cases,
        "flow": {"R": 0.8, "emd": float(value), "flow": flow.tolist()},
        "emds": {"events": [e.tolist() for e in events], "symmetric": {"R": 1.0, "beta": 1.0, "emds": pairwise.tolist()},
                 "cross": {"R": 0.6, "beta": 2.0, "norm": True, "periodic_phi": True, "emds": cross.tolist()}},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.out.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {len(cases)} pairs x {len(settings)} settings, 1 flow, 2 emds matrices")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
