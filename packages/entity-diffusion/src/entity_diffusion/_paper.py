"""The paper's tabular protocol (TabDDPM's ML-efficiency evaluation), at GPU or smoke size.

Per dataset: KBFormer is fit on the real train split with the real validation split as its
held-out ELBO (best checkpoint, early stopping). Synthetic sets of len(train) rows: for
classification the target is drawn from the training class distribution and every other
property is sampled conditioned on it; for regression the target is one more numerical property
generated jointly (TabDDPM's rule). Competitors when their wheels are installed: SMOTE
(imbalanced-learn), CTGAN and TVAE (ctgan); otherwise the record says "not installed".

Utility: an evaluator is trained on each synthetic set with each evaluator seed and scored on the
real test split (macro-F1 / R2): CatBoost with early stopping on the real validation split (its
iteration count is tuned there; TabDDPM also tuned CatBoost's other hyperparameters on real data,
which is not done here), or scikit-learn's HistGradientBoosting when catboost is absent.
Fidelity and privacy beside utility: the sdmetrics quality report (column shapes, column pair
trends) when sdmetrics is installed; a classifier two-sample test (ROC AUC of a gradient-boosted
classifier telling real test rows from synthetic rows, cross-validated; 0.5 = indistinguishable);
distance to closest record (DCR: for each synthetic row, the distance to its nearest real train
row, against the same for real test rows; the share of synthetic rows closer to train than the
test rows' median DCR, and median DCRs).

The payload (``record.json``) is rewritten after every finished (dataset, generator) cell.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from entity_diffusion._bench import TARGET, load_tabddpm, schema_overrides

DATASETS = ["abalone", "buddy", "california", "churn2", "default", "house", "king", "wilt", "adult"]
# [PAPER] Table 3 KBFormer (mean, std); the 'default' split here is a fork's and adult is TabSyn's
PAPER = {"abalone": (0.550, 0.009), "buddy": (0.907, 0.003), "california": (0.842, 0.002),
         "churn2": (0.742, 0.006), "house": (0.624, 0.005), "king": (0.876, 0.006), "wilt": (0.892, 0.007)}


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def find_data(path: str) -> Path:
    """``path`` or, for "auto", $ENTITY_DIFFUSION_DATA, then the first of shared/data,
    ../shared/data, ../../shared/data (a checkout, a worktree beside it) that exists."""
    env = os.environ.get("ENTITY_DIFFUSION_DATA")
    candidates = [Path(path)] if path != "auto" else [
        *([Path(env)] if env else []), Path("shared/data"), Path("../shared/data"), Path("../../shared/data")]
    for c in candidates:
        if (c / "tabular").is_dir():
            return c
    raise FileNotFoundError(f"no TabDDPM data folder: tried {[str(c / 'tabular') for c in candidates]}")


def load(data: Path, name: str) -> dict[str, Any]:
    root = data / ("tabular_tabsyn" if name == "adult" else "tabular")
    return load_tabddpm(root, name)


def kbformer_sets(ds: dict, n_sets: int, seed: int, args: argparse.Namespace,
                  fit_seconds: float | None = None) -> tuple[list[pd.DataFrame], dict]:
    from entity_diffusion._api import EntityDiffusion, KBFormerConfig

    train, task = ds["train"], ds["task"]
    config = KBFormerConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, eval_every=args.eval_every,
                            patience=args.patience,
                            max_seconds=fit_seconds if fit_seconds is not None else args.fit_seconds).updated(
        d_model=args.d_model, n_layers=args.layers, n_mixtures=32)
    model = EntityDiffusion(config, schema_overrides=schema_overrides(train, task), device=args.device,
                            random_state=seed)
    start = time.perf_counter()
    model.fit(train, validation_data=ds["val"])
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    sets = []
    for s in range(n_sets):
        if task == "regression":
            rows = model.sample(len(train), seed=seed + s, batch_size=args.sample_batch)
        else:
            rng = np.random.default_rng(seed + s)
            labels = rng.choice(train[TARGET].to_numpy(), size=len(train), replace=True)  # class distribution
            query = pd.DataFrame({TARGET: labels})
            rows = model.complete(query, n_samples=1, seed=seed + s, batch_size=args.sample_batch)[0]
        sets.append(rows[train.columns])
    meta = {"fit_seconds": fit_s, "sample_rows_per_s": n_sets * len(train) / (time.perf_counter() - start),
            "training": model.history_.to_dict(), "config": config.to_dict()}
    return sets, meta


def smote_sets(train: pd.DataFrame, task: str, n_sets: int, seed: int) -> list[pd.DataFrame]:
    """TabDDPM's SMOTE baseline: interpolate between same-class neighbours (regression: classes
    are the two halves of y, y interpolated as a feature); SMOTENC when there are categories."""
    from imblearn.over_sampling import SMOTE, SMOTENC

    features = [c for c in train.columns if c != TARGET]
    x = train[features] if task != "regression" else train
    labels = train[TARGET] if task != "regression" else (train[TARGET] > train[TARGET].median()).astype(str)
    counts = labels.value_counts()
    cats = [i for i, c in enumerate(x.columns) if c.startswith("cat_")]
    out = []
    for s in range(n_sets):
        target = {k: int(v) * 2 for k, v in counts.items()}
        kind = (SMOTENC(categorical_features=cats, sampling_strategy=target, k_neighbors=5, random_state=seed + s)
                if cats else SMOTE(sampling_strategy=target, k_neighbors=5, random_state=seed + s))
        xs, ys = kind.fit_resample(x, labels)
        new = xs.iloc[len(x):].reset_index(drop=True)
        if task != "regression":
            new[TARGET] = ys.iloc[len(x):].to_numpy()
        out.append(new[train.columns].sample(n=len(train), random_state=seed + s).reset_index(drop=True))
    return out


def gan_sets(train: pd.DataFrame, task: str, n_sets: int, seed: int, epochs: int, kind: str,
             cuda: bool) -> list[pd.DataFrame]:
    import torch
    from ctgan import CTGAN, TVAE

    torch.manual_seed(seed)
    discrete = [c for c in train.columns if c.startswith("cat_")] + ([TARGET] if task != "regression" else [])
    model = (CTGAN if kind == "ctgan" else TVAE)(epochs=epochs, enable_gpu=cuda)
    model.fit(train, discrete_columns=discrete)
    return [model.sample(len(train))[train.columns] for _ in range(n_sets)]


def _matrix(frames: list[pd.DataFrame], reference: pd.DataFrame) -> list[np.ndarray]:
    """Standardised numbers + one-hot categories (levels and scales from ``reference``)."""
    numeric = [c for c in reference.columns if not c.startswith("cat_") and
               not (c == TARGET and reference[c].dtype == object)]
    cats = [c for c in reference.columns if c not in numeric]
    mu, sd = reference[numeric].astype(float).mean(), reference[numeric].astype(float).std().replace(0, 1)
    levels = {c: sorted(reference[c].astype(str).unique()) for c in cats}
    out = []
    for f in frames:
        parts = [((f[numeric].astype(float) - mu) / sd).to_numpy()]
        for c in cats:
            values = f[c].astype(str).to_numpy()
            parts.append((values[:, None] == np.asarray(levels[c])[None, :]).astype(float) / np.sqrt(2))
        out.append(np.nan_to_num(np.hstack(parts)))
    return out


def c2st_auc(real: pd.DataFrame, synth: pd.DataFrame, seed: int) -> float:
    """ROC AUC of a classifier separating real from synthetic rows (3-fold CV); 0.5 is ideal."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_score

    n = min(len(real), len(synth), 5000)
    r = real.sample(n=n, random_state=seed)
    s = synth.sample(n=n, random_state=seed)
    xr, xs = _matrix([r, s], r)
    x = np.vstack([xr, xs])
    y = np.r_[np.zeros(n), np.ones(n)]
    clf = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    return float(cross_val_score(clf, x, y, cv=3, scoring="roc_auc").mean())


