"""Interpretability ("From Neurons to Neutrons"): embedding PCA, hidden-layer PCA, probes against the
semi-empirical terms, symbolic regression of leading components (pyoperon, gplearn as fallback) and a
compact formula judged against the SEMF fitted to the same nuclei."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from nuclr._data import ground_states
from nuclr._physics import SEMF_TERMS, semf_features
from nuclr._train import Trained

MAGIC = (2, 8, 20, 28, 50, 82, 126, 184)


def embedding_pca(model: Trained, which: str, lo: int = 8, hi: int | None = None, k: int = 4) -> dict:
    """PCA of the Z or N embedding rows lo..hi (the rows the data actually trains)."""
    from sklearn.decomposition import PCA

    emb = (model.model.emb_z if which == "z" else model.model.emb_n).weight.detach().cpu().double().numpy()
    hi = emb.shape[0] - 1 if hi is None else hi
    idx = np.arange(lo, hi + 1)
    pca = PCA(n_components=k).fit(emb[idx])
    comps = pca.transform(emb[idx])
    # parity: how well do the leading components separate even from odd (nearest class mean)?
    even = idx % 2 == 0
    acc = 0.0
    for j in range(k):
        c = comps[:, j]
        thr = 0.5 * (c[even].mean() + c[~even].mean())
        sign = 1 if c[even].mean() > thr else -1
        acc = max(acc, float(np.mean((sign * (c - thr) > 0) == even)))
    return {"index": idx, "components": comps, "explained_variance_ratio": pca.explained_variance_ratio_,
            "parity_accuracy_best_single_pc": acc}


def measured_nuclei(model: Trained) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = ground_states(2020, radii=False)
    m = f[(f.z >= model.config.min_z) & (f.n >= model.config.min_n) & f.mass_measured]
    cfg = model.model.config
    m = m[(m.z <= cfg.max_z) & (m.n <= cfg.max_n)]
    return m.z.to_numpy().copy(), m.n.to_numpy().copy(), m.binding_energy_kev.to_numpy().copy()


@torch.no_grad()
def hidden_features(model: Trained, z: np.ndarray, n: np.ndarray, task: str = "binding") -> np.ndarray:
    k = model.config.tasks.index(task)
    dev = next(model.model.parameters()).device
    h = model.model.hidden(torch.tensor(np.asarray(z), device=dev), torch.tensor(np.asarray(n), device=dev),
                           torch.full((len(z),), k, device=dev, dtype=torch.long))
    return h.double().cpu().numpy()


def shell_features(z: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Valence distances to the nearest magic number and the BW2 shell term P = v_p v_n / (v_p + v_n)."""
    magic = np.array(MAGIC)
    vp = np.min(np.abs(np.asarray(z)[:, None] - magic[None]), axis=1).astype(float)
    vn = np.min(np.abs(np.asarray(n)[:, None] - magic[None]), axis=1).astype(float)
    p = np.where(vp + vn > 0, vp * vn / np.maximum(vp + vn, 1), 0.0)
    return np.stack([vp, vn, p, p**2], axis=1)


