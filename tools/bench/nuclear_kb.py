"""Nuclear-physics knowledge base, the KBFormer paper's App. E protocol (entity completion):
mask one property of a held-out nuclide, predict it from its other properties.

Cross-package (nuclr's NUBASE2020/AME data API + entity-diffusion's model), so it lives in tools/.
The paper (arXiv 2312.05253, Table 2) used the IAEA live chart (3,254 nuclei, Aug 2023); here one
entity per NUBASE2020 nuclide from ``nuclr.ground_states`` (Z, N >= 1): measured values only
(estimated ones are missing), the four semi-empirical terms from (Z, N) (volume A, surface
A^(2/3), symmetry (N-Z)^2/A, Coulomb Z(Z-1)/A^(1/3)), stability and Z/N parity as categories;
S_n and S_p left out (they leak the binding energy), as in the paper. Spin, abundance and beta2
of the paper's table are not in this data.

Split: 80/20 of the nuclides per seed; every property of the 80 % is training data (for the trees,
15 % of those nuclides are their early-stopping validation split). For each field and each test
nuclide where the field is measured, the field is masked and predicted from the rest.

Models: constant (training mean); a 5-coefficient semi-empirical mass formula (volume, surface,
symmetry, Coulomb, pairing; least squares on the training nuclides; binding energy only);
CatBoost per field (tuned by Optuna with the paper's space when optuna is installed, else
CatBoost defaults; early stopping on the validation split; HistGradientBoosting when catboost is
absent - the record says which); KBFormer (K = 50 mixtures, the paper's value), point prediction =
mixture mean (temperature 0). Extra measurements that explain the scale of the numbers: the
spread of total and per-nucleon binding energies, and trees fitted to the SEMF residual.

    uv run python tools/bench/nuclear_kb.py --seeds 0 1 --out /tmp/nkb            # CPU size
    python3 tools/bench/nuclear_kb.py --paper --device cuda --out OUT               # GPU campaign
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

TARGET = "binding_energy_kev"
FIELDS = [TARGET, "charge_radius_fm", "log10_half_life_s", "q_alpha_kev", "q_beta_minus_kev",
          "q_beta_minus_n_kev", "q_ec_kev"]
PAPER_KEV = {"kbformer": 370.0, "gbdt": 640.0, "constant": 5570.0}


def knowledge_base() -> pd.DataFrame:
    """One row per nuclide (Z, N >= 1): measured properties, NaN where not measured."""
    import nuclr

    table = nuclr.ground_states(2020)
    table = table[(table["z"] >= 1) & (table["n"] >= 1)].reset_index(drop=True)
    kb = pd.DataFrame({"Z": table["z"].astype(float), "N": table["n"].astype(float)})
    a = kb["Z"] + kb["N"]
    kb["semf_volume"] = a
    kb["semf_surface"] = a ** (2.0 / 3.0)
    kb["semf_symmetry"] = (kb["N"] - kb["Z"]) ** 2 / a
    kb["semf_coulomb"] = kb["Z"] * (kb["Z"] - 1) / a ** (1.0 / 3.0)
    flags = {TARGET: "binding_energy_measured", "charge_radius_fm": "charge_radius_measured",
             "log10_half_life_s": "half_life_measured", "q_alpha_kev": "q_alpha_measured",
             "q_beta_minus_kev": "q_beta_minus_measured", "q_beta_minus_n_kev": "q_beta_minus_n_measured",
             "q_ec_kev": "q_ec_measured"}
    for column, flag in flags.items():
        values = table[column]
        if flag in table:
            values = values.where(table[flag].fillna(False).astype(bool))
        kb[column] = values.astype(float)
    kb["stable"] = np.where(table["is_stable"].astype(bool), "stable", "unstable")
    kb["parity_zn"] = (table["z"] % 2).astype(int).astype(str) + (table["n"] % 2).astype(int).astype(str)
    return kb


DELTA_H_KEV, DELTA_N_KEV = 7288.971064, 8071.318062  # AME2020 mass excesses of 1H and the neutron


def ws4_binding(kb: pd.DataFrame, data: str) -> np.ndarray | None:
    """Total binding energy (keV) of each nuclide from the WS4 mass model (Wang et al. 2014; a
    fitted theory table, no learning here): B = Z Delta_H + N Delta_n - Delta_WS4. NaN where WS4
    has no entry; None when the table is not found."""
    env = os.environ.get("ENTITY_DIFFUSION_DATA")
    candidates = [Path(data)] if data != "auto" else [
        *([Path(env)] if env else []), Path("shared/data"), Path("../shared/data"), Path("../../shared/data")]
    path = next((c / "nuclear/ws4/WS4.txt" for c in candidates if (c / "nuclear/ws4/WS4.txt").exists()), None)
    if path is None:
        return None
    table = pd.read_csv(path, sep=r"\s+")
    excess = {(int(a), int(z)): 1000.0 * float(m) for a, z, m in zip(table["A"], table["Z"], table["WS4"], strict=True)}
    z, n = kb["Z"].to_numpy(int), kb["N"].to_numpy(int)
    delta = np.array([excess.get((zi + ni, zi), np.nan) for zi, ni in zip(z, n, strict=True)])
    return z * DELTA_H_KEV + n * DELTA_N_KEV - delta


def split(kb: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    test = rng.random(len(kb)) < 0.2
    return kb[~test].reset_index(drop=True), kb[test].reset_index(drop=True)


def rms(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, dtype=float) - np.asarray(truth, dtype=float)) ** 2)))


def semf_design(frame: pd.DataFrame) -> np.ndarray:
    z, n = frame["Z"].to_numpy(float), frame["N"].to_numpy(float)
    a = z + n
    pairing = ((-1.0) ** z + (-1.0) ** n) / 2 * a ** -0.5  # +1 even-even, -1 odd-odd, 0 odd A
    return np.column_stack([a, a ** (2 / 3), (n - z) ** 2 / a, z * (z - 1) / a ** (1 / 3), pairing])


def semf_fit_predict(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    rows = train[TARGET].notna().to_numpy()
    coef, *_ = np.linalg.lstsq(semf_design(train[rows]), train.loc[rows, TARGET].to_numpy(float), rcond=None)
    return semf_design(test) @ coef, coef


def _features(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    return frame[[c for c in frame.columns if c != target]]


def run_trees(train: pd.DataFrame, test: pd.DataFrame, field: str, seed: int, trials: int, iterations: int,
              offset_train: np.ndarray | None = None, offset_test: np.ndarray | None = None) -> dict:
    """CatBoost (+Optuna) on the other fields; validation = 15 % of the training nuclides."""
    rows = train[field].notna().to_numpy()
    data = train[rows].reset_index(drop=True)
    y = data[field].to_numpy(float) - (offset_train[rows] if offset_train is not None else 0.0)
    rng = np.random.default_rng(seed + 17)
    val = rng.random(len(data)) < 0.15
    x = _features(data, field)
    x_test = _features(test, field)
    cats = ["stable", "parity_zn"]
    try:
        from catboost import CatBoostRegressor
    except ImportError:
        CatBoostRegressor = None
    if CatBoostRegressor is None:
        from sklearn.ensemble import HistGradientBoostingRegressor

        def codes(f: pd.DataFrame) -> pd.DataFrame:
            out = f.copy()
            for c in cats:
                out[c] = out[c].map({v: i for i, v in enumerate(sorted(train[c].unique()))})
            return out

        model = HistGradientBoostingRegressor(max_iter=iterations, learning_rate=0.05, early_stopping=True,
                                              validation_fraction=0.15, random_state=seed,
                                              categorical_features=[x.columns.get_loc(c) for c in cats])
        model.fit(codes(x), y)
        pred = model.predict(codes(x_test))
        evaluator, params = "hist-gradient-boosting", {}
    else:
        def fit(params: dict) -> tuple[object, float]:
            m = CatBoostRegressor(iterations=iterations, od_type="Iter", od_wait=50, random_seed=seed, verbose=False,
                                  thread_count=1, allow_writing_files=False, cat_features=cats, **params)
            m.fit(x[~val], y[~val], eval_set=(x[val], y[val]), use_best_model=True)
            return m, rms(m.predict(x[val]), y[val])

        params: dict = {}
        evaluator = "catboost"
        try:
            import optuna
        except ImportError:
            optuna = None
        if optuna is not None and trials > 0:
            optuna.logging.set_verbosity(optuna.logging.WARNING)

            def objective(trial) -> float:
                return fit({"learning_rate": trial.suggest_float("learning_rate", 1e-3, 1.0, log=True),
                            "depth": trial.suggest_int("depth", 3, 10),
                            "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 0.1, 10.0),
                            "bagging_temperature": trial.suggest_float("bagging_temperature", 0.0, 1.0),
                            "leaf_estimation_iterations": trial.suggest_int("leaf_estimation_iterations", 1, 10)})[1]

            study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
            study.optimize(objective, n_trials=trials)
            params = study.best_params
            evaluator = f"catboost+optuna({trials} trials)"
        model, _ = fit(params)
        pred = model.predict(x_test)
    pred = np.asarray(pred, dtype=float) + (offset_test if offset_test is not None else 0.0)
    return {"pred": pred, "evaluator": evaluator, "params": params}


def run_kbformer(train: pd.DataFrame, test: pd.DataFrame, seed: int, args: argparse.Namespace) -> dict:
    from entity_diffusion import EntityDiffusion, KBFormerConfig

    config = KBFormerConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, eval_every=args.eval_every,
                            patience=args.patience, val_fraction=0.1, max_seconds=args.max_train_seconds).updated(
        d_model=args.d_model, n_layers=2, field_layers=2, n_mixtures=50, n_heads=4 if args.d_model < 256 else 2,
        dropout=args.dropout)
    start = time.perf_counter()
    model = EntityDiffusion(config, random_state=seed, device=args.device)
    curve: list[dict] = []
    callback = None
    if args.curve_every:
        rows = test[TARGET].notna().to_numpy()
        query, truth = test[rows].assign(**{TARGET: float("nan")}), test.loc[rows, TARGET].to_numpy(float)

        def callback(step: int, loss: float) -> None:
            # learning curve of the LIVE weights on the held-out nuclides (reported, never used to
            # select anything: the kept weights are chosen by the held-out ELBO of the training split)
            if (step + 1) % args.curve_every == 0:
                pred = model.impute(query, temperature=0)[TARGET].to_numpy(float)
                model.model_.train()
                curve.append({"step": step + 1, "seconds": time.perf_counter() - start, "binding_rms_kev": rms(pred, truth)})
                print(f"  step {step + 1}: live-weight binding RMS {curve[-1]['binding_rms_kev']:.0f} keV", flush=True)
    model.fit(train, callback=callback)
    fit_seconds = time.perf_counter() - start
    preds = {}
    for field in FIELDS:
        rows = test[field].notna().to_numpy()
        query = test[rows].assign(**{field: float("nan")})
        preds[field] = (rows, model.impute(query, temperature=0)[field].to_numpy(dtype=float))
    return {"preds": preds, "fit_seconds": fit_seconds, "history": model.history_.to_dict(), "config": config.to_dict(),
            "curve": curve}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--paper", action="store_true",
                        help="GPU size: 5 seeds, width 256, batch 1024, lr 1e-3, dropout 0.1, 10 Optuna trials (paper: 100)")
    parser.add_argument("--smoke", action="store_true", help="seconds-sized run for CI")
    parser.add_argument("--steps", type=int, default=3000, help="KBFormer training steps (early stopping may cut)")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--max-train-seconds", type=float, default=None, help="cap per KBFormer fit")
    parser.add_argument("--trials", type=int, default=10, help="Optuna trials per field (when optuna is installed)")
    parser.add_argument("--tree-iterations", type=int, default=2000, help="boosting rounds (early stopping 50)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-minutes", type=float, default=None, help="start no new seed after this")
    parser.add_argument("--fields", default=",".join(FIELDS),
                        help="masked fields to score, comma-separated (binding energy first)")
    parser.add_argument("--no-kbformer", action="store_true",
                        help="baselines only (constant, SEMF, WS4, trees): the reference levels, cheaply")
    parser.add_argument("--curve-every", type=int, default=0,
                        help="every N steps, the live weights' binding RMS on the held-out nuclides (0: off)")
    parser.add_argument("--data", default="auto", help="shared/data folder (for the WS4 table; auto: search)")
    parser.add_argument("--out", type=Path, required=True, help="folder for record.json (the payload)")
    args = parser.parse_args(argv)
    fields = [f for f in args.fields.split(",") if f]
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown or TARGET not in fields:
        parser.error(f"--fields must include {TARGET} and only names from {FIELDS}; got {args.fields!r}")
    for name in ("steps", "d_model", "batch_size", "eval_every", "tree_iterations", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.paper:
        # 0.2.0's first GPU run (5 seeds, width 256, 20,000 planned steps, 55 s per fit) stopped every
        # fit by time near step 250 (about 4 steps/s on the shared GPU) with the learning rate still
        # at 99 % of its peak: 9.7 MeV, worse than the CPU's 3,000 annealed steps. Now: 3 seeds,
        # 90 s per fit, the learning rate decays to 0 by the time cap (train() does this), a
        # width the per-step overhead does not punish, evaluation every 50 steps, learning curve.
        args.seeds, args.d_model, args.batch_size, args.lr, args.dropout = [0, 1, 2], 128, 512, 2e-3, 0.0
        args.steps, args.trials, args.eval_every, args.patience = 20000, 10, 50, 20
        args.max_train_seconds = args.max_train_seconds or 90.0
        args.curve_every = args.curve_every or 250
    if args.smoke:
        args.seeds, args.steps, args.d_model, args.trials, args.eval_every = [0], 30, 16, 0, 10
        args.tree_iterations, args.curve_every = 50, 15
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    kb = knowledge_base()
    measured = kb[TARGET].notna()
    a = (kb["Z"] + kb["N"])[measured]
    scale = {"nuclides": len(kb), "measured_binding": int(measured.sum()),
             "std_total_binding_kev": float(kb.loc[measured, TARGET].std()),
             "std_binding_per_nucleon_kev": float((kb.loc[measured, TARGET] / a).std()),
             "paper_constant_kev": PAPER_KEV["constant"]}
    ws4 = ws4_binding(kb, args.data)
    if ws4 is not None:
        both = measured.to_numpy() & np.isfinite(ws4)
        scale["ws4_rms_kev_all_measured"] = rms(ws4[both], kb.loc[both, TARGET])
        scale["ws4_nuclides"] = int(both.sum())
    print(json.dumps(scale), flush=True)
    per_seed: list[dict] = []
    started = time.perf_counter()
    for seed in args.seeds:
        if args.max_minutes is not None and time.perf_counter() - started > 60 * args.max_minutes:
            print(f"seed {seed}: not run (time budget)", flush=True)
            continue
        train, test = split(kb, seed)
        kbf = None if args.no_kbformer else run_kbformer(train, test, seed, args)
        semf_test, coef = semf_fit_predict(train, test)
        semf_train, _ = semf_fit_predict(train, train)
        result: dict = {"seed": seed, "train": len(train), "test": len(test), "semf_coefficients_kev": coef.tolist(),
                        "fields": {}}
        if kbf is not None:
            result.update({"kbformer_fit_seconds": kbf["fit_seconds"], "kbformer_training": kbf["history"],
                           "kbformer_steps_per_second": kbf["history"]["steps_run"] / max(kbf["fit_seconds"], 1e-9),
                           "kbformer_curve": kbf["curve"]})
        for field in [f for f in FIELDS if f in fields]:
            rows = test[field].notna().to_numpy()
            truth = test.loc[rows, field].to_numpy(float)
            trees = run_trees(train, test, field, seed, args.trials, args.tree_iterations)
            entry = {"n_test": int(rows.sum()),
                     "constant": rms(np.full(rows.sum(), train[field].mean()), truth),
                     "trees": rms(trees["pred"][rows], truth), "trees_evaluator": trees["evaluator"]}
            if kbf is not None:
                entry["kbformer"] = rms(kbf["preds"][field][1], truth)
            if field == TARGET:
                entry["semf"] = rms(semf_test[rows], truth)
                resid = run_trees(train, test, field, seed, args.trials, args.tree_iterations, offset_train=semf_train, offset_test=semf_test)
                entry["trees_on_semf_residual"] = rms(resid["pred"][rows], truth)
                a_test = (test["Z"] + test["N"]).to_numpy(float)[rows]
                if kbf is not None:
                    entry["kbformer_per_nucleon"] = rms(kbf["preds"][field][1] / a_test, truth / a_test)
                if ws4 is not None:  # WS4 on the held-out nuclides it covers (all but a few light ones)
                    w = ws4_binding(test, args.data)[rows]
                    ok = np.isfinite(w)
                    entry["ws4"] = rms(w[ok], truth[ok])
                    entry["ws4_n"] = int(ok.sum())
                    if kbf is not None:
                        entry["kbformer_on_ws4_nuclides"] = rms(kbf["preds"][field][1][ok], truth[ok])
            result["fields"][field] = entry
            print(f"seed {seed} {field}: " + ", ".join(f"{k} {v:.4g}" for k, v in entry.items()
                                                      if isinstance(v, float)), flush=True)
        per_seed.append(result)
        _write(args, per_seed, scale, time.perf_counter() - started)
    return 0


def _write(args: argparse.Namespace, per_seed: list[dict], scale: dict, seconds: float) -> None:
    def stat(field: str, key: str) -> tuple[float, float]:
        values = [r["fields"][field][key] for r in per_seed if key in r["fields"][field]]
        if not values:
            return float("nan"), float("nan")
        return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    keys = ["constant", "semf", "trees", "trees_on_semf_residual", "kbformer"]
    has_ws4 = all("ws4" in r["fields"][TARGET] for r in per_seed)
    eb = {k: stat(TARGET, k) for k in keys + (["ws4", "kbformer_on_ws4_nuclides"] if has_ws4 else [])}
    with_kbformer = [r for r in per_seed if "kbformer_training" in r]
    best = eb["kbformer"][0]
    targets = {"kbformer_le_370_kev": "met" if best <= 370 else "missed",
               "kbformer_30pct_better_than_trees": "met" if best <= 0.7 * eb["trees"][0] else "missed",
               "kbformer_vs_trees_improvement": 1 - best / eb["trees"][0]}
    if not np.isfinite(best):
        targets = {"kbformer_le_370_kev": "not run", "kbformer_30pct_better_than_trees": "not run"}
    evaluator = per_seed[0]["fields"][TARGET]["trees_evaluator"]
    main_rows = [["constant (training mean)", *eb["constant"]],
                 ["SEMF, 5 coefficients (least squares)", *eb["semf"]],
                 [f"trees ({evaluator}), same fields", *eb["trees"]],
                 [f"trees ({evaluator}) on the SEMF residual", *eb["trees_on_semf_residual"]],
                 *([["KBFormer (K = 50, mixture mean)", *eb["kbformer"]]] if np.isfinite(best) else [])]
    if has_ws4:
        main_rows.append(["WS4 mass model (theory table, not fitted here)", *eb["ws4"]])
    curve_rows = [[r["seed"], c["step"], c["seconds"], c["binding_rms_kev"]] for r in per_seed
                  for c in r.get("kbformer_curve", [])]
    training_rows = [[r["seed"], r["kbformer_training"]["steps_run"], r["kbformer_training"]["best_step"],
                      r["kbformer_fit_seconds"], r["kbformer_steps_per_second"],
                      r["kbformer_training"].get("final_lr", float("nan")),
                      "time" if r["kbformer_training"]["stopped_by_time"] else
                      ("early stop" if r["kbformer_training"]["stopped_early"] else "all steps")]
                     for r in with_kbformer]
    field_rows = []
    for field in [f for f in FIELDS if all(f in r["fields"] for r in per_seed)]:
        row = [field]
        for key in ("constant", "trees", "kbformer"):
            value = stat(field, key)[0]
            row += [value if np.isfinite(value) else "not run"]
        field_rows.append(row)
    payload = {
        "experiment": "nuclear_kb", "seeds": [r["seed"] for r in per_seed],
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "metrics": {"binding_rms_kev": eb, "targets": targets, "scale": scale, "per_seed": per_seed,
                    "seconds": seconds, "machine": platform.machine(),
                    "date": datetime.now(UTC).strftime("%Y-%m-%d")},
        "tables": [
            {"name": "binding", "caption": "held-out binding energy RMS (keV), mask-one-property protocol, mean and std over seeds",
             "columns": ["model", "RMS (keV)", "std (keV)"], "rows": main_rows,
             "formats": {"RMS (keV)": ".0f", "std (keV)": ".0f"}},
            {"name": "fields", "caption": "held-out RMS per masked field (field units), mean over seeds",
             "columns": ["field", "constant", "trees", "KBFormer"], "rows": field_rows,
             "formats": {"constant": ".4g", "trees": ".4g", "KBFormer": ".4g"}},
            *([] if not with_kbformer else [{"name": "training", "caption": "KBFormer fits: steps run, kept step, wall time, final learning rate, what ended the fit",
             "columns": ["seed", "steps run", "kept step", "seconds", "steps/s", "final lr", "ended by"],
             "rows": training_rows, "formats": {"seconds": ".0f", "steps/s": ".1f", "final lr": ".2g"}}]),
        ],
    }
    if curve_rows:
        payload["tables"].append({"name": "curve", "caption": "learning curve: binding RMS (keV) of the live weights on the held-out nuclides",
                                  "columns": ["seed", "step", "seconds", "binding RMS (keV)"], "rows": curve_rows,
                                  "formats": {"seconds": ".0f", "binding RMS (keV)": ".0f"}})
    tmp = args.out / "record.json.tmp"
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, args.out / "record.json")


if __name__ == "__main__":
    sys.exit(main())