def dcr(train: pd.DataFrame, test: pd.DataFrame, synth: pd.DataFrame, seed: int) -> dict[str, float]:
    """Distance to the closest real train record, for synthetic rows and (as the yardstick) for
    real test rows that the generator never saw."""
    from sklearn.neighbors import NearestNeighbors

    n = min(len(synth), len(test), 3000)
    s = synth.sample(n=n, random_state=seed)
    t = test.sample(n=n, random_state=seed)
    xtr, xs, xt = _matrix([train, s, t], train)
    nn = NearestNeighbors(n_neighbors=1).fit(xtr)
    d_s = nn.kneighbors(xs)[0][:, 0]
    d_t = nn.kneighbors(xt)[0][:, 0]
    return {"dcr_synthetic_median": float(np.median(d_s)), "dcr_holdout_median": float(np.median(d_t)),
            "share_closer_than_holdout_median": float(np.mean(d_s < np.median(d_t))),
            "exact_copies": float(np.mean(d_s < 1e-9))}


def quality(train: pd.DataFrame, synth: pd.DataFrame, task: str) -> dict[str, float] | str:
    import warnings

    try:
        with warnings.catch_warnings():  # 0.32 deprecates the single-table path it still documents
            warnings.simplefilter("ignore", FutureWarning)
            from sdmetrics.reports.single_table import QualityReport
    except ImportError:
        return "sdmetrics not installed"
    columns = {c: {"sdtype": "categorical" if c.startswith("cat_") or (c == TARGET and task != "regression")
                   else "numerical"} for c in train.columns}
    report = QualityReport()
    n = min(len(train), 5000)
    report.generate(train.sample(n=n, random_state=0), synth.sample(n=min(n, len(synth)), random_state=0),
                    {"columns": columns}, verbose=False)
    props = report.get_properties()
    return {row["Property"]: float(row["Score"]) for _, row in props.iterrows()} | {"overall": float(report.get_score())}


