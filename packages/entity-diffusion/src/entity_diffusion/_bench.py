"""Benchmark helpers: TabDDPM-format loader, ML-efficiency score, MCAR imputation metrics.

Used by ``entity-diffusion bench``, the reproduce entry and ``tools/bench/tabular.py``.
scikit-learn is imported lazily; CatBoost is used when installed (the paper's evaluator), else
scikit-learn's HistGradientBoosting, and every result records which evaluator produced it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TARGET = "y"


def load_tabddpm(root: Path, name: str) -> dict[str, Any]:
    """Train/val/test DataFrames of a TabDDPM-format folder ``root/name`` (num_i, cat_i, y)."""
    folder = Path(root) / name
    info_path = folder / "info.json"
    if not info_path.exists():
        raise FileNotFoundError(f"{info_path}: missing; expected a TabDDPM-format dataset folder")
    info = json.loads(info_path.read_text())
    task = info["task_type"]
    splits = {}
    for split in ("train", "val", "test"):
        if not (folder / f"y_{split}.npy").exists():
            continue  # TabSyn-format sets (adult) have no validation split: carved below
        parts = {}
        num_path = folder / f"X_num_{split}.npy"
        if num_path.exists():
            x = np.load(num_path, allow_pickle=True).astype(np.float64)
            if not np.isfinite(x).all():
                raise ValueError(f"{num_path}: non-finite values")
            for j in range(x.shape[1]):
                parts[f"num_{j}"] = x[:, j]
        cat_path = folder / f"X_cat_{split}.npy"
        if cat_path.exists():
            c = np.load(cat_path, allow_pickle=True).astype(str)
            for j in range(c.shape[1]):
                parts[f"cat_{j}"] = np.char.strip(c[:, j])
        y = np.load(folder / f"y_{split}.npy", allow_pickle=True).reshape(-1)
        if task == "regression":
            parts[TARGET] = y.astype(np.float64)
        elif y.dtype.kind in "iub":
            parts[TARGET] = y.astype(np.int64).astype(str)
        else:  # labels stored as strings (TabSyn adult: ' <=50K', ' >50K.')
            parts[TARGET] = np.char.rstrip(np.char.strip(y.astype(str)), ".")
        frame = pd.DataFrame(parts)
        expected = info.get(f"{split}_size")
        if expected is not None and len(frame) != expected:
            raise ValueError(f"{folder}: {split} has {len(frame)} rows, info.json says {expected}")
        splits[split] = frame
    for split in ("train", "test"):
        if split not in splits:
            raise FileNotFoundError(f"{folder}: y_{split}.npy missing")
    if "val" not in splits:
        order = np.random.default_rng(0).permutation(len(splits["train"]))
        n_val = len(order) // 5
        splits["val"] = splits["train"].iloc[order[:n_val]].reset_index(drop=True)
        splits["train"] = splits["train"].iloc[order[n_val:]].reset_index(drop=True)
    n_num = sum(c.startswith("num_") for c in splits["train"].columns)
    n_cat = sum(c.startswith("cat_") for c in splits["train"].columns)
    if (n_num, n_cat) != (info.get("n_num_features", n_num), info.get("n_cat_features", n_cat)):
        raise ValueError(f"{folder}: {n_num} num / {n_cat} cat columns, info.json says "
                         f"{info.get('n_num_features')} / {info.get('n_cat_features')}")
    return {"name": name, "task": task, **splits}


def schema_overrides(frame: pd.DataFrame, task: str) -> dict[str, str]:
    """TabDDPM columns: cat_* and a classification target are categorical."""
    out = {c: "categorical" for c in frame.columns if c.startswith("cat_")}
    if task != "regression":
        out[TARGET] = "categorical"
    return out


def ml_efficiency(train: pd.DataFrame, test: pd.DataFrame, task: str, *, seed: int = 0,
                  evaluator: str = "auto", iterations: int = 500) -> tuple[float, str]:
    """Train a gradient-boosted model on ``train`` (real or synthetic), score on the real
    ``test``: macro-F1 for classification, R2 for regression. Returns (score, evaluator)."""
    from sklearn.metrics import f1_score, r2_score

    if evaluator == "auto":
        try:
            import catboost  # noqa: F401

            evaluator = "catboost"
        except ImportError:
            evaluator = "hist-gradient-boosting"
    features = [c for c in train.columns if c != TARGET]
    cats = [c for c in features if c.startswith("cat_")]
    x_train, x_test = train[features].copy(), test[features].copy()
    y_train, y_test = train[TARGET], test[TARGET]
    classification = task != "regression"
    if classification and y_train.nunique() < 2:
        return 0.0, evaluator  # a generator that produced one class has no useful classifier
    if evaluator == "catboost":
        from catboost import CatBoostClassifier, CatBoostRegressor

        for c in cats:
            x_train[c], x_test[c] = x_train[c].astype(str), x_test[c].astype(str)
        kind = CatBoostClassifier if classification else CatBoostRegressor
        model = kind(iterations=iterations, learning_rate=0.1, depth=6, random_seed=seed, verbose=False,
                     thread_count=2, cat_features=cats, allow_writing_files=False)
        model.fit(x_train, y_train.astype(str) if classification else y_train.astype(float))
        pred = model.predict(x_test)
        pred = np.asarray(pred).reshape(-1)
    else:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        for c in cats:
            levels = sorted(set(x_train[c].astype(str)) | set(x_test[c].astype(str)))
            x_train[c] = pd.Categorical(x_train[c].astype(str), categories=levels).codes
            x_test[c] = pd.Categorical(x_test[c].astype(str), categories=levels).codes
        mask = [c in cats for c in features]
        kind = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
        model = kind(max_iter=iterations // 2, random_state=seed, categorical_features=mask or None)
        model.fit(x_train, y_train.astype(str) if classification else y_train.astype(float))
        pred = model.predict(x_test)
    if classification:
        return float(f1_score(y_test.astype(str), np.asarray(pred).astype(str), average="macro")), evaluator
    return float(r2_score(y_test.astype(float), pred.astype(float))), evaluator


def mcar(frame: pd.DataFrame, rate: float, rng: np.random.Generator) -> pd.DataFrame:
    """Each cell missing independently with probability ``rate``; rows keep >= 1 observed cell."""
    mask = rng.random(frame.shape) < rate
    full = mask.all(1)
    mask[full, rng.integers(0, frame.shape[1], full.sum())] = False
    return frame.mask(mask)


def imputation_scores(truth: pd.DataFrame, gapped: pd.DataFrame, filled: pd.DataFrame,
                      numeric: list[str], categorical: list[str]) -> dict[str, float]:
    """RMSE over missing numeric cells in units of each column's std (averaged over columns),
    and accuracy over missing categorical cells."""
    errors, correct = [], []
    for c in numeric:
        gap = gapped[c].isna().to_numpy()
        if gap.any():
            scale = truth[c].std() or 1.0
            diff = (filled[c].to_numpy(dtype=float)[gap] - truth[c].to_numpy(dtype=float)[gap]) / scale
            errors.append(float(np.sqrt(np.mean(diff**2))))
    for c in categorical:
        gap = gapped[c].isna().to_numpy()
        if gap.any():
            correct.append(float(np.mean(filled[c].astype(str).to_numpy()[gap] == truth[c].astype(str).to_numpy()[gap])))
    return {"nrmse": float(np.mean(errors)) if errors else float("nan"),
            "accuracy": float(np.mean(correct)) if correct else float("nan")}


def baseline_impute(train: pd.DataFrame, gapped: pd.DataFrame, numeric: list[str], categorical: list[str],
                    method: str, seed: int = 0) -> pd.DataFrame:
    """mean / knn / iterative (scikit-learn) for numbers; most frequent category for categories
    (knn and iterative see one-hot categoricals as features)."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

    out = gapped.copy()
    for c in categorical:
        mode = train[c].astype(str).mode().iloc[0]
        out[c] = gapped[c].astype(object).where(gapped[c].notna(), mode)
    if not numeric:
        return out
    mu, sd = train[numeric].mean(), train[numeric].std().replace(0, 1)
    onehot_train = pd.get_dummies(train[categorical].astype(str), dtype=float) if categorical else None
    x_train = (train[numeric] - mu) / sd
    x_gap = (gapped[numeric] - mu) / sd
    if categorical:
        dummies = pd.get_dummies(gapped[categorical].astype(object), dtype=float).reindex(
            columns=onehot_train.columns, fill_value=0.0)
        dummies[gapped[categorical].isna().any(axis=1).to_numpy()] = np.nan  # unknown one-hots
        x_train = pd.concat([x_train, onehot_train], axis=1)
        x_gap = pd.concat([x_gap, dummies], axis=1)
    if method == "mean":
        imputer = SimpleImputer(strategy="mean")
    elif method == "knn":
        imputer = KNNImputer(n_neighbors=5)
    elif method == "iterative":
        imputer = IterativeImputer(max_iter=10, random_state=seed)
    else:
        raise ValueError(f"unknown method {method!r}")
    imputer.fit(x_train.to_numpy())
    values = imputer.transform(x_gap.to_numpy())[:, : len(numeric)]
    out[numeric] = values * sd.to_numpy() + mu.to_numpy()
    return out


