"""RMS of the physics baselines against all measured NUBASE2020 values (no train/test split)."""

from __future__ import annotations

from nuclr._data import ground_states
from nuclr._dataset import DEFAULT_TASKS, build_rows
from nuclr._evaluate import baseline_predictions, metrics_markdown, per_task_rms
from nuclr._physics import THEORY_TABLES


def baselines_table(*, min_z: int = 8, min_n: int = 8, theory: tuple[str, ...] | None = None) -> tuple[dict, str]:
    """Every shipped theory table and the SEMF fitted to all measured nuclei (in-sample)."""
    theory = tuple(THEORY_TABLES) if theory is None else theory
    rows = build_rows(ground_states(2020), DEFAULT_TASKS, min_z=min_z, min_n=min_n)
    preds = baseline_predictions(rows, rows, theory)
    result = {"reference": f"NUBASE2020 measured, Z >= {min_z}, N >= {min_n}",
              "baselines": {name: per_task_rms(rows, p) for name, p in preds.items()}}
    first = next(iter(result["baselines"]))
    table = {"model": result["baselines"][first], "baselines": {k: v for k, v in result["baselines"].items() if k != first},
             "config": {}}
    md = metrics_markdown(table).replace("**NuCLR**", f"{first} (in-sample fit)")
    return result, md
