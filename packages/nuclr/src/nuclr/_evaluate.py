"""The three evaluation protocols, each beside the fitted SEMF and the shipped theory tables."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nuclr._data import ground_states
from nuclr._dataset import TASK_COLUMNS, TaskRows, build_rows
from nuclr._physics import DEFAULT_THEORY, SemfFit, read_theory_table, semf_grid_observables
from nuclr._train import TrainConfig, Trained, train

PROTOCOLS = ("random", "nucleus-kfold", "ame2016-to-2020")


@dataclass
class Split:
    """One train/test split of rows (the test rows carry the targets the metrics use)."""

    train: TaskRows
    test: TaskRows
    name: str
    extra: dict = field(default_factory=dict)


def rms(pred: np.ndarray, true: np.ndarray) -> float:
    ok = np.isfinite(pred) & np.isfinite(true)
    if not ok.any():
        return float("nan")
    return float(np.sqrt(np.mean((pred[ok] - true[ok]) ** 2)))


def radius_features(z: np.ndarray, n: np.ndarray) -> np.ndarray:
    """r = r0 A^(1/3) + b (N - Z) A^(-2/3) + c A^(-1/3): linear in (r0, b, c)."""
    a = (np.asarray(z) + np.asarray(n)).astype(float)
    return np.stack([a ** (1 / 3), (np.asarray(n) - np.asarray(z)) * a ** (-2 / 3), a ** (-1 / 3)], axis=1)


def baseline_predictions(
    train_rows: TaskRows, test: TaskRows, theory: tuple[str, ...], extra_tables: dict | None = None
) -> dict[str, np.ndarray]:
    """Physical predictions of each baseline on the test rows (NaN where a baseline has no value)."""
    out: dict[str, np.ndarray] = {}
    tasks = test.tasks
    names = np.array([tasks[i] for i in test.task])
    # fitted liquid drop (+ three-term radius formula), fitted on the training rows only
    if "binding" in tasks:
        b = train_rows.task == tasks.index("binding")
        semf = SemfFit.fit(train_rows.z[b], train_rows.n[b], train_rows.value[b])
        obs = semf_grid_observables(semf, test.z, test.n)
        pred = np.full(len(test), np.nan)
        for task in set(names):
            if task in ("charge_radius", "log10_half_life"):
                continue
            sel = names == task
            pred[sel] = obs[TASK_COLUMNS[task][0]][sel]
        if "charge_radius" in tasks:
            r = train_rows.task == tasks.index("charge_radius")
            if r.any():
                coef, *_ = np.linalg.lstsq(radius_features(train_rows.z[r], train_rows.n[r]), train_rows.value[r], rcond=None)
                sel = names == "charge_radius"
                pred[sel] = radius_features(test.z[sel], test.n[sel]) @ coef
        out["SEMF (fitted)"] = pred
    tables = {name: read_theory_table(name) for name in theory}
    tables.update(extra_tables or {})
    for name, table in tables.items():
        pred = np.full(len(test), np.nan)
        for task in set(names):
            if task == "log10_half_life":
                continue
            sel = names == task
            pred[sel] = table.lookup(test.z[sel], test.n[sel], TASK_COLUMNS[task][0])
        out[name] = pred
    return out


def per_task_rms(rows: TaskRows, pred: np.ndarray) -> dict[str, dict[str, float]]:
    res = {}
    for k, task in enumerate(rows.tasks):
        sel = rows.task == k
        if sel.any():
            ok = sel & np.isfinite(pred)
            res[task] = {"rms": rms(pred[sel], rows.value[sel]), "n": int(ok.sum()), "n_total": int(sel.sum()),
                         "unit": TASK_COLUMNS[task][2]}
    return res


def drop_unseen(split: Split) -> Split:
    """Remove test rows whose Z or N never occurs in the training rows.

    An embedding row that no training example touches keeps its random initialisation, so such a
    prediction is meaningless (NuCLR v1 resampled its folds until every Z and N was in training).
    The number of removed test nuclei is recorded in ``split.extra["n_unseen_test_nuclei"]``.
    """
    zs, ns = set(split.train.z.tolist()), set(split.train.n.tolist())
    seen = np.array([(a in zs) and (b in ns) for a, b in zip(split.test.z.tolist(), split.test.n.tolist())], bool)
    extra = dict(split.extra)
    extra["n_unseen_test_nuclei"] = int(np.unique(split.test.nucleus_id[~seen]).size)
    return Split(split.train, split.test.subset(seen), split.name, extra)


def make_splits(protocol: str, config: TrainConfig, *, k: int, seed: int, test_frac: float = 0.2) -> list[Split]:
    """Train/test splits of a protocol; ``k`` folds (random: per-row folds; nucleus-kfold: per nucleus).

    Test rows of nuclei whose Z or N value is absent from the training rows are removed
    (:func:`drop_unseen`) and counted.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    kw = dict(min_z=config.min_z, min_n=config.min_n, measured_only=config.measured_only,
              residual_table=config.residual_table)
    rng = np.random.default_rng(seed)
    if protocol == "ame2016-to-2020":
        old = build_rows(ground_states(2016), config.tasks, **kw)
        new = build_rows(ground_states(2020), config.tasks, **kw)
        f16 = ground_states(2016, radii=False)
        known = set(zip(f16.z[f16.mass_measured].tolist(), f16.n[f16.mass_measured].tolist()))
        is_new = np.array([(int(a), int(b)) not in known for a, b in zip(new.z, new.n)])
        return [drop_unseen(Split(old, new.subset(is_new), "ame2016-to-2020",
                                  {"n_new_nuclei": int(np.unique(new.nucleus_id[is_new]).size)}))]
    rows = build_rows(ground_states(2020), config.tasks, **kw)
    if protocol == "random":
        fold = rng.permutation(np.arange(len(rows)) % k)
    else:
        nuclei = np.unique(rows.nucleus_id)
        fold_of = dict(zip(rng.permutation(nuclei).tolist(), np.arange(nuclei.size) % k))
        fold = np.array([fold_of[i] for i in rows.nucleus_id.tolist()])
    return [drop_unseen(Split(rows.subset(fold != f), rows.subset(fold == f), f"{protocol}-fold{f}")) for f in range(k)]


