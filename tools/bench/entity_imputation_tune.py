"""Choose KBFormerImputer's preset settings on a VALIDATION mask (never on the scored cells).

For each dataset: ``--rows`` rows of the TabDDPM *validation* split (the imputation benchmark
scores rows of the train split), 20 % of the cells hidden MCAR with a seed of its own; each
candidate configuration (the preset's settings updated by a JSON dict) is fitted on the gapped
rows and scored by nRMSE on the hidden numeric cells, with the point imputation both from
marginal draws (``point="marginal"``, 50 draws) and from whole joint completions (10 draws).
KNNImputer(5) on the same cells is the reference.

    uv run python tools/bench/entity_imputation_tune.py --datasets california,house,wilt \\
        --candidates '{"0.2.0 quick": {}, "dropout 0.1": {"dropout": 0.1}}' --out /tmp/tune
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/tabular"))
    parser.add_argument("--datasets", default="california,house,wilt")
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--base", default="quick", help="preset whose settings the candidates update")
    parser.add_argument("--base-overrides", default="{}",
                        help="JSON dict applied before each candidate (e.g. the 0.2.0 preset's values)")
    parser.add_argument("--candidates", required=True, help='JSON {"label": {setting: value}}')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        candidates = json.loads(args.candidates)
        base_overrides = json.loads(args.base_overrides)
    except json.JSONDecodeError as exc:
        parser.error(f"--candidates / --base-overrides: not JSON ({exc})")
    import entity_imputation as ei

    names = [n for n in args.datasets.split(",") if n]
    for name in names:
        if not (ei.dataset_root(args.data, name) / name / "info.json").exists():
            parser.error(f"{ei.dataset_root(args.data, name) / name}: not a TabDDPM-format folder")
    if args.rows < 20:
        parser.error(f"--rows must be >= 20, got {args.rows}")
    import torch

    from entity_diffusion import KBFormerImputer
    from entity_diffusion._bench import load_tabddpm, schema_overrides
    from entity_diffusion._imputer import preset_config

    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    rows_out, cells = [], []
    for name in names:
        ds = load_tabddpm(ei.dataset_root(args.data, name), name)
        val = ds["val"].sample(n=min(args.rows, len(ds["val"])), random_state=args.seed).reset_index(drop=True)
        numeric = [c for c in val.columns if c.startswith("num_")] + (["y"] if ds["task"] == "regression" else [])
        categorical = [c for c in val.columns if c not in numeric]
        mask = ei.make_mask(val, numeric, "MCAR", 0.2, np.random.default_rng(12345 + args.seed))
        gapped = val.mask(mask)
        knn = ei.scores(val, mask, ei.sklearn_impute(gapped, numeric, categorical, "knn5", args.seed),
                        numeric, categorical)["nrmse"]
        for label, changes in candidates.items():
            config = preset_config(args.base).updated(**{**base_overrides, **changes})
            start = time.perf_counter()
            imputer = KBFormerImputer(config=config, random_state=args.seed,
                                      schema_overrides=schema_overrides(val, ds["task"])).fit(gapped)
            fit_seconds = time.perf_counter() - start
            history = imputer.model_.history_
            marginal = ei.scores(val, mask, imputer.model_.impute(gapped, n_samples=50, seed=1, point="marginal"),
                                 numeric, categorical)["nrmse"]
            joint = ei.scores(val, mask, imputer.model_.impute(gapped, n_samples=10, seed=1, point="joint"),
                              numeric, categorical)["nrmse"]
            cell = {"dataset": name, "candidate": label, "changes": changes, "knn5": knn, "marginal50": marginal,
                    "joint10": joint, "fit_seconds": fit_seconds, "steps_run": history.steps_run,
                    "best_step": history.best_step}
            cells.append(cell)
            rows_out.append([name, label, knn, joint, marginal, history.best_step])
            print(json.dumps(cell), flush=True)
            payload = {"experiment": "imputation_tuning", "seeds": [args.seed],
                       "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                       "metrics": {"cells": cells},
                       "tables": [{"name": "tuning",
                                   "caption": f"validation-split nRMSE at 20 % MCAR ({args.rows} rows; {args.base} preset variants)",
                                   "columns": ["dataset", "candidate", "KNN(5)", "joint, 10 draws",
                                               "marginal, 50 draws", "best step"],
                                   "rows": rows_out,
                                   "formats": {"KNN(5)": ".3f", "joint, 10 draws": ".3f", "marginal, 50 draws": ".3f"}}]}
            tmp = args.out / "record.json.tmp"
            tmp.write_text(json.dumps(payload, indent=1))
            os.replace(tmp, args.out / "record.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
