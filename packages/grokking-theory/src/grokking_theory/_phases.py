"""Phase classification (paper Table 1) and phase-diagram sweeps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grokking_theory._batched import SWEEPABLE, RunSpec, SweepRun, run_sweep
from grokking_theory._config import ToyConfig

PHASES = ("comprehension", "grokking", "memorization", "confusion")
COMPREHENSION, GROKKING, MEMORIZATION, CONFUSION = range(4)


def classify_phase(
    step_train: np.ndarray | int, step_test: np.ndarray | int, *, lag: float = 1000.0
) -> np.ndarray:
    """Paper Table 1, on first-crossing steps (-1 = never reached within the budget).

    comprehension: both reached, test - train < lag; grokking: both reached, lag >= ``lag``;
    memorization: train reached, test not; confusion: train not reached. Returns codes 0..3
    (index into :data:`PHASES`).
    """
    tr = np.asarray(step_train)
    te = np.asarray(step_test)
    if tr.shape != te.shape:
        raise ValueError(f"step_train and step_test shapes differ: {tr.shape} vs {te.shape}")
    tr_ok, te_ok = tr >= 0, te >= 0
    out = np.full(tr.shape, CONFUSION, dtype=np.int64)
    out[tr_ok & ~te_ok] = MEMORIZATION
    both = tr_ok & te_ok
    out[both & (te - tr < lag)] = COMPREHENSION
    out[both & (te - tr >= lag)] = GROKKING
    return out


def from_budget_encoding(steps: np.ndarray, budget: int) -> np.ndarray:
    """The authors' files write "not reached" as budget - 1; convert to -1."""
    s = np.asarray(steps, dtype=np.float64)
    return np.where(s >= budget - 1, -1, s).astype(np.int64)


def truncate_budget(steps: np.ndarray, budget: int) -> np.ndarray:
    """First-crossing steps as they would read under a smaller budget (-1 if not within it)."""
    s = np.asarray(steps)
    return np.where((s >= 0) & (s < budget), s, -1)


@dataclass
class PhaseDiagram:
    """Sweep results on a (seed, y, x) grid."""

    x_name: str
    x_values: list[float]
    y_name: str
    y_values: list[float]
    seeds: list[int]
    budget: int
    lag: float
    step_train: np.ndarray  # (seeds, y, x)
    step_test: np.ndarray
    step_rqi: np.ndarray
    final_rqi: np.ndarray
    config: ToyConfig

    @property
    def phases(self) -> np.ndarray:
        return classify_phase(self.step_train, self.step_test, lag=self.lag)

    def phase_counts(self) -> dict[str, int]:
        ph = self.phases
        return {name: int((ph == k).sum()) for k, name in enumerate(PHASES)}

    def to_dict(self) -> dict[str, object]:
        return {
            "x_name": self.x_name,
            "x_values": self.x_values,
            "y_name": self.y_name,
            "y_values": self.y_values,
            "seeds": self.seeds,
            "budget": self.budget,
            "lag": self.lag,
            "step_train": self.step_train.tolist(),
            "step_test": self.step_test.tolist(),
            "step_rqi": self.step_rqi.tolist(),
            "final_rqi": self.final_rqi.tolist(),
            "phases": self.phases.tolist(),
            "phase_names": list(PHASES),
            "phase_counts": self.phase_counts(),
            "config": self.config.to_dict(),
        }


def phase_diagram(
    base: ToyConfig,
    *,
    x_name: str,
    x_values: Sequence[float],
    y_name: str,
    y_values: Sequence[float],
    seeds: Sequence[int] = (58,),
    lag: float = 1000.0,
    workers: int = 1,
    device: str = "cpu",
    progress: bool = False,
) -> PhaseDiagram:
    """Sweep two of ``eta_reprs, eta_dec, weight_decay_reprs, weight_decay_dec`` (x, y) over seeds
    with the batched engine (budget = ``base.steps``) and classify every cell."""
    for name in (x_name, y_name):
        if name not in SWEEPABLE or name == "seed":
            raise ValueError(f"cannot sweep {name!r}; choose from {SWEEPABLE[:-1]}")
    if x_name == y_name:
        raise ValueError("x and y must be different hyperparameters")
    xs, ys, ss = [float(v) for v in x_values], [float(v) for v in y_values], [int(s) for s in seeds]
    if not xs or not ys or not ss:
        raise ValueError("the sweep is empty: x values, y values and seeds must all be non-empty")
    specs = [
        RunSpec.from_config(base, seed=s, **{x_name: _axis_value(x_name, x), y_name: _axis_value(y_name, y)})
        for s in ss for y in ys for x in xs
    ]
    run: SweepRun = run_sweep(base, specs, workers=workers, device=device, progress=progress)
    shape = (len(ss), len(ys), len(xs))
    return PhaseDiagram(
        x_name=x_name,
        x_values=xs,
        y_name=y_name,
        y_values=ys,
        seeds=ss,
        budget=base.steps,
        lag=lag,
        step_train=run.step_train.reshape(shape),
        step_test=run.step_test.reshape(shape),
        step_rqi=run.step_rqi.reshape(shape),
        final_rqi=run.final_rqi.reshape(shape),
        config=base,
    )


