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
        RunSpec.from_config(base, seed=s, **{x_name: x, y_name: y}) for s in ss for y in ys for x in xs
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
