"""Experiments behind the CLI and the reproduction: the toy example, the trigger story, the tables."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from importlib.metadata import version
from pathlib import Path

import numpy as np


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_run_info(out: Path, config: object, seed: int, argv: list[str] | None = None) -> None:
    """config + argv + versions + seed, as every run records."""
    out.mkdir(parents=True, exist_ok=True)
    info = {
        "config": asdict(config),  # type: ignore[call-overload]
        "argv": sys.argv if argv is None else argv,
        "seed": seed,
        "versions": {p: version(p) for p in ("monotonenorm", "lipschitz-core", "torch", "numpy", "scikit-learn")},
        "python": platform.python_version(),
    }
    _atomic_write(out / "run.json", json.dumps(info, indent=1))


def load_config(cls: type, path: Path | None, quick: dict | None = None, **overrides: object):  # noqa: ANN201
    """A frozen ``cls``: defaults, then the ``quick`` settings, then the JSON file, then ``overrides``."""
    config = replace(cls(), **(quick or {}))
    if path is not None:
        data = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path}: unknown config fields {sorted(unknown)}; known: {sorted(known)}")
        config = replace(config, **data)
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def _mlp_classifier(seed: int, max_iter: int):  # noqa: ANN202
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(32, 32), early_stopping=True, random_state=seed, max_iter=max_iter))


# --- the trigger story ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TriggerStudyConfig:
    n_signal: int = 4000
    n_background: int = 16000
    lifetimes_ps: tuple[float, ...] = (0.5, 1.0, 1.5, 3.0, 5.0, 10.0, 20.0)
    background_rate: float = 0.022  # 660 kHz out of 30 MHz, the paper's working point
    width: int = 16
    lipschitz_const: float = 2.0
    max_epochs: int = 60
    n_eval: int = 20000
    device: str = "cpu"


def trigger_study(config: TriggerStudyConfig, seed: int, *, log: Callable[[str], None] = print) -> dict:
    """Train a monotone and an unconstrained trigger at the nominal lifetime; scan the signal lifetime."""
    from monotonenorm import trigger as T
    from monotonenorm._estimators import MonotonicClassifier
    from monotonenorm._verify import verify_monotonic

    X, y = T.generate(config.n_signal, config.n_background, seed=seed)
    start = time.perf_counter()
    mono = MonotonicClassifier(
        list(T.MONOTONIC_CONSTRAINTS), width=config.width, lipschitz_const=config.lipschitz_const,
        max_epochs=config.max_epochs, random_state=seed, device=config.device,
    ).fit(X, y)
    log(f"monotone trigger trained in {time.perf_counter() - start:.0f} s")
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = _mlp_classifier(seed, 3 * config.max_epochs).fit(X, y)
    models = {"monotone (monotonenorm)": lambda A: mono.predict_proba(A)[:, 1], "unconstrained MLP": lambda A: mlp.predict_proba(A)[:, 1]}
    bkg = T.generate_background(config.n_eval, seed=seed + 1000)
    eff: dict[str, list[float]] = {name: [] for name in models}
    for i, tau in enumerate(config.lifetimes_ps):
        sig = T.generate_signal(config.n_eval, T.TriggerConfig(lifetime_ps=tau), seed=seed + 2000 + i)
        for name, f in models.items():
            eff[name].append(T.efficiency_at_rate(f(sig), f(bkg), config.background_rate))
    probe = np.vstack([T.generate_signal(500, seed=seed + 3), T.generate_background(500, seed=seed + 4)])
    reports = {name: verify_monotonic(f, probe, list(T.MONOTONIC_CONSTRAINTS), n_pairs=3000, seed=seed) for name, f in models.items()}
    # response vs displacement with the other features at the medians of the displaced background
    # (soft, badly fitted vertices): where an unconstrained net learns "more displaced = background"
    grid = np.linspace(0, 14, 200)
    tail = (y == 0) & (X[:, 0] > 6)
    med = np.median(X[tail] if tail.sum() >= 10 else X[y == 0], axis=0)
    line = np.tile(med, (len(grid), 1))
    line[:, 0] = grid
    return {
        "lifetimes_ps": list(config.lifetimes_ps),
        "efficiency": eff,
        "violation_fraction": {k: r.violation_fraction for k, r in reports.items()},
        "certified": {k: r.certified for k, r in reports.items()},
        "certified_monotone_model": verify_monotonic(mono, probe, n_pairs=0, relative_steps=()).certified,
        "displacement_grid": grid.tolist(),
        "response": {name: f(line).tolist() for name, f in models.items()},
        "background_rate": config.background_rate,
    }


def plot_trigger(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for name, values in result["efficiency"].items():
        a.plot(result["lifetimes_ps"], values, marker="o", label=name)
    a.axvline(1.5, color="grey", ls=":", label="training lifetime")
    a.set_xscale("log")
    a.set_xlabel("signal lifetime (ps)")
    a.set_ylabel(f"signal efficiency at {100 * result['background_rate']:.1f}% background")
    a.legend()
    for name, values in result["response"].items():
        b.plot(result["displacement_grid"], values, label=name)
    b.set_xlabel("log(1 + flight-distance chi2)")
    b.set_ylabel("P(signal), other features: displaced background")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def trigger_markdown(result: dict) -> str:
    names = list(result["efficiency"])
    lines = ["| lifetime (ps) | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for i, tau in enumerate(result["lifetimes_ps"]):
        lines.append(f"| {tau:g} | " + " | ".join(f"{100 * result['efficiency'][n][i]:.1f}%" for n in names) + " |")
    lines.append("| empirical monotonicity violations | " + " | ".join(f"{100 * result['violation_fraction'][n]:.2f}%" for n in names) + " |")
    return "\n".join(lines)


# --- the toy example --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExampleConfig:
    n_samples: int = 60
    noise_growth: float = 0.3
    max_epochs: int = 400
    lipschitz_const: float = 1.0
    mlp_max_iter: int = 2000
    device: str = "cpu"


def example(config: ExampleConfig, seed: int) -> dict:
    """The papers' log(x) toy: heteroscedastic noise, fit on [1, 3], evaluated up to 6."""
    from sklearn.neural_network import MLPRegressor

    from monotonenorm._estimators import MonotonicRegressor
    from monotonenorm._verify import verify_monotonic

    rng = np.random.default_rng(seed)
    x = rng.uniform(1, 3, size=config.n_samples)
    y = np.log(x) + rng.normal(size=x.shape) * (0.01 + config.noise_growth * (x - 1) / 2)
    X = x[:, None]
    mono = MonotonicRegressor([1], lipschitz_const=config.lipschitz_const, max_epochs=config.max_epochs, early_stopping=False, random_state=seed, device=config.device).fit(X, y)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=config.mlp_max_iter, learning_rate_init=1e-2, random_state=seed).fit(X, y)
    grid = np.linspace(1, 6, 300)[:, None]
    out = {
        "x": x.tolist(),
        "y": y.tolist(),
        "grid": grid[:, 0].tolist(),
        "monotone": mono.predict(grid).tolist(),
        "mlp": mlp.predict(grid).tolist(),
    }
    out["report_monotone"] = str(verify_monotonic(mono, grid))
    out["report_mlp"] = str(verify_monotonic(mlp.predict, grid, [1]))
    out["violations"] = {"monotone": verify_monotonic(mono, grid).n_violations, "mlp": verify_monotonic(mlp.predict, grid, [1]).n_violations}
    return out