def phase_agreement(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Fraction of cells with the same phase code."""
    a, b = np.asarray(ours), np.asarray(theirs)
    if a.shape != b.shape:
        raise ValueError(f"phase grids differ in shape: {a.shape} vs {b.shape}")
    return float((a == b).mean())


# ----------------------------------------------------------------------------------------------
# grids and resumable, shardable sweeps

LR_16 = [float(v) for v in 10 ** np.linspace(-5, -2, 16)]
LR_13 = [float(v) for v in 10 ** np.linspace(-5, -2, 13)]
WD_BY_LOSS = {"mse": [float(v) for v in range(11)], "ce": [float(v) for v in range(0, 21, 2)]}
GRID_NAMES = ("dec-lr-wd", "repr-dec-lr", "authors", "authors-reprlr", "batch-size", "init-scale")
#: App. G axes: mini-batch size (45 = the full training set of train_add's default) and the
#: decoder's initialization scale (``init_scale_nn``), each against the decoder learning rate
BATCH_SIZES = [2.0, 4.0, 8.0, 16.0, 32.0, 45.0]
INIT_SCALES = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
#: budget and seeds of the authors' phase-diagram files (data_add_r.h5: seed 58, data_add_c.h5: seed 6,
#: data_add_r_reprlr.h5: seed 58; every file ran 10^5 full-batch updates)
AUTHORS_BUDGET = 100_000
AUTHORS_SEED = {"mse": 58, "ce": 6}
DEFAULT_BUDGET = 10_000


@dataclass(frozen=True)
class Grid:
    """Axes of a phase diagram: x and y hyperparameters (ToyConfig field names) and their values."""

    name: str
    x_name: str
    x_values: list[float]
    y_name: str
    y_values: list[float]
    seeds: list[int] | None  # None: the config's seed
    budget: int


def grid(name: str, loss: str = "mse") -> Grid:
    """The named grid for a loss.

    ``dec-lr-wd``: decoder lr ``10**linspace(-5,-2,16)`` x decoder wd (0..10 for regression,
    0, 2, ..., 20 for classification, as in ``data_add_r.h5`` / ``data_add_c.h5``), budget 10^4.
    ``repr-dec-lr``: representation lr x decoder lr, ``10**linspace(-5,-2,13)`` each, budget 10^4.
    ``authors`` / ``authors-reprlr``: the same axes with the seed (58 regression, 6 classification)
    and budget (10^5) of the authors' files.
    ``batch-size`` (App. G): mini-batch size 2..32 and 45 (full batch at the default 45 training
    pairs) x decoder lr ``10**linspace(-5,-2,16)``, budget 10^4. ``init-scale`` (App. G): decoder
    init scale 0.25..8 (``init_scale_nn``) x the same decoder lr, budget 10^4.
    """
    if loss not in WD_BY_LOSS:
        raise ValueError(f"loss must be mse or ce, got {loss!r}")
    if name in ("dec-lr-wd", "authors"):
        authors = name == "authors"
        return Grid(name, "weight_decay_dec", WD_BY_LOSS[loss], "eta_dec", LR_16,
                    [AUTHORS_SEED[loss]] if authors else None, AUTHORS_BUDGET if authors else DEFAULT_BUDGET)
    if name in ("repr-dec-lr", "authors-reprlr"):
        if loss != "mse" and name == "authors-reprlr":
            raise ValueError("the authors' repr-lr x decoder-lr file (data_add_r_reprlr.h5) is regression only")
        authors = name == "authors-reprlr"
        return Grid(name, "eta_reprs", LR_13, "eta_dec", LR_13, [58] if authors else None,
                    AUTHORS_BUDGET if authors else DEFAULT_BUDGET)
    if name == "batch-size":
        return Grid(name, "batch_size", BATCH_SIZES, "eta_dec", LR_16, None, DEFAULT_BUDGET)
    if name == "init-scale":
        return Grid(name, "init_scale_nn", INIT_SCALES, "eta_dec", LR_16, None, DEFAULT_BUDGET)
    raise ValueError(f"unknown grid {name!r}; choose from {GRID_NAMES}")


def sweep_cells(base: ToyConfig, x_name: str, xs: Sequence[float], y_name: str, ys: Sequence[float],
                seeds: Sequence[int]) -> tuple[list, list[RunSpec]]:
    """Cells of a (seed, y, x) grid in row-major order, each with the hash of its full run config."""
    from grokking_theory._sweep import Cell, config_hash

    cells, specs = [], []
    for s in seeds:
        for yi, y in enumerate(ys):
            for xi, x in enumerate(xs):
                spec = RunSpec.from_config(base, seed=int(s), **{x_name: _axis_value(x_name, x),
                                                                 y_name: _axis_value(y_name, y)})
                run_cfg = _hashable(base.replace(**spec.__dict__).to_dict())
                cells.append(Cell(key=f"s{s}_y{yi:02d}_x{xi:02d}", hash=config_hash(run_cfg),
                                  index=len(cells), values={"seed": int(s), "x": float(x), "y": float(y)}))
                specs.append(spec)
    return cells, specs


def _axis_value(name: str, value: float) -> float | int:
    if name == "batch_size":
        if float(value) != int(value):
            raise ValueError(f"batch_size values must be integers, got {value}")
        return int(value)
    return float(value)


def _hashable(config: dict) -> dict:
    """A run config as hashed and stored: ``batch_size`` 0 (full batch, the only kind before 0.2's
    App. G sweeps) is left out, so the hashes of earlier sweeps' cells still match on ``--resume``."""
    return {k: v for k, v in config.items() if not (k == "batch_size" and v == 0)}


def sweep_meta(base: ToyConfig, x_name: str, xs: Sequence[float], y_name: str, ys: Sequence[float],
               seeds: Sequence[int], lag: float) -> dict:
    """What ``sweep.json`` holds; ``grid`` (everything that changes results) is what must match."""
    return {"kind": "toy-phase-diagram", "lag": lag,
            "grid": {"x_name": x_name, "x_values": [float(v) for v in xs], "y_name": y_name,
                     "y_values": [float(v) for v in ys], "seeds": [int(s) for s in seeds],
                     "config": _hashable(base.to_dict())}}


def assemble(meta: dict, found: dict[str, dict]) -> tuple[PhaseDiagram, np.ndarray]:
    """A PhaseDiagram from cell records (missing cells: -1 everywhere) and the (seed, y, x) mask of
    finished cells."""
    g = meta["grid"]
    base = ToyConfig.from_dict(g["config"])
    cells, _ = sweep_cells(base, g["x_name"], g["x_values"], g["y_name"], g["y_values"], g["seeds"])
    shape = (len(g["seeds"]), len(g["y_values"]), len(g["x_values"]))
    arrays = {k: np.full(shape, -1, dtype=np.int64) for k in ("step_train", "step_test", "step_rqi")}
    final_rqi = np.full(shape, np.nan)
    mask = np.zeros(shape, dtype=bool)
    for c in cells:
        rec = found.get(c.key)
        if rec is None:
            continue
        ix = np.unravel_index(c.index, shape)
        for k in arrays:
            arrays[k][ix] = rec[k]
        final_rqi[ix] = rec["final_rqi"]
        mask[ix] = True
    dia = PhaseDiagram(x_name=g["x_name"], x_values=g["x_values"], y_name=g["y_name"],
                       y_values=g["y_values"], seeds=g["seeds"], budget=base.steps, lag=meta["lag"],
                       final_rqi=final_rqi, config=base, **arrays)
    return dia, mask


def diagram_payload(meta: dict, dia: PhaseDiagram, mask: np.ndarray, *, experiment: str,
                    extra_config: dict | None = None) -> dict:
    """Result-record payload of a (possibly partial) diagram: counts over finished cells per seed."""
    ph = dia.phases
    rows, per_seed = [], {}
    for i, s in enumerate(dia.seeds):
        done = mask[i]
        counts = {name: int(((ph[i] == k) & done).sum()) for k, name in enumerate(PHASES)}
        per_seed[str(s)] = {"finished": int(done.sum()), **counts}
        rows.append([s, int(done.sum()), int(done.size)] + [counts[n] for n in PHASES])
    return {
        "experiment": experiment,
        "seeds": list(dia.seeds),
        "config": {**meta["grid"], "lag": meta["lag"], **(extra_config or {})},
        "metrics": {
            "cells_total": int(mask.size), "cells_finished": int(mask.sum()), "complete": bool(mask.all()),
            "per_seed": per_seed,
            "step_train": np.where(mask, dia.step_train, -2).tolist(),
            "step_test": np.where(mask, dia.step_test, -2).tolist(),
            "note": "steps: first update with accuracy >= threshold; -1 = not within the budget, "
                    "-2 = cell not finished",
        },
        "tables": [{"name": "phases", "caption": f"{dia.config.loss} phase diagram, "
                    f"{len(dia.y_values)} {dia.y_name} x {len(dia.x_values)} {dia.x_name}, budget {dia.budget}",
                    "columns": ["seed", "cells finished", "cells", *PHASES], "rows": rows}],
    }
