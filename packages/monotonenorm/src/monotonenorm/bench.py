"""The honest benchmark protocol (and the papers' protocol, labelled) for COMPAS, Heart and AutoMPG.

Honest protocol, per seed: the papers' fixed test set where there is one (COMPAS, Heart; a
seeded random 80/20 split for AutoMPG), a validation split of 20 % carved from the training
data, preprocessing fitted on the training part only, early stopping and the decision
threshold chosen on validation, the test set touched once. Five seeds, mean +- std.

Papers' protocol (for comparison with the published tables only): the published preprocessing
(COMPAS min-max over train+test, Heart standardized per split, AutoMPG standardized on all
rows) and the best test metric over epochs and thresholds, i.e. selected on the test set.

Competitors are functions ``fit(data: Split, seed: int, quick: bool) -> Fitted``; this module
provides this package's estimator and scikit-learn's unconstrained MLP; ``tools/bench``
adds boosted trees and the authors' package.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from monotonenorm._data import TabularDataset
from monotonenorm._monotonic import monotonic_mlp
from monotonenorm._verify import verify_monotonic


@dataclass(frozen=True)
class Split:
    dataset: TabularDataset
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


@dataclass
class Fitted:
    """A trained competitor: ``predict`` maps raw features to P(y=1) (binary) or the prediction."""

    predict: Callable[[np.ndarray], np.ndarray]
    n_parameters: int | None
    certified: bool | None  # None: no certificate exists for this model type
    note: str = ""


@dataclass
class Record:
    dataset: str
    model: str
    seed: int
    metric: float
    n_parameters: int | None
    certified: bool | None
    violation_fraction: float
    seconds: float
    threshold: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OursConfig:
    width: int
    depth: int
    lipschitz_const: float  # used by the reference package run; ours picks from lipschitz_grid on validation
    learning_rate: float
    batch_size: int
    max_epochs: int
    n_iter_no_change: int
    lipschitz_grid: tuple[float, ...] = (1.0, 2.0)


# Chosen a priori (not tuned on any test set); inputs are standardized inside the estimator.
OURS: dict[str, OursConfig] = {
    "COMPAS": OursConfig(width=16, depth=3, lipschitz_const=1.0, learning_rate=5e-3, batch_size=256, max_epochs=150, n_iter_no_change=20),
    "Heart": OursConfig(width=8, depth=2, lipschitz_const=1.0, learning_rate=5e-3, batch_size=32, max_epochs=300, n_iter_no_change=30),
    "AutoMPG": OursConfig(width=16, depth=3, lipschitz_const=2.0, learning_rate=5e-3, batch_size=32, max_epochs=400, n_iter_no_change=40),
}


def honest_split(ds: TabularDataset, seed: int, val_fraction: float = 0.2) -> Split:
    rng = np.random.default_rng(seed)
    if ds.train_index is None:
        order = rng.permutation(len(ds.y))
        n_test = int(round(0.2 * len(order)))
        train, test = order[n_test:], order[:n_test]
    else:
        train, test = rng.permutation(ds.train_index), ds.test_index
    n_val = int(round(val_fraction * len(train)))
    if ds.task == "binary":  # stratified validation split
        val_parts = []
        for label in np.unique(ds.y[train]):
            members = train[ds.y[train] == label]
            val_parts.append(members[: int(round(val_fraction * len(members)))])
        val = np.concatenate(val_parts)
    else:
        val = train[:n_val]
    fit = np.setdiff1d(train, val)
    return Split(ds, ds.X[fit], ds.y[fit], ds.X[val], ds.y[val], ds.X[test], ds.y[test])


def choose_threshold(p_val: np.ndarray, y_val: np.ndarray) -> float:
    """Threshold maximizing validation accuracy (midpoints between sorted scores; ties -> closest to 0.5)."""
    s = np.unique(p_val)
    candidates = np.concatenate([[0.5], (s[1:] + s[:-1]) / 2]) if len(s) > 1 else np.array([0.5])
    acc = np.array([np.mean((p_val > t) == y_val) for t in candidates])
    best = np.flatnonzero(acc == acc.max())
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def _validation_score(task: str, predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, y: np.ndarray) -> float:
    """Higher is better: accuracy at the best validation threshold, or minus the MSE."""
    p = predict(X)
    if task == "binary":
        return float(np.mean((p > choose_threshold(p, y)) == y))
    return -float(np.mean((p - y) ** 2))


def fit_ours(data: Split, seed: int, quick: bool) -> Fitted:
    """This package's estimator; lambda picked from ``lipschitz_grid`` by the validation score."""
    from monotonenorm._estimators import MonotonicClassifier, MonotonicRegressor

    cfg = OURS[data.dataset.name]
    cls = MonotonicClassifier if data.dataset.task == "binary" else MonotonicRegressor
    best: tuple[float, object] | None = None
    for lam in (cfg.lipschitz_const,) if quick else cfg.lipschitz_grid:
        model = cls(
            list(data.dataset.monotonic_constraints),
            width=cfg.width,
            depth=cfg.depth,
            lipschitz_const=lam,
            learning_rate=cfg.learning_rate,
            batch_size=cfg.batch_size,
            max_epochs=cfg.max_epochs // (3 if quick else 1),
            n_iter_no_change=cfg.n_iter_no_change,
            random_state=seed,
        ).fit(data.X_train, data.y_train, X_val=data.X_val, y_val=data.y_val)
        predict = (lambda X, m=model: m.predict_proba(X)[:, 1]) if data.dataset.task == "binary" else model.predict
        score = _validation_score(data.dataset.task, predict, data.X_val, data.y_val)
        if best is None or score > best[0]:
            best = (score, model)
    assert best is not None
    model = best[1]
    report = verify_monotonic(model, data.X_test, n_pairs=0, relative_steps=())  # certificate only
    predict = (lambda X: model.predict_proba(X)[:, 1]) if data.dataset.task == "binary" else model.predict
    return Fitted(predict, model.n_parameters_, report.certified, f"lambda {model.lipschitz_const:g}, epochs {model.n_iter_}")


