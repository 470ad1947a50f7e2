"""Paper-scale experiments: one JSON config per experiment (``factorization_curse/configs/``),
run as `factorization-curse paper --experiment NAME` (a GPU-campaign job) or `--smoke` on a CPU.

Each config names the grid preset, the cells (objectives on PAST, in priority order), the sizes
as overrides, the job's wall budget `wall_seconds` (every cell trains until what is left of it
covers its bounded evaluation, `eval_seconds`; the lr schedule, warmup fraction included, shrinks
to fit, see `TrainConfig.max_seconds`), and a tiny `smoke` size. Cells run concurrently in
separate processes (`--jobs`); the result-record payload `OUT/record.json` is rewritten after
every finished cell and, while cells train, with their steps done and last validation point.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path


def experiment_names() -> list[str]:
    """Names of the bundled paper-scale experiment configs."""
    return sorted(p.name.removesuffix(".json") for p in resources.files("factorization_curse").joinpath(
        "configs").iterdir() if p.name.endswith(".json"))


def load_experiment(name_or_path: str) -> dict:
    """A bundled config by name, or a JSON file by path."""
    p = Path(name_or_path)
    if p.suffix == ".json" and p.is_file():
        text = p.read_text(encoding="utf-8-sig")
    else:
        names = experiment_names()
        if name_or_path not in names:
            raise ValueError(f"unknown experiment {name_or_path!r}; valid: {', '.join(names)} (or a .json path)")
        text = resources.files("factorization_curse").joinpath("configs", f"{name_or_path}.json").read_text()
    cfg = json.loads(text)
    for key in ("experiment", "preset", "cells", "overrides"):
        if key not in cfg:
            raise ValueError(f"experiment config {name_or_path}: missing key {key!r}")
    return cfg


def run_paper(
    name: str, out: str | Path, *, device: str = "auto", smoke: bool = False, jobs: int = 3, seed: int = 0,
    quiet: bool = True,
) -> list[dict]:
    """Run one paper-scale experiment (or its smoke size) and write OUT/record.json progressively."""
    import time

    from factorization_curse._table import GRID, run_table

    start = time.time()
    cfg = load_experiment(name)
    overrides = dict(cfg["overrides"])
    if smoke:
        overrides.update(cfg.get("smoke", {}))
    elif cfg.get("max_seconds"):
        overrides["max_seconds"] = float(cfg["max_seconds"])
    # the whole job must end by its wall budget: every cell gets what is left after building its
    # task, minus its evaluation budget (the runner kills a job that overruns)
    wall = float(cfg.get("smoke_wall_seconds", 40) if smoke else cfg.get("wall_seconds", 0))
    deadline = start + wall if wall > 0 else None
    preset = cfg["preset"]
    saved = GRID.get(preset)
    GRID[preset] = tuple(cfg["cells"])  # the config's cells, in its order
    try:
        return run_table(Path(out), tasks=(preset,), quick=False, seed=seed, device=device, quiet=quiet,
                         overrides=overrides, jobs=min(jobs, len(cfg["cells"])) if not smoke else 1,
                         experiment=f"paper-{cfg['experiment']}" + ("-smoke" if smoke else ""), plot=not smoke,
                         deadline=deadline, progress_rows=True)
    finally:
        if saved is not None:
            GRID[preset] = saved
