"""Prediction table: every nucleus between the drip lines an ensemble of models reaches."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nuclr._data import ground_states
from nuclr._dataset import TASK_COLUMNS
from nuclr._train import Trained

if TYPE_CHECKING:
    import pandas as pd


def find_models(paths: list[Path]) -> list[Path]:
    """Model folders (holding ``model.json``) given folders or parents of folders (one level down)."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if (p / "model.json").exists():
            found.append(p)
            continue
        subs = sorted(q.parent for q in p.glob("*/model.json")) if p.is_dir() else []
        if not subs:
            raise FileNotFoundError(f"{p}: no model.json in it or in its subfolders (train or evaluate --save-models first)")
        found.extend(subs)
    return found


def _ensemble(models: list[Trained], z: np.ndarray, n: np.ndarray, tasks: tuple[str, ...]) -> dict[str, np.ndarray]:
    out = {}
    for k, task in enumerate(tasks):
        preds = np.stack([m.predict_rows(z, n, np.full(z.size, k)) for m in models])
        out[f"{task}_mean"] = preds.mean(0)
        out[f"{task}_sigma"] = preds.std(0, ddof=1) if len(models) > 1 else np.full(z.size, np.nan)
    return out


def _last_bound(s: np.ndarray, index: dict, z: int, start: int, direction: int) -> float:
    """Last N (walking in ``direction`` from ``start``) with S > 0 before the first S <= 0.

    If the start nucleus is already unbound, walk back inwards to the first bound one. NaN when
    the walk leaves the N range the models know (the drip line is not reached).
    """
    if (z, start) not in index:
        return float("nan")
    if s[index[(z, start)]] <= 0:
        n = start - direction
        while (z, n) in index:
            if s[index[(z, n)]] > 0:
                return float(n)
            n -= direction
        return float("nan")
    n = start
    while (z, n + direction) in index:
        if s[index[(z, n + direction)]] <= 0:
            return float(n)
        n += direction
    return float("nan")