def fit_mlp(data: Split, seed: int, quick: bool) -> Fitted:
    """scikit-learn's MLP, unconstrained, same width/depth as ours, standardized inputs, early stopping."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cfg = OURS[data.dataset.name]
    common = {
        "hidden_layer_sizes": (cfg.width,) * (cfg.depth - 1),
        "learning_rate_init": cfg.learning_rate,
        "batch_size": cfg.batch_size,
        "max_iter": cfg.max_epochs // (3 if quick else 1),
        "early_stopping": True,
        "validation_fraction": 0.2,
        "n_iter_no_change": cfg.n_iter_no_change,
        "random_state": seed,
    }
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    if data.dataset.task == "binary":
        model = make_pipeline(StandardScaler(), MLPClassifier(**common))
    else:
        from sklearn.compose import TransformedTargetRegressor

        model = TransformedTargetRegressor(make_pipeline(StandardScaler(), MLPRegressor(**common)), transformer=StandardScaler())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(data.X_train, data.y_train)
    mlp = model[-1] if data.dataset.task == "binary" else model.regressor_[-1]
    n_params = sum(w.size for w in mlp.coefs_) + sum(b.size for b in mlp.intercepts_)
    predict = (lambda X: model.predict_proba(X)[:, 1]) if data.dataset.task == "binary" else model.predict
    return Fitted(predict, n_params, False, "unconstrained")


COMPETITORS: dict[str, Callable[[Split, int, bool], Fitted]] = {"monotonenorm": fit_ours, "MLP (unconstrained)": fit_mlp}


def run_honest(
    ds: TabularDataset,
    competitors: dict[str, Callable[[Split, int, bool], Fitted]],
    seeds: list[int],
    *,
    quick: bool = False,
    n_pairs: int = 2000,
    progress: Callable[[str], None] | None = None,
) -> list[Record]:
    records = []
    for seed in seeds:
        data = honest_split(ds, seed)
        for name, fit in competitors.items():
            torch.manual_seed(seed)
            start = time.perf_counter()
            fitted = fit(data, seed, quick)
            seconds = time.perf_counter() - start
            threshold = None
            if ds.task == "binary":
                threshold = choose_threshold(fitted.predict(data.X_val), data.y_val)
                metric = float(np.mean((fitted.predict(data.X_test) > threshold) == data.y_test))
            else:
                metric = float(np.mean((fitted.predict(data.X_test) - data.y_test) ** 2))
            report = verify_monotonic(
                lambda X, f=fitted: f.predict(X), data.X_test, list(ds.monotonic_constraints), n_pairs=n_pairs, seed=seed
            )
            records.append(
                Record(ds.name, name, seed, metric, fitted.n_parameters, fitted.certified, report.violation_fraction, seconds, threshold, {"note": fitted.note})
            )
            if progress:
                progress(f"{ds.name} seed {seed} {name}: {metric:.4f} ({seconds:.1f} s)")
    return records


# --- the papers' protocol ----------------------------------------------------------------------

PAPER = {
    # width, depth, per-layer constant, lambda, lr, batch (None: full batch), epochs (the code's), group_size
    "COMPAS": {"width": 2, "depth": 3, "lam": 1.3**3, "lr": 2e-4, "batch": 256, "epochs": 2000},
    "Heart": {"width": 4, "depth": 3, "lam": 1.0, "lr": 2e-3, "batch": None, "epochs": 300},
    "AutoMPG": {"width": 8, "depth": 3, "lam": 1.0, "lr": 1e-2, "batch": 64, "epochs": 2000},
}


def _paper_arrays(ds: TabularDataset, seed: int) -> tuple[np.ndarray, ...]:
    if ds.name == "AutoMPG":
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(ds.y), generator=g).numpy()
        n_train = int(0.8 * len(order))
        tr, te = order[:n_train], order[n_train:]
        X = (ds.X - ds.X.mean(0)) / ds.X.std(0)  # standardized over all rows, as the original code
        return X[tr], ds.y[tr], X[te], ds.y[te]
    tr, te = ds.train_index, ds.test_index
    if ds.name == "COMPAS":
        X = ds.X.copy()
        lo, hi = X[:, :5].min(0), X[:, :5].max(0)  # min-max over train + test, as the original code
        X[:, :5] = (X[:, :5] - lo) / (hi - lo)
        return X[tr], ds.y[tr], X[te], ds.y[te]
    Xtr, Xte = ds.X[tr], ds.X[te]  # Heart: each split standardized with its own statistics
    return (Xtr - Xtr.mean(0)) / Xtr.std(0), ds.y[tr], (Xte - Xte.mean(0)) / Xte.std(0), ds.y[te]


def run_paper_protocol(ds: TabularDataset, seeds: list[int], *, epochs_scale: float = 1.0, progress: Callable[[str], None] | None = None) -> list[Record]:
    """Our network trained as in the original scripts; best **test** metric over epochs (and thresholds)."""
    cfg = PAPER[ds.name]
    records = []
    for seed in seeds:
        torch.manual_seed(seed)
        Xtr, ytr, Xte, yte = _paper_arrays(ds, seed)
        y_mean, y_std = (ytr.mean(), ytr.std()) if ds.task == "regression" else (0.0, 1.0)
        xt = torch.as_tensor(Xtr, dtype=torch.float32)
        yt = torch.as_tensor((ytr - y_mean) / y_std, dtype=torch.float32)
        xe = torch.as_tensor(Xte, dtype=torch.float32)
        model = monotonic_mlp(ds.X.shape[1], list(ds.monotonic_constraints), width=cfg["width"], depth=cfg["depth"], lipschitz_const=cfg["lam"])
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
        batch = cfg["batch"] or len(xt)
        epochs = max(1, int(cfg["epochs"] * epochs_scale))
        best = -math.inf if ds.task == "binary" else math.inf
        start = time.perf_counter()
        for _ in range(epochs):
            model.train()
            perm = torch.randperm(len(xt))
            for s in range(0, len(xt), batch):
                idx = perm[s : s + batch]
                out = model(xt[idx]).squeeze(-1)
                if ds.task == "binary":
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(out, yt[idx])
                else:
                    loss = torch.mean((out - yt[idx]) ** 2)
                opt.zero_grad()
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                out = model(xe).squeeze(-1).numpy()
            if ds.task == "binary":
                p = 1 / (1 + np.exp(-out))
                accs = [np.mean((p > t) == yte) for t in np.linspace(0.01, 0.99, 50)]
                best = max(best, float(max(accs)))
            else:
                best = min(best, float(np.mean((out * y_std + y_mean - yte) ** 2)))
        n_params = sum(p.numel() for p in model.parameters())
        records.append(Record(ds.name, "monotonenorm (paper protocol)", seed, best, n_params, True, 0.0, time.perf_counter() - start, None, {"epochs": epochs}))
        if progress:
            progress(f"{ds.name} seed {seed} paper protocol: {best:.4f}")
    return records


# --- tables ---------------------------------------------------------------------------------------


def summarize(records: list[Record]) -> list[dict]:
    rows = []
    keys = sorted({(r.dataset, r.model) for r in records}, key=lambda k: (k[0], [r.model for r in records].index(k[1])))
    for dataset, model in keys:
        rs = [r for r in records if r.dataset == dataset and r.model == model]
        values = np.array([r.metric for r in rs])
        certs = {r.certified for r in rs}
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "n_seeds": len(rs),
                "n_parameters": rs[0].n_parameters,
                "certified": "yes" if certs == {True} else ("no" if True not in certs and False in certs else ("n/a" if certs == {None} else "partly")),
                "violation_fraction": float(np.mean([r.violation_fraction for r in rs])),
                "seconds": float(np.median([r.seconds for r in rs])),
            }
        )
    return rows


def markdown_table(rows: list[dict], metric_names: dict[str, str]) -> str:
    lines = [
        "| dataset | model | test metric (mean ± std) | seeds | params | certified | empirical violations | fit s (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        scale = 100.0 if metric_names.get(r["dataset"], "").startswith("acc") else 1.0
        unit = "%" if scale == 100.0 else ""
        lines.append(
            f"| {r['dataset']} | {r['model']} | {metric_names.get(r['dataset'], '')} {r['mean'] * scale:.2f}{unit} ± {r['std'] * scale:.2f} "
            f"| {r['n_seeds']} | {r['n_parameters'] if r['n_parameters'] is not None else '-'} | {r['certified']} "
            f"| {r['violation_fraction']:.2%} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


METRICS = {"COMPAS": "acc", "Heart": "acc", "AutoMPG": "MSE"}