def plot_example(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(result["x"], result["y"], s=12, color="purple", label="training data")
    ax.plot(result["grid"], np.log(result["grid"]), color="grey", ls=":", label="log(x)")
    ax.plot(result["grid"], result["monotone"], label="monotone (monotonenorm)")
    ax.plot(result["grid"], result["mlp"], label="unconstrained MLP")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- the tabular benchmarks (this package vs an unconstrained MLP; tools/bench adds the rest) ---------


@dataclass(frozen=True)
class BenchConfig:
    datasets: tuple[str, ...] = ("compas", "heart", "autompg")
    n_seeds: int = 5
    n_pairs: int = 2000


def bench_study(data_folder: Path, config: BenchConfig, *, quick: bool, log: Callable[[str], None] = print) -> tuple[list[dict], str, dict]:
    from monotonenorm import bench
    from monotonenorm._data import LOADERS

    records = []
    datasets = {}
    for key in config.datasets:
        ds = LOADERS[key](data_folder)
        datasets[ds.name] = ds
        records += bench.run_honest(ds, bench.COMPETITORS, list(range(config.n_seeds)), quick=quick, n_pairs=config.n_pairs, progress=log)
    rows = bench.summarize(records)
    return rows, bench.markdown_table(rows, bench.METRICS), datasets


def partial_dependence_figure(ds, path: Path, seed: int, quick: bool) -> dict:  # noqa: ANN001
    """Predicted target vs each constrained feature (others at training medians): ours vs the MLP."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from monotonenorm import bench

    data = bench.honest_split(ds, seed)
    fitted = {"monotone (monotonenorm)": bench.fit_ours(data, seed, quick), "unconstrained MLP": bench.fit_mlp(data, seed, quick)}
    constrained = [i for i, c in enumerate(ds.monotonic_constraints) if c != 0]
    fig, axes = plt.subplots(1, len(constrained), figsize=(4 * len(constrained), 3.4), squeeze=False)
    med = np.median(data.X_train, axis=0)
    summary = {}
    for ax, i in zip(axes[0], constrained):
        lo, hi = np.percentile(ds.X[:, i], [0, 100])
        grid = np.linspace(lo, hi, 200)
        line = np.tile(med, (len(grid), 1))
        line[:, i] = grid
        for name, f in fitted.items():
            pred = f.predict(line)
            ax.plot(grid, pred, label=name)
            steps = np.diff(pred) * ds.monotonic_constraints[i]
            summary[f"{ds.feature_names[i]} / {name}"] = int((steps < -1e-9).sum())
        ax.set_xlabel(f"{ds.feature_names[i]} ({'+' if ds.monotonic_constraints[i] > 0 else '-'})")
        ax.set_ylabel("prediction" if ds.task == "regression" else "P(y=1)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{ds.name}: partial dependence (other features at training medians)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return summary
