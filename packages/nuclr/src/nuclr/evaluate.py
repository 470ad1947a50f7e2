"""Public evaluation API: the three protocols and the baselines beside them."""

from nuclr._evaluate import (
    PROTOCOLS,
    Split,
    baseline_predictions,
    evaluate,
    leakage_curve,
    make_splits,
    metrics_markdown,
    per_task_rms,
    rms,
)

__all__ = [
    "PROTOCOLS",
    "Split",
    "baseline_predictions",
    "evaluate",
    "leakage_curve",
    "make_splits",
    "metrics_markdown",
    "per_task_rms",
    "rms",
]
