"""Interpretability control: the same network trained on SEMF-generated targets (no shell structure).

"From Neurons to Neutrons" reads parity and shell structure off the Z/N embeddings. If the network
only learned the liquid drop, a model trained on data *generated* by a liquid drop (with its pairing
term, so parity may appear, but no shells) would show the same structure. This module trains both
on the same (Z, N, task) rows, time-boxed, and measures in each embedding (a) how well one PC
separates even from odd and (b) how much of the leading PCs' variation is explained by shell
features (distance to the nearest magic number, shell index) beyond a smooth cubic + parity trend.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from nuclr._dataset import TASK_COLUMNS, TaskRows
from nuclr._interpret import MAGIC, embedding_pca
from nuclr._train import TrainConfig, Trained


def semf_control_rows(rows: TaskRows) -> TaskRows:
    """``rows`` with every target replaced by a liquid drop fitted to its binding rows.

    Mass-derived tasks take the SEMF's own S and Q values (from its mass surface); the charge radius
    takes the three-term formula fitted to the radius rows; other tasks keep their values.
    """
    from nuclr._evaluate import radius_features
    from nuclr._physics import SemfFit, semf_grid_observables

    if "binding" not in rows.tasks:
        raise ValueError("the SEMF control needs binding rows to fit the liquid drop")
    names = np.array([rows.tasks[t] for t in rows.task])
    b = names == "binding"
    semf = SemfFit.fit(rows.z[b], rows.n[b], rows.value[b])
    obs = semf_grid_observables(semf, rows.z, rows.n)
    value = rows.value.copy()
    for task in set(names.tolist()):
        sel = names == task
        col = TASK_COLUMNS[task][0]
        if col in obs:
            value[sel] = obs[col][sel]
        elif task == "charge_radius":
            coef, *_ = np.linalg.lstsq(radius_features(rows.z[sel], rows.n[sel]), rows.value[sel], rcond=None)
            value[sel] = radius_features(rows.z[sel], rows.n[sel]) @ coef
    if not np.all(np.isfinite(value)):
        raise ValueError("SEMF control targets contain NaN (a partner nucleus outside the grid)")
    return TaskRows(rows.z, rows.n, rows.task, value, rows.prior, rows.per_row_scale, rows.tasks, rows.nucleus_id)


def shell_signal(index: np.ndarray, components: np.ndarray, weights: np.ndarray) -> float:
    """Variance-weighted gain in R^2 of the PCs when shell features join a cubic + parity trend."""
    x = np.asarray(index, dtype=float)
    xs = (x - x.mean()) / x.std()
    base = np.stack([np.ones_like(xs), xs, xs**2, xs**3, (np.asarray(index) % 2).astype(float)], 1)
    magic = np.array(MAGIC, dtype=float)
    dist = np.min(np.abs(x[:, None] - magic[None]), axis=1)
    shell_index = (x[:, None] >= magic[None]).sum(1).astype(float)
    full = np.concatenate([base, dist[:, None], np.eye(int(shell_index.max()) + 1)[shell_index.astype(int)][:, 1:]], 1)
    gains = []
    for j in range(components.shape[1]):
        y = components[:, j]
        r2 = []
        for feats in (base, full):
            coef, *_ = np.linalg.lstsq(feats, y, rcond=None)
            r2.append(1 - np.mean((feats @ coef - y) ** 2) / np.var(y))
        gains.append(r2[1] - r2[0])
    w = np.asarray(weights[: len(gains)], dtype=float)
    return float(np.sum(w * np.array(gains)) / np.sum(w))


def embedding_structure(model: Trained) -> dict:
    """Parity accuracy and shell signal of the Z and N embeddings (rows the data trains)."""
    out = {}
    for which, lo, hi in (("z", model.config.min_z, 100), ("n", model.config.min_n, 150)):
        res = embedding_pca(model, which, lo=lo, hi=hi)
        out[which] = {"parity_accuracy": res["parity_accuracy_best_single_pc"],
                      "explained_variance_ratio": res["explained_variance_ratio"].tolist(),
                      "shell_r2_gain": shell_signal(res["index"], res["components"], res["explained_variance_ratio"])}
    return out


def control_run(out: Path, *, config: TrainConfig, seed: int = 0, device: str = "cpu", minutes: float = 6.0,
                log=print, figures: bool = True) -> dict:
    """Train the real and the SEMF-control model (half the budget each) and compare their embeddings."""
    from nuclr._data import ground_states
    from nuclr._dataset import build_rows
    from nuclr._paper import time_boxed_train

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    deadline = t_start + minutes * 60.0 - 30.0
    rows = build_rows(ground_states(2020), config.tasks, min_z=config.min_z, min_n=config.min_n,
                      residual_table=config.residual_table)
    variants = {"real data": rows, "SEMF-generated control": semf_control_rows(rows)}
    results: dict = {}

    def payload() -> dict:
        table_rows = [[name, r["epochs"], r["train_binding_rms_kev"], r["structure"]["z"]["parity_accuracy"],
                       r["structure"]["n"]["parity_accuracy"], r["structure"]["z"]["shell_r2_gain"],
                       r["structure"]["n"]["shell_r2_gain"]] for name, r in results.items()]
        return {"experiment": "nuclr_control", "seeds": [seed],
                "config": {**config.to_dict(), "device": device, "minutes": minutes},
                "metrics": {"models": results, "finished": list(results)},
                "tables": [{"name": "control",
                            "caption": f"Embedding structure, width {config.width} x depth {config.depth}, all measured "
                                       "nuclei; shell gain = R^2 added by shell features beyond a cubic + parity trend "
                                       "(variance-weighted over PCs 1-4); parity = best single-PC even/odd accuracy",
                            "columns": ["training data", "epochs", "train binding RMS (keV)", "Z parity", "N parity",
                                        "Z shell gain", "N shell gain"],
                            "rows": table_rows,
                            "formats": {"train binding RMS (keV)": ".0f", "Z parity": ".2f", "N parity": ".2f",
                                        "Z shell gain": ".3f", "N shell gain": ".3f"}}]}

    for i, (name, r) in enumerate(variants.items()):
        stop = t_start + (deadline - t_start) * (i + 1) / len(variants)
        model, cfg = time_boxed_train(r, config, seed=seed, device=device, stop_at_epoch_s=stop)
        pred = model.predict_rows(r.z, r.n, r.task)
        kb = r.tasks.index("binding")
        sel = r.task == kb
        results[name] = {"epochs": cfg.epochs, "structure": embedding_structure(model),
                         "train_binding_rms_kev": float(np.sqrt(np.mean((pred[sel] - r.value[sel]) ** 2)))}
        sub = out / ("real" if name == "real data" else "semf_control")
        model.save(sub)
        from nuclr._interpret import interpret

        interpret(model, sub, seed=seed, symbolic=False, figures=figures)  # helix / parity / hidden-PCA figures and probes
        tmp = out / "record.json.tmp"
        tmp.write_text(json.dumps(payload(), indent=1))
        os.replace(tmp, out / "record.json")
        log(f"{name}: {cfg.epochs} epochs, structure {results[name]['structure']}")
    return payload()


CONTROL_SMOKE = replace(TrainConfig(), width=16, depth=1, epochs=50_000)