def utility(frames: list[pd.DataFrame], ds: dict, seeds: int, args: argparse.Namespace,
            deadline: float | None = None) -> tuple[list[float], str]:
    """Evaluator on each set x seed, early-stopped on the real validation split, scored on test.
    Past ``deadline`` (a ``time.perf_counter()`` value) no further fit starts, once one has run:
    the number of scores says how many (set, seed) fits were evaluated."""
    from sklearn.metrics import f1_score, r2_score

    task = ds["task"]
    classification = task != "regression"
    features = [c for c in ds["train"].columns if c != TARGET]
    cats = [c for c in features if c.startswith("cat_")]
    try:
        from catboost import CatBoostClassifier, CatBoostRegressor
    except ImportError:
        CatBoostClassifier = CatBoostRegressor = None

    def prep(f: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        x = f[features].copy()
        for c in cats:
            x[c] = x[c].astype(str)
        y = f[TARGET].astype(str).to_numpy() if classification else f[TARGET].astype(float).to_numpy()
        return x, y

    x_val, y_val = prep(ds["val"])
    x_test, y_test = prep(ds["test"])
    scores: list[float] = []
    evaluator = "catboost (early stopping on val)" if CatBoostClassifier else "hist-gradient-boosting (early stopping on 15 % of its rows)"
    for frame in frames:
        x, y = prep(frame)
        for seed in range(seeds):
            if deadline is not None and scores and time.perf_counter() > deadline:
                return scores, evaluator
            if classification and len(set(y)) < 2:
                scores.append(0.0)
                continue
            if CatBoostClassifier is not None:
                kind = CatBoostClassifier if classification else CatBoostRegressor
                model = kind(iterations=args.eval_iterations, learning_rate=0.05, depth=6, random_seed=seed,
                             od_type="Iter", od_wait=50, verbose=False, thread_count=args.eval_threads,
                             cat_features=cats, allow_writing_files=False)
                # a synthetic set can lack a class the real splits hold (a collapsed generator):
                # early stopping then watches only the validation rows of classes it has, and the
                # test score still counts the missing class against it
                keep = np.isin(y_val, np.unique(y)) if classification else np.ones(len(y_val), bool)
                model.fit(x, y, eval_set=(x_val[keep], y_val[keep]), use_best_model=True)
                pred = np.asarray(model.predict(x_test)).reshape(-1)
            else:
                from sklearn.ensemble import (
                    HistGradientBoostingClassifier,
                    HistGradientBoostingRegressor,
                )

                levels = {c: sorted(set(x[c]) | set(x_val[c]) | set(x_test[c])) for c in cats}

                def codes(f: pd.DataFrame, lv: dict = levels) -> pd.DataFrame:
                    out = f.copy()
                    for c in cats:
                        out[c] = pd.Categorical(out[c], categories=lv[c]).codes
                    return out

                kind = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
                model = kind(max_iter=args.eval_iterations, learning_rate=0.05, random_state=seed,
                             early_stopping=True, validation_fraction=0.15, n_iter_no_change=30,
                             categorical_features=[features.index(c) for c in cats] or None)
                model.fit(codes(x), y)
                pred = model.predict(codes(x_test))
            if classification:
                scores.append(float(f1_score(y_test, np.asarray(pred).astype(str), average="macro")))
            else:
                scores.append(float(r2_score(y_test, np.asarray(pred, dtype=float))))
    return scores, evaluator


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    data = find_data(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = time.perf_counter() + args.max_minutes * 60
    cells: dict[str, dict[str, Any]] = {}
    cuda = args.device.startswith("cuda") and torch.cuda.is_available()
    names = [n for n in args.datasets.split(",") if n]
    for i, name in enumerate(names):
        now = time.perf_counter()
        if now > deadline:
            cells[name] = {"status": "not run (time budget)"}
            _write(args, cells)
            continue
        # every dataset gets a fair share of what is left, so the window reaches all of them;
        # a dataset that finishes early leaves its rest to the ones after it
        share = (deadline - now) / (len(names) - i)
        set_deadline = now + share
        ds = load(data, name)
        if args.max_train and len(ds["train"]) > args.max_train:
            ds["train"] = ds["train"].sample(n=args.max_train, random_state=0).reset_index(drop=True)
        if args.max_eval and len(ds["test"]) > args.max_eval:
            ds["test"] = ds["test"].sample(n=args.max_eval, random_state=0).reset_index(drop=True)
            ds["val"] = ds["val"].sample(n=min(len(ds["val"]), args.max_eval), random_state=0).reset_index(drop=True)
        cell: dict[str, Any] = {"task": ds["task"], "train_rows": len(ds["train"]), "test_rows": len(ds["test"]),
                                "budget_seconds": share, "generators": {}}
        cells[name] = cell
        # real data: at most a sixth of the share; each generator then gets an equal part of the rest
        real, evaluator = utility([ds["train"]], ds, args.eval_seeds, args, deadline=now + share / 6)
        cell["evaluator"] = evaluator
        cell["generators"]["real"] = {"scores": real}
        _write(args, cells)
        makers = []
        for gen, module in [("kbformer", None), ("smote", "imblearn"), ("ctgan", "ctgan"), ("tvae", "ctgan")]:
            if gen not in args.generators.split(","):
                continue
            if module is not None:
                try:
                    __import__(module)
                except ImportError:
                    cell["generators"][gen] = {"status": f"{module} not installed"}
                    continue
            makers.append((gen, module))
        for j, (gen, _module) in enumerate(makers):
            now = time.perf_counter()
            if now > min(deadline, set_deadline):
                cell["generators"][gen] = {"status": "not run (time budget)"}
                continue
            gen_deadline = now + (set_deadline - now) / (len(makers) - j)
            start = time.perf_counter()
            try:
                meta: dict[str, Any] = {}
                if gen == "kbformer":
                    # the fit gets at most half of the generator's part (and --fit-seconds)
                    fit_cap = min(args.fit_seconds, max(0.1, 0.5 * (gen_deadline - now)))
                    sets, meta = kbformer_sets(ds, args.sets, args.seed, args, fit_seconds=fit_cap)
                elif gen == "smote":
                    sets = smote_sets(ds["train"], ds["task"], args.sets, args.seed)
                else:
                    sets = gan_sets(ds["train"], ds["task"], args.sets, args.seed, args.gan_epochs, gen, cuda)
                gen_s = time.perf_counter() - start
                scores, _ = utility(sets, ds, args.eval_seeds, args, deadline=gen_deadline)
                first = sets[0]
                entry = {"scores": scores, "generate_seconds": gen_s, **meta,
                         "c2st_auc": c2st_auc(ds["test"], first, args.seed),
                         **dcr(ds["train"], ds["test"], first, args.seed),
                         "quality": quality(ds["train"], first, ds["task"])}
                cell["generators"][gen] = entry
            except Exception as exc:  # one generator's failure is recorded; the others still run
                cell["generators"][gen] = {"status": f"failed: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]}"}
                _log(f"{name}: {gen} failed: {type(exc).__name__}: {exc}")
                _write(args, cells)
                continue
            _log(f"{name}: {gen} {np.mean(scores):.3f} ± {np.std(scores):.3f} (C2ST AUC {entry['c2st_auc']:.3f})")
            _write(args, cells)
    _write(args, cells)
    return 0


def _write(args: argparse.Namespace, cells: dict[str, dict[str, Any]]) -> None:
    rows, fidelity = [], []
    for name, cell in cells.items():
        gens = cell.get("generators", {})

        def cellstr(g: str, gens: dict = gens) -> Any:
            e = gens.get(g)
            if e is None:
                return "–"
            if "scores" not in e:
                return e.get("status", "–")
            planned = args.eval_seeds * (1 if g == "real" else args.sets)
            done = len(e["scores"])
            cut = f" ({done} of {planned} fits: time)" if done < planned else ""
            return f"{np.mean(e['scores']):.3f} ± {np.std(e['scores']):.3f}{cut}"

        paper = PAPER.get(name)
        metric = "R2" if cell.get("task") == "regression" else "macro-F1"
        rows.append([name, metric, cellstr("real"), cellstr("kbformer"), cellstr("smote"), cellstr("ctgan"),
                     cellstr("tvae"), f"{paper[0]:.3f} ± {paper[1]:.3f}" if paper else "–"])
        for g, e in gens.items():
            if g != "real" and "c2st_auc" in e:
                q = e["quality"]
                fidelity.append([name, g, e["c2st_auc"], e["share_closer_than_holdout_median"], e["exact_copies"],
                                 q.get("Column Shapes", "–") if isinstance(q, dict) else q,
                                 q.get("Column Pair Trends", "–") if isinstance(q, dict) else "–"])
    payload = {
        "experiment": "paper_tabular", "seeds": [args.seed],
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "metrics": {"datasets": cells, "machine": platform.machine()},
        "tables": [
            {"name": "utility", "caption": f"ML efficiency on the real test split: {args.sets} synthetic sets x "
                                           f"{args.eval_seeds} evaluator seeds (mean ± std)",
             "columns": ["dataset", "metric", "real", "KBFormer", "SMOTE", "CTGAN", "TVAE", "paper KBFormer"],
             "rows": rows},
            {"name": "fidelity", "caption": "fidelity and privacy of the first synthetic set",
             "columns": ["dataset", "generator", "C2ST AUC", "share closer than hold-out", "exact copies",
                         "column shapes", "pair trends"],
             "rows": fidelity, "formats": {"C2ST AUC": ".3f", "share closer than hold-out": ".3f",
                                           "exact copies": ".3f", "column shapes": ".3f", "pair trends": ".3f"}},
        ],
    }
    tmp = args.out / "record.json.tmp"
    tmp.write_text(json.dumps(payload, indent=1, default=str))
    os.replace(tmp, args.out / "record.json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``entity-diffusion paper-tabular``."""
    p.add_argument("--data", default="auto", help="folder holding tabular/ and tabular_tabsyn/ (auto: $ENTITY_DIFFUSION_DATA, shared/data, ../shared/data, ../../shared/data)")
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated dataset names")
    p.add_argument("--generators", default="kbformer,smote,ctgan,tvae")
    p.add_argument("--sets", type=int, default=5, help="synthetic sets per generator")
    p.add_argument("--eval-seeds", type=int, default=10, help="evaluator seeds per set")
    p.add_argument("--eval-iterations", type=int, default=2000, help="evaluator boosting rounds (early stopping 50)")
    p.add_argument("--eval-threads", type=int, default=3)
    p.add_argument("--steps", type=int, default=4000, help="KBFormer steps (paper base config)")
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--fit-seconds", type=float, default=60.0, help="cap per KBFormer fit")
    p.add_argument("--sample-batch", type=int, default=8192)
    p.add_argument("--gan-epochs", type=int, default=300)
    p.add_argument("--max-train", type=int, default=0, help="subsample the train split (0 = all rows)")
    p.add_argument("--max-eval", type=int, default=0, help="subsample val and test (0 = all rows)")
    p.add_argument("--max-minutes", type=float, default=7.0, help="stop starting new work after this")
    p.add_argument("--smoke", action="store_true", help="seconds-sized CPU run (CI)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)


def apply_smoke(args: argparse.Namespace) -> None:
    """The CI size: one small dataset, tiny model, 2 sets x 2 seeds, 60 evaluator rounds."""
    if args.smoke:
        if args.datasets == ",".join(DATASETS):
            args.datasets = "abalone"
        if args.generators == "kbformer,smote,ctgan,tvae":
            args.generators = "kbformer,smote"
        args.sets, args.eval_seeds = 2, 2
        args.steps, args.batch_size, args.d_model, args.eval_every, args.eval_iterations = 20, 128, 16, 10, 60
        args.max_train, args.max_eval, args.fit_seconds, args.max_minutes, args.eval_threads = 300, 300, 10, 2, 1