def quick_bench(data: Path, dataset: str, *, out_dir: Path, quick: bool, seed: int, device: str,
                quiet: bool, steps: int | None = None) -> str:
    """Fit on one TabDDPM-format dataset; report synthetic-vs-real score and MCAR imputation."""
    from entity_diffusion._api import EntityDiffusion, KBFormerConfig

    ds = load_tabddpm(data, dataset)
    train = ds["train"].sample(n=min(len(ds["train"]), 2000 if quick else 20000), random_state=seed)
    if quick:  # the quick preset: early stopping on the held-out ELBO sizes the fit
        from entity_diffusion._imputer import preset_config

        config = preset_config("quick").updated(**({"steps": steps} if steps else {}))
    else:
        config = KBFormerConfig(steps=steps or 3000).updated(d_model=64)
    start = time.perf_counter()
    model = EntityDiffusion(config, schema_overrides=schema_overrides(train, ds["task"]), device=device,
                            random_state=seed).fit(train, quiet=quiet)
    fit_s = time.perf_counter() - start
    synth = model.sample(len(train), seed=seed)
    iterations = 100 if quick else 500
    real, evaluator = ml_efficiency(train, ds["test"], ds["task"], seed=seed, iterations=iterations)
    fake, _ = ml_efficiency(synth, ds["test"], ds["task"], seed=seed, iterations=iterations)
    numeric = [c for c in train.columns if c.startswith("num_")] + ([TARGET] if ds["task"] == "regression" else [])
    categorical = [c for c in train.columns if c not in numeric]
    test = ds["test"].head(300 if quick else 2000).reset_index(drop=True)
    gapped = mcar(test, 0.3, np.random.default_rng(seed))
    ours = imputation_scores(test, gapped, model.impute(gapped, n_samples=5, seed=seed), numeric, categorical)
    mean = imputation_scores(test, gapped, baseline_impute(train, gapped, numeric, categorical, "mean"), numeric,
                             categorical)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {"dataset": dataset, "evaluator": evaluator, "real": real, "synthetic": fake, "fit_seconds": fit_s,
              "impute_kbformer": ours, "impute_mean": mean, "train_rows": len(train)}
    (out_dir / f"bench_{dataset}.json").write_text(json.dumps(result, indent=1))
    metric = "R2" if ds["task"] == "regression" else "macro-F1"
    return (f"| {dataset} | {metric} real {real:.3f} | synthetic {fake:.3f} | MCAR 30% nRMSE KBFormer "
            f"{ours['nrmse']:.3f} vs mean {mean['nrmse']:.3f} | fit {fit_s:.0f} s ({evaluator}) |")