def _fit_predict(split: Split, config: TrainConfig, seed: int, device: str, quiet: bool) -> np.ndarray:
    """Worker: train on one split, return the test predictions (runs in a subprocess when workers > 1)."""
    import torch

    torch.set_num_threads(1)
    model = train(split.train, config, seed=seed, device=device, quiet=quiet)
    return model.predict_rows(split.test.z, split.test.n, split.test.task)


def leakage_curve(train_rows: TaskRows, test: TaskRows, pred: np.ndarray) -> list[dict]:
    """Held-out binding RMS grouped by how many other tasks of the same nucleus were in training."""
    if "binding" not in test.tasks:
        return []
    kb = test.tasks.index("binding")
    seen: dict[int, int] = {}
    for nid in train_rows.nucleus_id.tolist():
        seen[nid] = seen.get(nid, 0) + 1
    sel = np.flatnonzero(test.task == kb)
    counts = np.array([seen.get(int(test.nucleus_id[i]), 0) for i in sel])
    curve = []
    for c in np.unique(counts):
        m = sel[counts == c]
        curve.append({"other_tasks_in_train": int(c), "n": int(m.size), "binding_rms_kev": rms(pred[m], test.value[m])})
    return curve


def evaluate(
    protocol: str,
    config: TrainConfig,
    *,
    k: int = 5,
    folds_to_run: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    theory: tuple[str, ...] = DEFAULT_THEORY,
    extra_tables: dict | None = None,
    quiet: bool = True,
    workers: int = 1,
) -> dict:
    """Train on each split, pool the out-of-fold predictions and report RMS per task beside baselines.

    ``workers > 1`` trains the folds in parallel subprocesses (useful on a GPU, whose small-model
    training is bound by kernel launches); the trained models are then not returned.
    """
    splits = make_splits(protocol, config, k=k, seed=seed)
    if folds_to_run is not None:
        splits = splits[:folds_to_run]
    preds, bases, tests, folds, curves = [], [], [], [], []
    models: list[Trained] = []
    if workers > 1 and len(splits) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(workers, len(splits)), mp_context=mp.get_context("spawn")) as pool:
            fold_preds = list(pool.map(_fit_predict, splits, [config] * len(splits),
                                       [seed + i for i in range(len(splits))], [device] * len(splits),
                                       [True] * len(splits)))
    else:
        fold_preds = []
        for i, split in enumerate(splits):
            model = train(split.train, config, seed=seed + i, device=device, quiet=quiet)
            models.append(model)
            fold_preds.append(model.predict_rows(split.test.z, split.test.n, split.test.task))
    for split, p in zip(splits, fold_preds):
        preds.append(p)
        bases.append(baseline_predictions(split.train, split.test, theory, extra_tables))
        tests.append(split.test)
        folds.append({"name": split.name, "n_train_rows": len(split.train), "n_test_rows": len(split.test),
                      "model": per_task_rms(split.test, p), **split.extra})
        if protocol == "random":
            curves.extend(leakage_curve(split.train, split.test, p))
    test = tests[0]
    for t in tests[1:]:
        test = TaskRows(*(np.concatenate([getattr(test, f), getattr(t, f)]) for f in ("z", "n", "task", "value", "prior", "per_row_scale")),
                        test.tasks, np.concatenate([test.nucleus_id, t.nucleus_id]))
    pred = np.concatenate(preds)
    result = {
        "protocol": protocol,
        "leaky": protocol == "random",
        "k": k,
        "folds_run": len(splits),
        "seed": seed,
        "config": config.to_dict(),
        "model": per_task_rms(test, pred),
        "baselines": {name: per_task_rms(test, np.concatenate([b[name] for b in bases])) for name in bases[0]},
        "folds": folds,
    }
    if curves:
        merged: dict[int, list] = {}
        for c in curves:
            merged.setdefault(c["other_tasks_in_train"], []).append(c)
        result["leakage_curve"] = [
            {"other_tasks_in_train": key, "n": sum(c["n"] for c in cs),
             "binding_rms_kev": float(np.sqrt(sum(c["n"] * c["binding_rms_kev"] ** 2 for c in cs) / sum(c["n"] for c in cs)))}
            for key, cs in sorted(merged.items())
        ]
    result["_models"] = models  # not serialised; callers pop it
    return result


def metrics_markdown(result: dict) -> str:
    """Markdown table: rows = model and baselines, columns = tasks (RMS, keV or fm)."""
    tasks = list(result["model"])
    head = "| model | " + " | ".join(f"{t} ({result['model'][t]['unit']})" for t in tasks) + " |"
    lines = [head, "|---" * (len(tasks) + 1) + "|"]
    label = "NuCLR" + (" (residual to " + result["config"]["residual_table"] + ")" if result["config"].get("residual_table") else "")

    def fmt(entry: dict | None) -> str:
        if entry is None or not np.isfinite(entry["rms"]):
            return "–"
        v = entry["rms"]
        return f"{v:.4f}" if entry["unit"] == "fm" else f"{v:.0f}"

    lines.append(f"| **{label}** | " + " | ".join(fmt(result["model"][t]) for t in tasks) + " |")
    for name, res in result["baselines"].items():
        lines.append(f"| {name} | " + " | ".join(fmt(res.get(t)) for t in tasks) + " |")
    return "\n".join(lines)
