"""Agreement of a phase diagram with the authors' raw data (``data_add_r.h5``, ``data_add_c.h5``,
``data_add_r_reprlr.h5`` from the official repository; 10^5-step budget, "not reached" = 99999)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from grokking_theory._phases import (
    AUTHORS_BUDGET,
    PHASES,
    classify_phase,
    from_budget_encoding,
    truncate_budget,
)

#: dataset names of the two axes per file layout: (x dataset, x field, y dataset, y field)
LAYOUTS = (
    ("weight_decay", "weight_decay_dec", "learning_rate", "eta_dec"),
    ("repr_lr", "eta_reprs", "decoder_lr", "eta_dec"),
)


def open_h5(path: Path | str) -> Any:
    """An HDF5 file opened for reading (an `h5py.File`); a clear error if it is absent or not HDF5."""
    try:
        import h5py
    except ImportError as err:  # h5py is a dependency; this is for a broken environment
        raise ImportError("reading the authors' files needs h5py (pip install h5py)") from err
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is not an HDF5 file ({err})") from None


def load_authors_h5(path: Path | str) -> dict[str, Any]:
    """Axes and first-crossing steps (-1 = not reached) of one of the authors' files, validated."""
    path = Path(path)
    with open_h5(path) as f:
        names = set(f.keys())
        layout = next((lay for lay in LAYOUTS if {lay[0], lay[2], "train_steps", "test_steps"} <= names), None)
        if layout is None:
            raise ValueError(f"{path}: expected datasets train_steps, test_steps and one of the axis pairs "
                             f"{[(lay[0], lay[2]) for lay in LAYOUTS]}; found {sorted(names)}")
        xd, xf, yd, yf = layout
        xs, ys = np.asarray(f[xd][()], dtype=np.float64), np.asarray(f[yd][()], dtype=np.float64)
        tr, te = np.asarray(f["train_steps"][()]), np.asarray(f["test_steps"][()])
    for name, arr in (("train_steps", tr), ("test_steps", te)):
        if arr.shape != (len(ys), len(xs)):
            raise ValueError(f"{path}: {name} has shape {arr.shape}, expected {(len(ys), len(xs))} (y, x)")
        if not np.isfinite(arr).all():
            raise ValueError(f"{path}: {name} holds NaN or inf")
    return {"path": str(path), "x_name": xf, "x_values": xs.tolist(), "y_name": yf, "y_values": ys.tolist(),
            "train": from_budget_encoding(tr, AUTHORS_BUDGET), "test": from_budget_encoding(te, AUTHORS_BUDGET)}


def load_results(path: Path | str) -> tuple[dict[str, Any], np.ndarray]:
    """Our diagram (``phase_diagram.json``, a phase-diagram result record such as a GPU campaign
    job's ``record.json``, or a sweep folder with its finished cells) and the (seed, y, x) mask of
    cells that hold a result."""
    from grokking_theory._config import ToyConfig
    from grokking_theory._phases import assemble, sweep_cells
    from grokking_theory._sweep import SweepStore, read_json

    path = Path(path)
    if path.is_dir() and (path / "phase_diagram.json").exists():
        path = path / "phase_diagram.json"
    if path.is_file():
        d = read_json(path)
        if "metrics" in d and "step_train" in d.get("metrics", {}) and "x_name" in d.get("config", {}):
            # a phase-diagram result record (e.g. a GPU campaign job's): -2 marks unfinished cells
            c, m = d["config"], d["metrics"]
            tr, te = np.asarray(m["step_train"]), np.asarray(m["step_test"])
            ours = {"x_name": c["x_name"], "x_values": c["x_values"], "y_name": c["y_name"],
                    "y_values": c["y_values"], "seeds": d["seeds"], "budget": c["config"]["steps"],
                    "step_train": tr.tolist(), "step_test": te.tolist()}
            return ours, (tr != -2) & (te != -2)
        missing = {"x_name", "x_values", "y_name", "y_values", "seeds", "budget", "step_train", "step_test"} - set(d)
        if missing:
            raise ValueError(f"{path}: not a phase_diagram.json (missing {sorted(missing)})")
        tr = np.asarray(d["step_train"])
        return d, np.ones(tr.shape, dtype=bool)
    if path.is_dir() and (path / "sweep.json").exists():
        meta = read_json(path / "sweep.json")
        g = meta["grid"]
        cells, _ = sweep_cells(ToyConfig.from_dict(g["config"]), g["x_name"], g["x_values"], g["y_name"],
                               g["y_values"], g["seeds"])
        dia, mask = assemble(meta, SweepStore(path, meta).done(cells))
        return dia.to_dict(), mask
    raise FileNotFoundError(f"{path} is neither a phase_diagram.json nor a phase-diagram --out folder")