def term_library(z: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Candidate terms (MeV-scale) for the compact formula: liquid drop, BW2 extras and shell terms."""
    z = np.asarray(z, dtype=float)
    n = np.asarray(n, dtype=float)
    a = z + n
    semf = semf_features(z, n)
    sh = shell_features(z, n)
    cols = [semf[:, i] for i in range(5)] + [
        z ** (4 / 3) / a ** (1 / 3), np.abs(n - z) / a, (n - z) ** 2 / a ** (4 / 3), a ** (1 / 3),
        sh[:, 2], sh[:, 3], sh[:, 0], sh[:, 1], np.ones_like(a),
    ]
    names = [f"{t} term" for t in SEMF_TERMS] + ["Z^(4/3)/A^(1/3)", "|N-Z|/A", "(N-Z)^2/A^(4/3)", "A^(1/3)",
                                                 "P (shell)", "P^2", "v_p", "v_n", "1"]
    return np.stack(cols, axis=1), names


def compact_formula(z: np.ndarray, n: np.ndarray, target_kev: np.ndarray, extra: np.ndarray | None = None,
                    extra_names: list[str] | None = None, max_terms: int = 15) -> dict:
    """Orthogonal matching pursuit over the term library (plus optional extra features), <= max_terms."""
    from sklearn.linear_model import OrthogonalMatchingPursuit

    x, names = term_library(z, n)
    if extra is not None:
        x = np.concatenate([x, extra], axis=1)
        names = names + list(extra_names or [])
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    omp = OrthogonalMatchingPursuit(n_nonzero_coefs=min(max_terms, x.shape[1]), fit_intercept=False)
    omp.fit(x / scale, target_kev / 1000.0)
    coef = omp.coef_ / scale
    used = np.flatnonzero(coef)
    pred_kev = x @ coef * 1000.0
    return {"terms": [{"term": names[i], "coef_mev": float(coef[i])} for i in used], "n_terms": int(used.size),
            "pred_kev": pred_kev}


def symbolic_backend(requested: str = "auto") -> str:
    """``operon`` (pyoperon, offline C++ GP) when importable, else ``gplearn``; or the one asked for."""
    import importlib.util

    if requested not in ("auto", "operon", "gplearn"):
        raise ValueError(f"symbolic backend must be auto, operon or gplearn, got {requested!r}")
    if requested == "auto":
        return "operon" if importlib.util.find_spec("pyoperon") is not None else "gplearn"
    if requested == "operon" and importlib.util.find_spec("pyoperon") is None:
        raise ModuleNotFoundError("symbolic backend 'operon' needs the pyoperon package")
    return requested


def symbolic_components(z: np.ndarray, n: np.ndarray, pcs: np.ndarray, *, quick: bool, seed: int,
                        backend: str = "auto") -> list[dict]:
    """Symbolic regression of each hidden-layer PC as a function of (Z, N) (pyoperon, else gplearn)."""
    backend = symbolic_backend(backend)
    x = np.stack([z, n], axis=1).astype(float)
    out = []
    if backend == "operon":
        from pyoperon.sklearn import SymbolicRegressor as OperonRegressor

        for j in range(pcs.shape[1]):
            sr = OperonRegressor(generations=30 if quick else 200, population_size=300 if quick else 1000,
                                 max_length=25, n_threads=1, random_state=seed + j,
                                 allowed_symbols="add,sub,mul,div,constant,variable,sqrt,log,sin,cos")
            sr.fit(x, pcs[:, j])
            pred = sr.predict(x)
            r2 = 1 - np.mean((pred - pcs[:, j]) ** 2) / np.var(pcs[:, j])
            program = sr.get_model_string(sr.model_, 4, ["Z", "N"])
            out.append({"pc": j, "program": program, "length": int(sr.model_.Length), "r2": float(r2), "pred": pred,
                        "backend": "pyoperon"})
        return out
    from gplearn.genetic import SymbolicRegressor

    for j in range(pcs.shape[1]):
        sr = SymbolicRegressor(
            population_size=300 if quick else 1500, generations=6 if quick else 20, tournament_size=20,
            function_set=("add", "sub", "mul", "div", "sqrt", "log", "sin", "cos"), metric="rmse",
            parsimony_coefficient=0.001, max_samples=0.9, random_state=seed + j, n_jobs=1,
            feature_names=["Z", "N"], init_depth=(2, 4),
        )
        sr.fit(x, pcs[:, j])
        pred = sr.predict(x)
        r2 = 1 - np.mean((pred - pcs[:, j]) ** 2) / np.var(pcs[:, j])
        out.append({"pc": j, "program": str(sr._program), "length": int(sr._program.length_), "r2": float(r2),
                    "pred": pred, "backend": "gplearn"})
    return out


def _save_figures(out: Path, zres: dict, nres: dict, hidden_evr: np.ndarray, z: np.ndarray, n: np.ndarray,
                  pcs: np.ndarray) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig = plt.figure(figsize=(11, 4.5))
    for i, (res, label) in enumerate(((nres, "N"), (zres, "Z"))):
        ax = fig.add_subplot(1, 2, i + 1, projection="3d")
        c = res["components"]
        ax.plot(c[:, 0], c[:, 1], c[:, 2], color="0.7", lw=0.8)
        sc = ax.scatter(c[:, 0], c[:, 1], c[:, 2], c=res["index"], cmap="viridis", s=12)
        for m in MAGIC:
            if m in res["index"]:
                j = int(np.flatnonzero(res["index"] == m)[0])
                ax.text(c[j, 0], c[j, 1], c[j, 2], str(m), color="red", fontsize=8)
        ax.set_title(f"{label} embeddings, PCs 1-3 (magic numbers in red)")
        fig.colorbar(sc, ax=ax, shrink=0.6, label=label)
    fig.tight_layout()
    fig.savefig(out / "embedding_helix.png", dpi=110)
    plt.close(fig)
    files.append("embedding_helix.png")

    fig, axes = plt.subplots(2, 4, figsize=(14, 6), sharex="row")
    for r, (res, label) in enumerate(((nres, "N"), (zres, "Z"))):
        for j in range(4):
            ax = axes[r, j]
            even = res["index"] % 2 == 0
            ax.plot(res["index"], res["components"][:, j], color="0.75", lw=0.8)
            ax.scatter(res["index"][even], res["components"][even, j], s=8, label="even")
            ax.scatter(res["index"][~even], res["components"][~even, j], s=8, label="odd")
            for m in MAGIC:
                if res["index"].min() <= m <= res["index"].max():
                    ax.axvline(m, color="red", lw=0.6, ls="--")
            ax.set_title(f"{label} PC{j + 1} ({res['explained_variance_ratio'][j]:.0%})")
            ax.set_xlabel(label)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "embedding_parity.png", dpi=110)
    plt.close(fig)
    files.append("embedding_parity.png")

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    axes[0].bar(np.arange(1, 11), hidden_evr[:10])
    axes[0].set_xlabel("hidden-layer PC")
    axes[0].set_ylabel("explained variance ratio")
    for j in range(2):
        sc = axes[j + 1].scatter(n, z, c=pcs[:, j], s=5, cmap="coolwarm")
        axes[j + 1].set_xlabel("N")
        axes[j + 1].set_ylabel("Z")
        axes[j + 1].set_title(f"hidden PC{j + 1} on the nuclear chart")
        fig.colorbar(sc, ax=axes[j + 1])
    fig.tight_layout()
    fig.savefig(out / "hidden_pca.png", dpi=110)
    plt.close(fig)
    files.append("hidden_pca.png")
    return files


def interpret(model: Trained, out: Path, *, seed: int = 0, symbolic: bool = True, quick: bool = False,
              quiet: bool = True, figures: bool = True) -> str:
    """Write figures + interpret.json + interpret.md into ``out``; return the markdown summary."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold, cross_val_score

    if "binding" not in model.config.tasks:
        raise ValueError("interpret needs a model trained with the 'binding' task")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    zres = embedding_pca(model, "z", lo=model.config.min_z, hi=100)
    nres = embedding_pca(model, "n", lo=model.config.min_n, hi=150)
    z, n, b = measured_nuclei(model)
    h = hidden_features(model, z, n)
    hp = PCA(n_components=10).fit(h)
    pcs = hp.transform(h)
    a = z + n
    semf = semf_features(z, n) * np.array([1, -1, -1, -1, 1])  # positive-valued terms
    probes = {}
    for i, term in enumerate(SEMF_TERMS):
        y = semf[:, i]
        r2 = cross_val_score(LinearRegression(), pcs[:, :5], y, cv=KFold(5, shuffle=True, random_state=seed), scoring="r2")
        corr = [float(np.corrcoef(pcs[:, j], y)[0, 1]) for j in range(5)]
        probes[term] = {"cv_r2_from_5_pcs": float(r2.mean()), "pearson_with_pc": corr}
    # binding prediction of the network itself on these nuclei
    kb = model.config.tasks.index("binding")
    net_pred = model.predict_rows(z, n, np.full(z.size, kb))
    net_rms = float(np.sqrt(np.mean((net_pred - b) ** 2)))
    # compact formulas: (a) term library fitted to the network's predictions (distillation),
    # (b) the same with gplearn expressions of the leading hidden PCs as extra candidate terms
    base = compact_formula(z, n, net_pred)
    base_rms = float(np.sqrt(np.mean((base["pred_kev"] - b) ** 2)))
    # the bar the formula must clear: the liquid drop fitted to the same measured nuclei
    from nuclr._physics import SemfFit

    semf_rms = float(np.sqrt(np.mean((SemfFit.fit(z, n, b).binding_energy_kev(z, n) - b) ** 2)))
    # control: the same term library fitted to the measured energies directly (no network): does
    # distilling the network give a better formula than the library alone?
    direct = compact_formula(z, n, b)
    direct_rms = float(np.sqrt(np.mean((direct["pred_kev"] - b) ** 2)))
    summary = {
        "z_embedding_evr": zres["explained_variance_ratio"].tolist(),
        "n_embedding_evr": nres["explained_variance_ratio"].tolist(),
        "z_parity_accuracy": zres["parity_accuracy_best_single_pc"],
        "n_parity_accuracy": nres["parity_accuracy_best_single_pc"],
        "hidden_evr": hp.explained_variance_ratio_.tolist(),
        "probes": probes,
        "network_binding_rms_kev_in_sample": net_rms,
        "compact_formula": {"terms": base["terms"], "n_terms": base["n_terms"], "binding_rms_kev": base_rms,
                            "fitted_to": "network predictions on measured nuclei",
                            "semf_fitted_same_nuclei_rms_kev": semf_rms,
                            "beats_semf_fitted_same_nuclei": bool(base_rms < semf_rms and base["n_terms"] <= 15)},
        "library_fitted_to_measured": {"terms": direct["terms"], "n_terms": direct["n_terms"],
                                       "binding_rms_kev": direct_rms,
                                       "fitted_to": "measured binding energies (no network)"},
        "n_nuclei": int(z.size),
    }
    if symbolic:
        sym = symbolic_components(z, n, pcs[:, :3], quick=quick, seed=seed)
        extra = np.stack([s["pred"] for s in sym], axis=1)
        # express each PC program's contribution in keV through the term fit
        comp = compact_formula(z, n, net_pred, extra, [f"SR(PC{s['pc'] + 1})" for s in sym])
        comp_rms = float(np.sqrt(np.mean((comp["pred_kev"] - b) ** 2)))
        summary["symbolic_pcs"] = [{k: v for k, v in s.items() if k != "pred"} for s in sym]
        summary["compact_formula_with_symbolic_pcs"] = {
            "terms": comp["terms"], "n_terms": comp["n_terms"], "binding_rms_kev": comp_rms,
            "programs": {f"SR(PC{s['pc'] + 1})": s["program"] for s in sym},
            "beats_semf_fitted_same_nuclei": bool(comp_rms < semf_rms and comp["n_terms"] <= 15)}
    files = _save_figures(out, zres, nres, hp.explained_variance_ratio_, z, n, pcs) if figures else []
    summary["figures"] = files
    (out / "interpret.json").write_text(json.dumps(summary, indent=2))
    md = _markdown(summary)
    (out / "interpret.md").write_text(md + "\n")
    del a
    return md


def _markdown(s: dict) -> str:
    lines = ["### Interpretability", ""]
    lines.append(f"- Z embedding PCA variance (PC1-4): {', '.join(f'{v:.2f}' for v in s['z_embedding_evr'])}; "
                 f"N: {', '.join(f'{v:.2f}' for v in s['n_embedding_evr'])}")
    lines.append(f"- even/odd separated by a single embedding PC: Z {s['z_parity_accuracy']:.0%}, N {s['n_parity_accuracy']:.0%}")
    lines.append(f"- last hidden layer (binding task) PCA variance: PC1 {s['hidden_evr'][0]:.1%}, "
                 f"PC1-3 {sum(s['hidden_evr'][:3]):.1%}")
    lines += ["", "| SEMF term | CV R^2 from hidden PC1-5 | corr(PC1) | corr(PC2) |", "|---|---|---|---|"]
    for term, p in s["probes"].items():
        lines.append(f"| {term} | {p['cv_r2_from_5_pcs']:.3f} | {p['pearson_with_pc'][0]:+.2f} | {p['pearson_with_pc'][1]:+.2f} |")
    cf = s["compact_formula"]
    lines += ["", f"- network binding RMS (in-sample, all measured): {s['network_binding_rms_kev_in_sample']:.0f} keV",
              f"- compact formula ({cf['n_terms']} terms, fitted to the network's predictions): binding RMS "
              f"{cf['binding_rms_kev'] / 1000:.3f} MeV vs measured; target: <= 15 terms and below the SEMF fitted "
              f"to the same nuclei ({cf['semf_fitted_same_nuclei_rms_kev'] / 1000:.3f} MeV): "
              + ("met" if cf["beats_semf_fitted_same_nuclei"] else "missed"),
              "  " + " + ".join(f"{t['coef_mev']:+.4g}·[{t['term']}]" for t in cf["terms"])]
    if "symbolic_pcs" in s:
        lines.append(f"- {s['symbolic_pcs'][0].get('backend', 'gplearn')} programs for hidden PCs (Z, N): " + "; ".join(
            f"PC{p['pc'] + 1} ≈ `{p['program']}` (R^2 {p['r2']:.2f}, length {p['length']})" for p in s["symbolic_pcs"]))
        c2 = s["compact_formula_with_symbolic_pcs"]
        lines.append(f"- compact formula with the symbolic PCs as candidate terms: {c2['n_terms']} terms, binding RMS "
                     f"{c2['binding_rms_kev'] / 1000:.3f} MeV")
    return "\n".join(lines)


def interpret_payload(summary: dict, *, model_desc: str, seed: int) -> dict:
    """Record payload (tools/records.py) of an ``interpret.json`` summary: symbolic PCs, the compact
    formulas beside the SEMF fitted to the same nuclei, and the embedding/probe numbers."""
    cf = summary["compact_formula"]
    semf = cf["semf_fitted_same_nuclei_rms_kev"]

    def verdict(rms_kev: float, n_terms: int) -> str:
        return "met" if (rms_kev < semf and n_terms <= 15) else "missed"

    rows = [["SEMF fitted to the same nuclei (5 terms)", 5, semf, "(the bar)"],
            ["network itself (trained on these nuclei)", "–", summary["network_binding_rms_kev_in_sample"], "–"],
            ["compact formula: term library fitted to the network", cf["n_terms"], cf["binding_rms_kev"],
             verdict(cf["binding_rms_kev"], cf["n_terms"])]]
    if "compact_formula_with_symbolic_pcs" in summary:
        c2 = summary["compact_formula_with_symbolic_pcs"]
        rows.append(["compact formula + symbolic hidden PCs, fitted to the network", c2["n_terms"],
                     c2["binding_rms_kev"], verdict(c2["binding_rms_kev"], c2["n_terms"])])
    lib = summary.get("library_fitted_to_measured")
    if lib:
        rows.append(["control: same term library fitted to the measured energies (no network)", lib["n_terms"],
                     lib["binding_rms_kev"], verdict(lib["binding_rms_kev"], lib["n_terms"])])
    tables = [{"name": "compact_formula",
               "caption": f"Binding RMS (keV) against the {summary.get('n_nuclei', '?')} measured AME2020 nuclei "
                          f"(Z, N >= 8) of formulas with <= 15 terms; target: below the SEMF fitted to the same "
                          f"nuclei; model: {model_desc}",
               "columns": ["formula", "terms", "binding RMS (keV)", "target"],
               "rows": rows, "formats": {"binding RMS (keV)": ".0f"}}]
    if summary.get("symbolic_pcs"):
        tables.append({"name": "symbolic_pcs",
                       "caption": "Symbolic regression of the leading hidden-layer PCs (binding task) as functions of "
                                  "(Z, N); R^2 on the measured nuclei",
                       "columns": ["PC", "backend", "program", "length", "R^2"],
                       "rows": [[f"PC{p['pc'] + 1}", p.get("backend", "gplearn"), p["program"], p["length"], p["r2"]]
                                for p in summary["symbolic_pcs"]],
                       "formats": {"R^2": ".3f"}})
    probe_rows = [[term, p["cv_r2_from_5_pcs"], p["pearson_with_pc"][0], p["pearson_with_pc"][1]]
                  for term, p in summary["probes"].items()]
    tables.append({"name": "probes",
                   "caption": f"Linear probes: SEMF terms from hidden PCs 1-5 (5-fold CV R^2); embedding PCs: even/odd "
                              f"separated by one PC: Z {summary['z_parity_accuracy']:.2f}, N "
                              f"{summary['n_parity_accuracy']:.2f}; hidden PC1-3 variance "
                              f"{sum(summary['hidden_evr'][:3]):.2f}",
                   "columns": ["SEMF term", "CV R^2 (PC1-5)", "corr(PC1)", "corr(PC2)"],
                   "rows": probe_rows, "formats": {"CV R^2 (PC1-5)": ".3f", "corr(PC1)": "+.2f", "corr(PC2)": "+.2f"}})
    return {"experiment": "nuclr_interpret", "seeds": [seed],
            "config": {"model": model_desc, "symbolic": "symbolic_pcs" in summary},
            "metrics": {k: v for k, v in summary.items() if k != "figures"}, "tables": tables}
