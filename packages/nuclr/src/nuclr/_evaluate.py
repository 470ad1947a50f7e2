"""Evaluation protocols, each beside the fitted SEMF and the shipped theory tables.

Protocols:

- ``mass-closed`` (the default nucleus-level protocol; ``nucleus-kfold`` is an alias): nuclei are
  split into k folds; a training row is kept only if neither its own nucleus nor any nucleus whose
  mass enters its target (e.g. B(Z, N-1) for S_n(Z, N)) is held out. No held-out mass can be
  rebuilt from the training rows.
- ``nucleus-leaky-derived``: the 0.1 nucleus-level split: every row *of* a held-out nucleus is
  removed, but neighbours' derived observables (which contain the held-out mass) stay in training.
  Kept for comparison with the papers; it leaks.
- ``random``: per (nucleus, task) row folds (the NuCLR paper's split); leaks more.
- ``ame2016-to-2020``: train on what NUBASE2016 measured, test on nuclei first measured in 2020.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nuclr._data import ground_states
from nuclr._dataset import TASK_COLUMNS, TaskRows, build_rows, mass_partners
from nuclr._physics import DEFAULT_THEORY, SemfFit, read_theory_table, semf_grid_observables
from nuclr._train import TrainConfig, Trained, train

PROTOCOLS = ("mass-closed", "nucleus-leaky-derived", "random", "ame2016-to-2020")
PROTOCOL_ALIASES = {"nucleus-kfold": "mass-closed"}
LEAKY_PROTOCOLS = ("nucleus-leaky-derived", "random")

# AME edition each theory table was fitted to (its parameters have seen those masses).
FIT_DATA_YEAR = {"FRDM1995": 1993, "DZ1995": 1993, "KTUY05": 2003, "HFB14": 2003, "HFB24": 2012, "HFB26": 2012,
                 "WS3": 2003, "WS4": 2012, "WS4+RBF": 2012, "BSkG1": 2016, "BSkG2": 2016, "BSkG3": 2020,
                 "BSkG4": 2020}


@dataclass
class Split:
    """One train/test split of rows (the test rows carry the targets the metrics use)."""

    train: TaskRows
    test: TaskRows
    name: str
    extra: dict = field(default_factory=dict)


def rms(pred: np.ndarray, true: np.ndarray) -> float:
    """Root-mean-square difference; NaN or inf in either input is an error (mask explicitly first)."""
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"rms: shapes differ, {pred.shape} vs {true.shape}")
    bad = ~(np.isfinite(pred) & np.isfinite(true))
    if bad.any():
        raise ValueError(f"rms: {int(bad.sum())} of {bad.size} values are NaN or inf; select the rows to score first")
    if pred.size == 0:
        raise ValueError("rms: no values")
    return float(np.sqrt(np.mean((pred - true) ** 2)))


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
    """RMS per task over the rows where ``pred`` is finite; ``n`` scored, ``n_missing`` not scored."""
    res = {}
    for k, task in enumerate(rows.tasks):
        sel = rows.task == k
        if sel.any():
            ok = sel & np.isfinite(pred)
            res[task] = {"rms": rms(pred[ok], rows.value[ok]) if ok.any() else float("nan"), "n": int(ok.sum()),
                         "n_missing": int(sel.sum() - ok.sum()), "n_total": int(sel.sum()),
                         "unit": TASK_COLUMNS[task][2]}
    return res


def drop_unseen(split: Split) -> Split:
    """Remove test rows whose Z or N never occurs in the training rows.

    An embedding row that no training example touches keeps its random initialisation, so such a
    prediction is meaningless (NuCLR v1 resampled its folds until every Z and N was in training).
    The removed nuclei are listed in ``split.extra["unseen_test_nuclei"]`` ([Z, N] pairs) and
    counted in ``split.extra["n_unseen_test_nuclei"]``.
    """
    zs, ns = set(split.train.z.tolist()), set(split.train.n.tolist())
    seen = np.array([(a in zs) and (b in ns) for a, b in zip(split.test.z.tolist(), split.test.n.tolist())], bool)
    extra = dict(split.extra)
    dropped = sorted({(int(a), int(b)) for a, b in zip(split.test.z[~seen], split.test.n[~seen])})
    extra["n_unseen_test_nuclei"] = len(dropped)
    extra["unseen_test_nuclei"] = [list(p) for p in dropped]
    return Split(split.train, split.test.subset(seen), split.name, extra)


def closure_mask(rows: TaskRows, held_out: set[tuple[int, int]]) -> np.ndarray:
    """True for rows none of whose masses (nor their own nucleus) is in ``held_out``."""
    keep = np.ones(len(rows), bool)
    z, n = rows.z.tolist(), rows.n.tolist()
    for k, task in enumerate(rows.tasks):
        sel = np.flatnonzero(rows.task == k)
        offsets = {(0, 0), *mass_partners(task)}
        for i in sel.tolist():
            if any((z[i] + dz, n[i] + dn) in held_out for dz, dn in offsets):
                keep[i] = False
    return keep


def canonical_protocol(protocol: str) -> str:
    """Resolve aliases (``nucleus-kfold`` -> ``mass-closed``); a clear error for unknown names."""
    protocol = PROTOCOL_ALIASES.get(protocol, protocol)
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS} (or {sorted(PROTOCOL_ALIASES)}), got {protocol!r}")
    return protocol


def make_splits(protocol: str, config: TrainConfig, *, k: int, seed: int, test_frac: float = 0.2) -> list[Split]:
    """Train/test splits of a protocol; ``k`` folds (random: per-row folds; others: per nucleus).

    Each split's ``extra["held_out"]`` lists the held-out nuclei. Test rows of nuclei whose Z or N
    value is absent from the training rows are removed (:func:`drop_unseen`) and listed.
    """
    protocol = canonical_protocol(protocol)
    kw = dict(min_z=config.min_z, min_n=config.min_n, measured_only=config.measured_only,
              residual_table=config.residual_table)
    rng = np.random.default_rng(seed)
    if protocol == "ame2016-to-2020":
        old = build_rows(ground_states(2016), config.tasks, **kw)
        new = build_rows(ground_states(2020), config.tasks, **kw)
        f16 = ground_states(2016, radii=False)
        known = set(zip(f16.z[f16.mass_measured].tolist(), f16.n[f16.mass_measured].tolist()))
        is_new = np.array([(int(a), int(b)) not in known for a, b in zip(new.z, new.n)])
        held = {(int(a), int(b)) for a, b in zip(new.z[is_new], new.n[is_new])}
        # closed by construction (a 2016 row needs every mass measured in 2016); the mask makes sure
        train_rows = old.subset(closure_mask(old, held))
        return [drop_unseen(Split(train_rows, new.subset(is_new), "ame2016-to-2020",
                                  {"n_new_nuclei": len(held), "held_out": sorted(held)}))]
    rows = build_rows(ground_states(2020), config.tasks, **kw)
    if protocol == "random":
        fold = rng.permutation(np.arange(len(rows)) % k)
        return [drop_unseen(Split(rows.subset(fold != f), rows.subset(fold == f), f"random-fold{f}",
                                  {"held_out": []})) for f in range(k)]
    nuclei = np.unique(rows.nucleus_id)
    fold_of = dict(zip(rng.permutation(nuclei).tolist(), np.arange(nuclei.size) % k))
    fold = np.array([fold_of[i] for i in rows.nucleus_id.tolist()])
    splits = []
    for f in range(k):
        test = rows.subset(fold == f)
        held = {(int(a), int(b)) for a, b in zip(test.z, test.n)}
        keep = fold != f
        if protocol == "mass-closed":
            keep &= closure_mask(rows, held)
        splits.append(drop_unseen(Split(rows.subset(keep), test, f"{protocol}-fold{f}", {"held_out": sorted(held)})))
    return splits


def write_split(path: Path, split: Split) -> None:
    """``{"held_out": [[Z, N], ...], "train_rows": [[task, Z, N], ...]}`` (task names), atomically."""
    tr = split.train
    obj = {"held_out": [list(p) for p in split.extra.get("held_out", [])],
           "train_rows": [[tr.tasks[t], int(a), int(b)] for t, a, b in zip(tr.task.tolist(), tr.z.tolist(), tr.n.tolist())]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def _fit_predict(split: Split, config: TrainConfig, seed: int, device: str, quiet: bool,
                 save_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Worker: train on one split; return (test predictions, predictions via the mass surface)."""
    import torch

    torch.set_num_threads(1)
    model = train(split.train, config, seed=seed, device=device, quiet=quiet)
    if save_dir is not None:
        model.save(Path(save_dir))
    t = split.test
    return model.predict_rows(t.z, t.n, t.task), model.predict_rows(t.z, t.n, t.task, via="surface")


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