def compare_with_authors(authors: dict[str, Any], ours: dict[str, Any], mask: np.ndarray, *,
                         lag: float = 1000.0) -> dict[str, Any]:
    """Phase agreement per seed over the finished cells; at a budget B < 10^5 the authors' steps are
    truncated to B (a stored step >= B reads "not reached"). Returns a result-record payload."""
    if not lag > 0:
        raise ValueError(f"--lag must be > 0, got {lag}")
    for axis in ("x", "y"):
        if ours[f"{axis}_name"] != authors[f"{axis}_name"]:
            raise ValueError(f"{axis} axes differ: ours {ours[f'{axis}_name']}, the file's {authors[f'{axis}_name']}")
        a, b = np.asarray(ours[f"{axis}_values"], float), np.asarray(authors[f"{axis}_values"], float)
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-6):
            raise ValueError(f"{axis} values ({ours[f'{axis}_name']}) differ from the file's: "
                             f"{len(a)} values vs {len(b)}; run the diagram with --grid authors")
    budget = int(ours["budget"])
    if budget > AUTHORS_BUDGET:
        raise ValueError(f"our budget {budget} exceeds the authors' {AUTHORS_BUDGET}")
    a_tr, a_te = truncate_budget(authors["train"], budget), truncate_budget(authors["test"], budget)
    theirs = classify_phase(a_tr, a_te, lag=lag)
    tr, te = np.asarray(ours["step_train"]), np.asarray(ours["step_test"])
    ph = classify_phase(tr, te, lag=lag)
    rows, per_seed = [], {}
    for i, s in enumerate(ours["seeds"]):
        m = mask[i]
        n = int(m.sum())
        same = float((ph[i] == theirs)[m].mean()) if n else float("nan")
        exact = int(((tr[i] == a_tr) & (te[i] == a_te) & m).sum())
        counts = {name: int(((ph[i] == k) & m).sum()) for k, name in enumerate(PHASES)}
        per_seed[str(s)] = {"cells": n, "agreement": same, "exact_step_cells": exact, "counts": counts}
        rows.append([s, n, same, exact] + [counts[k] for k in PHASES])
    authors_counts = {name: int((theirs == k).sum()) for k, name in enumerate(PHASES)}
    rows.append(["authors", int(theirs.size), 1.0, int(theirs.size)] + [authors_counts[k] for k in PHASES])
    return {
        "experiment": "compare_authors",
        "seeds": list(ours["seeds"]),
        "config": {"h5": Path(authors["path"]).name, "budget": budget, "lag": lag,
                   "x_name": authors["x_name"], "y_name": authors["y_name"]},
        "metrics": {"per_seed": per_seed, "authors_counts": authors_counts, "budget": budget,
                    "agreement_first_seed": per_seed[str(ours["seeds"][0])]["agreement"]},
        "tables": [{"name": "agreement", "caption": f"same phase as {Path(authors['path']).name} "
                    f"(budget {budget}, lag {lag:g})",
                    "columns": ["seed", "cells", "same phase", "identical steps", *PHASES],
                    "rows": rows, "formats": {"same phase": ".3f"}}],
    }