def prediction_table(models: list[Trained], *, year: int = 2020) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(nuclei, drip lines) predicted by an ensemble (mean and sample sigma over its models).

    Nuclei: every (Z, N) whose Z and N occur in every model's training data and that lies between
    the proton and neutron drip lines (one- or two-nucleon separation energy of the ensemble mean
    still > 0, walking outwards from the lightest and heaviest nucleus of that Z in the NUBASE
    table). ``flag``: ``measured``, ``estimated`` (AME/NUBASE ``#`` value) or ``new``. Drip lines:
    the last bound N on each side; NaN where the walk ran past the N the models know ("not reached").
    """
    import pandas as pd

    if not models:
        raise ValueError("no models")
    tasks = models[0].config.tasks
    if any(m.config.tasks != tasks for m in models):
        raise ValueError("the models were trained on different task lists")
    if any(m.seen_z is None for m in models):
        raise ValueError("a model does not record its training nuclei (format 1 checkpoint); retrain it")
    seen_z = sorted(set.intersection(*(set(m.seen_z) for m in models)))
    seen_n = sorted(set.intersection(*(set(m.seen_n) for m in models)))
    for need in ("s_n", "s_2n", "s_p", "s_2p"):
        if need not in tasks:
            raise ValueError(f"the models lack the {need!r} task needed for the drip lines")
    frame = ground_states(year, radii=False)
    n_lo, n_hi = seen_n[0], seen_n[-1]
    zz, nn = np.meshgrid(np.array(seen_z), np.arange(n_lo, n_hi + 1), indexing="ij")
    zz, nn = zz.ravel(), nn.ravel()
    ok = np.isin(nn, seen_n)
    zz, nn = zz[ok], nn[ok]
    pred = _ensemble(models, zz, nn, tasks)
    index = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(zz, nn))}
    known = {(int(a), int(b)): bool(m) for a, b, m in zip(frame.z, frame.n, frame.mass_measured)}
    keep = np.zeros(zz.size, bool)
    drip = []
    for z in seen_z:
        this = frame[frame.z == z]
        ns = [int(v) for v in this.n[this.mass_measured] if v in seen_n] or [int(v) for v in this.n if v in seen_n]
        if not ns:
            continue
        row = {"z": z}
        for key, task, direction, start in (("n_drip_1n", "s_n", 1, max(ns)), ("n_drip_2n", "s_2n", 1, max(ns)),
                                            ("n_drip_1p", "s_p", -1, min(ns)), ("n_drip_2p", "s_2p", -1, min(ns))):
            last = _last_bound(pred[f"{task}_mean"], index, z, start, direction)
            row[key] = last
        drip.append(row)
        # the looser of the one- and two-nucleon lines; a line not reached leaves that side open
        p_side = [row["n_drip_1p"], row["n_drip_2p"]]
        n_side = [row["n_drip_1n"], row["n_drip_2n"]]
        lo = n_lo if np.isnan(p_side).any() else min(p_side)
        hi = n_hi if np.isnan(n_side).any() else max(n_side)
        keep |= (zz == z) & (nn >= lo) & (nn <= hi)
    flags = np.array(["measured" if known.get((int(a), int(b))) else ("estimated" if (int(a), int(b)) in known else "new")
                      for a, b in zip(zz, nn)])
    cols: dict[str, object] = {"z": zz, "n": nn, "a": zz + nn, "flag": flags}
    pos_in_frame = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(frame.z, frame.n))}
    pos = np.array([pos_in_frame.get((int(a), int(b)), -1) for a, b in zip(zz, nn)])
    has = pos >= 0
    for task in tasks:
        cols[f"{task}_mean"] = pred[f"{task}_mean"]
        cols[f"{task}_sigma"] = pred[f"{task}_sigma"]
        col, flag, _ = TASK_COLUMNS[task]
        meas = np.full(zz.size, np.nan)
        if col in frame:
            values = frame[col].to_numpy(dtype=float)[np.maximum(pos, 0)]
            ok = has & frame[flag].to_numpy(dtype=bool)[np.maximum(pos, 0)]
            meas[ok] = values[ok]
        cols[f"{task}_nubase{year}"] = meas
    table = pd.DataFrame(cols)[keep].reset_index(drop=True)
    return table, pd.DataFrame(drip)


def write_table(models: list[Trained], out_csv: Path, figure: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the prediction table (CSV), the drip lines (``<stem>_driplines.csv``) and a chart (PNG)."""
    table, drip = prediction_table(models)
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    for df, path in ((table, out_csv), (drip, out_csv.with_name(out_csv.stem + "_driplines.csv"))):
        tmp = path.with_suffix(path.suffix + ".tmp")
        df.to_csv(tmp, index=False, float_format="%.6g")
        os.replace(tmp, path)
    if figure is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, 6))
        for flag, color in (("new", "#d0d0ff"), ("estimated", "#ffb347"), ("measured", "#222222")):
            sel = table.flag == flag
            ax.scatter(table.n[sel], table.z[sel], s=3, marker="s", color=color, label=f"{flag} ({int(sel.sum())})")
        for key, style in (("n_drip_1n", "r-"), ("n_drip_2n", "r--"), ("n_drip_1p", "b-"), ("n_drip_2p", "b--")):
            ax.plot(drip[key], drip.z, style, lw=1, label=key.replace("n_drip_", "drip ").replace("1n", "S_n").replace(
                "2n", "S_2n").replace("1p", "S_p").replace("2p", "S_2p"))
        ax.set_xlabel("N")
        ax.set_ylabel("Z")
        ax.set_title(f"NuCLR ensemble of {len(models)}: predicted nuclei and drip lines")
        ax.legend(markerscale=4, fontsize=8)
        fig.tight_layout()
        tmp = Path(figure).with_suffix(".tmp.png")
        fig.savefig(tmp, dpi=120)
        plt.close(fig)
        os.replace(tmp, figure)
    return table, drip