def _bootstrap_weights(groups: np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group index per row, row count per group, [n_boot, n_groups] multiplicities of resampled groups)."""
    uniq, inv = np.unique(groups, return_inverse=True)
    cnt = np.bincount(inv, minlength=uniq.size).astype(np.float64)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, uniq.size, size=(n_boot, uniq.size))
    flat = (np.arange(n_boot)[:, None] * uniq.size + pick).ravel()
    w = np.bincount(flat, minlength=n_boot * uniq.size).reshape(n_boot, uniq.size).astype(np.float64)
    return inv, cnt, w


def bootstrap_rms(err: np.ndarray, groups: np.ndarray, *, n_boot: int = 1000, seed: int = 0,
                  _weights: tuple | None = None) -> np.ndarray:
    """Bootstrap replicates of the RMS over rows resampled by group (nucleus), shape [n_boot, S].

    ``err`` is [rows] or [S, rows] (one row of errors per seed or per model); the same resampled
    nuclei are used for every row of ``err`` so the seeds' replicates can be averaged.
    """
    err = np.atleast_2d(np.asarray(err, dtype=np.float64))
    if not np.all(np.isfinite(err)):
        raise ValueError("bootstrap_rms: errors contain NaN or inf")
    inv, cnt, w = _weights if _weights is not None else _bootstrap_weights(groups, n_boot, seed)
    sq = np.stack([np.bincount(inv, weights=e**2, minlength=cnt.size) for e in err])
    return np.sqrt((w @ sq.T) / (w @ cnt)[:, None])


def summarize(test: TaskRows, model_preds: np.ndarray, baselines: dict[str, np.ndarray], *,
              min_coverage: float = 0.5, n_boot: int = 1000, seed: int = 0,
              in_sample: dict[str, bool] | None = None) -> dict:
    """Score the model (one prediction row per seed) and the baselines on the same rows.

    For each task the scored rows are the rows where every seed's prediction and every baseline
    that covers at least ``min_coverage`` of the task's rows are finite (the intersection); a
    baseline below that coverage is listed with ``rms = None``. Each entry has ``rms`` (model:
    mean over seeds), ``ci95`` (bootstrap over nuclei, 2.5/97.5 percentiles) and ``n``.
    """
    model_preds = np.atleast_2d(model_preds)
    in_sample = in_sample or {}
    out: dict = {"model": {}, "baselines": {name: {} for name in baselines}, "scored_rows": {}}
    for k, task in enumerate(test.tasks):
        sel = test.task == k
        if not sel.any():
            continue
        unit = TASK_COLUMNS[task][2]
        common = sel & np.all(np.isfinite(model_preds), axis=0)
        n_model = int(common.sum())
        comparators = []
        for name, p in baselines.items():
            cover = float(np.isfinite(p[sel]).mean())
            if cover >= min_coverage:
                comparators.append(name)
                common &= np.isfinite(p)
        idx = np.flatnonzero(common)
        out["scored_rows"][task] = {"n": int(idx.size), "n_task_rows": int(sel.sum()),
                                    "n_model_finite": n_model, "comparators": comparators}
        if not idx.size:
            continue
        truth = test.value[idx]
        groups = test.nucleus_id[idx]
        err = model_preds[:, idx] - truth
        per_seed = np.sqrt(np.mean(err**2, axis=1))
        weights = _bootstrap_weights(groups, n_boot, seed)
        boot = bootstrap_rms(err, groups, _weights=weights).mean(axis=1)
        out["model"][task] = {"rms": float(per_seed.mean()), "per_seed": per_seed.tolist(),
                              "ci95": np.percentile(boot, [2.5, 97.5]).tolist(), "n": int(idx.size), "unit": unit}
        for name, p in baselines.items():
            if name not in comparators:
                out["baselines"][name][task] = {"rms": None, "n": int(np.isfinite(p[sel]).sum()), "unit": unit,
                                                "note": f"covers < {min_coverage:.0%} of the rows"}
                continue
            e = p[idx] - truth
            b = bootstrap_rms(e, groups, _weights=weights)[:, 0]
            out["baselines"][name][task] = {"rms": rms(p[idx], truth), "ci95": np.percentile(b, [2.5, 97.5]).tolist(),
                                            "n": int(idx.size), "unit": unit,
                                            "fitted_to_evaluation_data": bool(in_sample.get(name, False))}
    return out


def in_sample_baselines(protocol: str, names: list[str]) -> dict[str, bool]:
    """Which baselines were fitted to data that contain the evaluation nuclei.

    Theory tables fitted to an AME edition hold most k-fold test nuclei in their fit; on the
    AME2016 -> 2020 nuclei only tables fitted to AME2020 (BSkG3/4) have seen them. The SEMF is
    refitted on each split's training rows (never in-sample).
    """
    out = {}
    for name in names:
        year = FIT_DATA_YEAR.get(name)
        if year is None:
            out[name] = False
        elif protocol == "ame2016-to-2020":
            out[name] = year >= 2020
        else:
            out[name] = True
    return out


def evaluate(
    protocol: str,
    config: TrainConfig,
    *,
    k: int = 5,
    folds_to_run: int | None = None,
    seed: int = 0,
    seeds: tuple[int, ...] | None = None,
    device: str = "cpu",
    theory: tuple[str, ...] = DEFAULT_THEORY,
    extra_tables: dict | None = None,
    quiet: bool = True,
    workers: int = 1,
    out_dir: Path | None = None,
    save_models: bool = False,
    n_boot: int = 1000,
    log=None,
) -> dict:
    """Train on each split for every seed, pool out-of-fold predictions, score beside the baselines.

    The folds are drawn once (from ``seed``); ``seeds`` (default ``(seed,)``) are the training
    seeds (fold f of seed s trains with seed ``1000 * s + f``). With ``out_dir`` the splits are
    written to ``out_dir/splits/fold_K.json`` and, with ``save_models``, every model to
    ``out_dir/models/seed{S}_fold{K}/``. ``workers > 1`` trains in parallel subprocesses; the
    trained models are then not returned in ``result["_models"]``.
    """
    protocol = canonical_protocol(protocol)
    seeds = (seed,) if seeds is None else tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    say = log or (lambda msg: None)
    splits = make_splits(protocol, config, k=k, seed=seed)
    if folds_to_run is not None:
        splits = splits[:folds_to_run]
    if out_dir is not None:
        for f, split in enumerate(splits):
            write_split(Path(out_dir) / "splits" / f"fold_{f}.json", split)
    jobs = [(s, f) for s in seeds for f in range(len(splits))]

    def save_dir(s: int, f: int) -> str | None:
        return str(Path(out_dir) / "models" / f"seed{s}_fold{f}") if (save_models and out_dir is not None) else None

    models: list[Trained] = []
    outputs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool:
            futs = {pool.submit(_fit_predict, splits[f], config, 1000 * s + f, device, True, save_dir(s, f)): (s, f)
                    for s, f in jobs}
            for fut, key in futs.items():
                outputs[key] = fut.result()
                say(f"{protocol}: seed {key[0]} fold {key[1]} done")
    else:
        for s, f in jobs:
            split = splits[f]
            model = train(split.train, config, seed=1000 * s + f, device=device, quiet=quiet)
            if save_dir(s, f) is not None:
                model.save(Path(save_dir(s, f)))
            models.append(model)
            t = split.test
            outputs[(s, f)] = (model.predict_rows(t.z, t.n, t.task), model.predict_rows(t.z, t.n, t.task, via="surface"))
            say(f"{protocol}: seed {s} fold {f} done")
    tests = [sp.test for sp in splits]
    test = TaskRows(*(np.concatenate([getattr(t, f) for t in tests]) for f in ("z", "n", "task", "value", "prior", "per_row_scale")),
                    tests[0].tasks, np.concatenate([t.nucleus_id for t in tests]))
    pred = np.stack([np.concatenate([outputs[(s, f)][0] for f in range(len(splits))]) for s in seeds])
    pred_surface = np.stack([np.concatenate([outputs[(s, f)][1] for f in range(len(splits))]) for s in seeds])
    bases_per_fold = [baseline_predictions(sp.train, sp.test, theory, extra_tables) for sp in splits]
    bases = {name: np.concatenate([b[name] for b in bases_per_fold]) for name in bases_per_fold[0]}
    marks = in_sample_baselines(protocol, list(bases))
    summary = summarize(test, pred, bases, n_boot=n_boot, seed=seed, in_sample=marks)
    # a heads model read the other way (derived observables from its binding head)
    other_summary: dict = {"model": {}}
    if config.observables == "heads":
        other_summary = summarize(test, pred_surface, {}, n_boot=n_boot, seed=seed)
    # consistency, in every mode: RMS between each derived observable the model reports and the same
    # observable computed from the binding energies it reports (B(Z,N) - B(Z,N-1) for S_n, ...)
    consistency = {}
    for kk, task in enumerate(test.tasks):
        sel = (test.task == kk) & np.all(np.isfinite(pred), 0) & np.all(np.isfinite(pred_surface), 0)
        if task != "binding" and mass_partners(task) and sel.any():
            consistency[task] = float(np.mean([rms(pred[i][sel], pred_surface[i][sel]) for i in range(len(seeds))]))
    dropped = sorted({tuple(p) for sp in splits for p in sp.extra.get("unseen_test_nuclei", [])})
    folds = []
    for sp in splits:
        extra = {key: v for key, v in sp.extra.items() if key != "held_out"}
        folds.append({"name": sp.name, "n_train_rows": len(sp.train), "n_test_rows": len(sp.test),
                      "n_held_out_nuclei": len(sp.extra.get("held_out", [])), **extra})
    result = {
        "protocol": protocol,
        "leaky": protocol in LEAKY_PROTOCOLS,
        "k": k,
        "folds_run": len(splits),
        "seed": seed,
        "seeds": list(seeds),
        "config": config.to_dict(),
        "observables": config.observables,
        "model": summary["model"],
        "baselines": summary["baselines"],
        "scored_rows": summary["scored_rows"],
        "heads_model_read_via_surface": other_summary["model"],
        "consistency_rms": consistency,
        "heads_vs_surface_rms": consistency if config.observables == "heads" else {},
        "dropped_nuclei": [list(p) for p in dropped],
        "n_test_nuclei": int(np.unique(test.nucleus_id).size),
        "folds": folds,
    }
    if protocol == "random":
        curves = []
        for f, sp in enumerate(splits):
            curves.extend(leakage_curve(sp.train, sp.test, outputs[(seeds[0], f)][0]))
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


def format_rms_entry(entry: dict | None, ci: bool = True) -> str:
    """One table cell: RMS (0 decimals in keV, 4 in fm) [95 % interval], † when fitted in-sample."""
    if entry is None or entry.get("rms") is None or not np.isfinite(entry["rms"]):
        return "–"
    f = "{:.4f}" if entry["unit"] == "fm" else "{:.0f}"
    s = f.format(entry["rms"])
    if ci and "ci95" in entry:
        lo, hi = entry["ci95"]
        s += " [" + f.format(lo) + ", " + f.format(hi) + "]"
    if entry.get("fitted_to_evaluation_data"):
        s += " †"
    return s


def metrics_markdown(result: dict) -> str:
    """Markdown table: rows = model and baselines, columns = tasks (RMS [95 % CI], keV or fm),
    a row count per column, and the list of dropped nuclei."""
    tasks = list(result["model"])
    head = "| model | " + " | ".join(f"{t} ({result['model'][t]['unit']})" for t in tasks) + " |"
    lines = [head, "|---" * (len(tasks) + 1) + "|"]
    cfg = result.get("config", {})
    label = "NuCLR" + (" (residual to " + cfg["residual_table"] + ")" if cfg.get("residual_table") else "")
    if cfg.get("observables"):
        label += f", {cfg['observables']}"
    lines.append(f"| **{label}** | " + " | ".join(format_rms_entry(result["model"][t]) for t in tasks) + " |")
    for name, res in result["baselines"].items():
        lines.append(f"| {name} | " + " | ".join(format_rms_entry(res.get(t)) for t in tasks) + " |")
    lines.append("| rows scored | " + " | ".join(str(result["model"][t]["n"]) for t in tasks) + " |")
    notes = []
    if "seeds" in result:
        notes.append(f"RMS: mean over seeds {result['seeds']}; [95 % bootstrap interval over nuclei]; all columns on "
                     "the same rows (model and every baseline finite).")
    if any(e.get("fitted_to_evaluation_data") for r in result["baselines"].values() for e in r.values()):
        notes.append("† fitted to mass data that contain the evaluation nuclei (in-sample for this protocol).")
    if result.get("leaky"):
        notes.append(f"Protocol {result['protocol']} LEAKS derived observables of the held-out masses into training.")
    dropped = result.get("dropped_nuclei")
    if dropped is not None:
        notes.append(f"Dropped test nuclei (Z or N never in training): {len(dropped)}"
                     + (": " + ", ".join(f"({z},{n})" for z, n in dropped) if dropped else ""))
    return "\n".join(lines) + ("\n\n" + "\n".join(f"- {x}" for x in notes) if notes else "")
