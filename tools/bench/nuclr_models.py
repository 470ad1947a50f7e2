"""Benchmark: NuCLR on the evaluation protocols, several seeds, beside the fitted SEMF, the
nucleardatapy theory tables and WS4 / WS4+RBF (read from the shared data folder).

Usage (CPU, modest):  uv run python tools/bench/nuclr_models.py --epochs 100 --seeds 0,1 --workers 2
Record:               uv run python tools/records.py run --record packages/nuclr/results/kfold.json \
                          --payload results/nuclr/record.json -- uv run python tools/bench/nuclr_models.py ...

Steps (each written to the payload as soon as it finishes; steps past ``--time-budget`` are skipped
and listed):

1. validation: heads vs surface mode on a nucleus-level, mass-closed 80/20 split of the
   NUBASE2016-measured nuclei (no AME2020-new nucleus, no test row of any protocol is used to
   choose); the mode with the lower mean normalised RMS over the mass tasks is the default.
2. mass-closed k-fold, both modes, every seed, all folds (models of the chosen mode saved for
   ``nuclr table``).
3. AME2016 -> 2020 (68 scored nuclei), both modes and the residual-to-WS3 variant, every seed.
4. nucleus-leaky-derived (0.1's split, leaks) and random rows (leaks), first seed only: comparisons.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from nuclr._data import ground_states
from nuclr._dataset import build_rows
from nuclr._evaluate import closure_mask, evaluate, metrics_markdown, per_task_rms
from nuclr._evaluate import format_rms_entry as _cell
from nuclr._physics import TheoryTable
from nuclr._train import TrainConfig, train

REPO = Path(__file__).resolve().parents[2]
SHOW = ["binding", "s_n", "s_p", "s_2n", "q_alpha", "q_beta_minus", "q_ec", "charge_radius"]


def read_ws4(path: Path) -> dict[str, TheoryTable]:
    """WS4.txt: A, Z, WS4, WS4+RBF mass excess (MeV)."""
    arr = []
    for line in path.read_text(encoding="latin-1").splitlines():
        f = line.split()
        if len(f) >= 4 and f[0].isdigit():
            arr.append([float(x) for x in f[:4]])
    if not arr:
        raise ValueError(f"{path}: no data rows (expected A Z WS4 WS4+RBF)")
    a = np.array(arr)
    z = a[:, 1].astype(int)
    n = a[:, 0].astype(int) - z
    nan = np.full(z.size, np.nan)
    return {"WS4": TheoryTable("WS4", z, n, a[:, 2] * 1000.0, nan),
            "WS4+RBF": TheoryTable("WS4+RBF", z, n, a[:, 3] * 1000.0, nan)}


def _val_one(train_rows, val_rows, cfg: TrainConfig, seed: int, device: str) -> dict:
    torch.set_num_threads(1)
    model = train(train_rows, cfg, seed=seed, device=device)
    pred = model.predict_rows(val_rows.z, val_rows.n, val_rows.task)
    out = per_task_rms(val_rows, pred)
    # consistency: each reported S/Q value vs the same value from the reported binding energies
    via = model.predict_rows(val_rows.z, val_rows.n, val_rows.task, via="surface")
    gaps = {}
    for k, t in enumerate(val_rows.tasks):
        sel = (val_rows.task == k) & np.isfinite(pred) & np.isfinite(via)
        if t != "binding" and t != "charge_radius" and sel.any():
            gaps[t] = float(np.sqrt(np.mean((pred[sel] - via[sel]) ** 2)))
    out["_consistency_kev"] = gaps
    return out


VAL_MODES = ("heads", "surface", "consistency:W")


def check_mode(mode: str) -> str:
    """heads, surface or consistency:W (W > 0, the consistency-loss weight); the canonical name."""
    if mode in ("heads", "surface"):
        return mode
    if mode.startswith("consistency:"):
        try:
            w = float(mode.split(":", 1)[1])
        except ValueError:
            w = -1.0
        if w > 0 and np.isfinite(w):
            return f"consistency:{w:g}"
    raise ValueError(f"validation mode must be heads, surface or consistency:W (W > 0), got {mode!r}")


def mode_config(base: TrainConfig, mode: str) -> TrainConfig:
    """heads / surface, or consistency:W = heads trained with a loss (weight W) tying each S/Q head to
    the same value computed from the binding head."""
    if mode.startswith("consistency:"):
        return replace(base, observables="heads", consistency_weight=float(mode.split(":", 1)[1]))
    return replace(base, observables=mode)


def mode_label(mode: str) -> str:
    if mode.startswith("consistency:"):
        return f"heads + consistency loss (weight {mode.split(':', 1)[1]})"
    return mode


def validation_split(base: TrainConfig):
    """(train, validation) rows: NUBASE2016-measured nuclei, 20 % held out, mass-closed, seed 1234."""
    rows = build_rows(ground_states(2016), base.tasks)
    rng = np.random.default_rng(1234)
    nuclei = np.unique(rows.nucleus_id)
    val = set(rng.choice(nuclei, nuclei.size // 5, replace=False).tolist())
    is_val = np.array([i in val for i in rows.nucleus_id.tolist()])
    held = {(int(a), int(b)) for a, b in zip(rows.z[is_val], rows.n[is_val])}
    tr = rows.subset(~is_val & closure_mask(rows, held))
    va = rows.subset(is_val)
    zs, ns = set(tr.z.tolist()), set(tr.n.tolist())
    va = va.subset(np.array([(a in zs) and (b in ns) for a, b in zip(va.z.tolist(), va.n.tolist())], bool))
    return tr, va


def validation(base: TrainConfig, device: str, seed: int, workers: int, modes=("heads", "surface"),
               previous: dict | None = None) -> dict:
    """The observable modes on a mass-closed nucleus-level 80/20 split of NUBASE2016-measured nuclei.

    ``previous`` (a validation result) keeps the modes it already has; only the others are trained.
    The default is heads or surface (the issue's choice: surface if it is not worse); the
    consistency-loss variant is reported beside them.
    """
    tr, va = validation_split(base)
    res = dict(previous["rms"]) if previous else {}
    todo = [m for m in modes if m not in res]
    cfgs = [mode_config(base, m) for m in todo]
    if workers > 1 and len(todo) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=mp.get_context("spawn")) as pool:
            outs = list(pool.map(_val_one, [tr] * len(todo), [va] * len(todo), cfgs, [seed] * len(todo),
                                 [device] * len(todo)))
    else:
        outs = [_val_one(tr, va, c, seed, device) for c in cfgs]
    res.update(zip(todo, outs))
    mass_tasks = [t for t in base.tasks if t != "charge_radius"]
    ref = res["heads"]
    score = {m: float(np.mean([res[m][t]["rms"] / ref[t]["rms"] for t in mass_tasks])) for m in res}
    chosen = "surface" if score["surface"] <= score["heads"] else "heads"
    out = {"split": "NUBASE2016-measured nuclei, 20% held out (mass-closed), seed 1234", "rms": res,
           "mean_relative_rms_vs_heads": score, "chosen": chosen}
    return out


def protocol_table(name: str, caption: str, runs: list[tuple[str, dict]], baselines_from: dict,
                   baseline_names: list[str]) -> dict:
    """Rows: each model run, then the baselines (scored on the rows of ``baselines_from``), then n."""
    tasks = [t for t in SHOW if t in baselines_from["model"]]
    rows = []
    for label, res in runs:
        rows.append([label, *(_cell(res["model"].get(t)) for t in tasks)])
        if res is not baselines_from:
            rows.append([f"  rows scored ({label})", *(str(res["model"].get(t, {}).get("n", "–")) for t in tasks)])
    for b in baseline_names:
        if b in baselines_from["baselines"]:
            rows.append([b, *(_cell(baselines_from["baselines"][b].get(t)) for t in tasks)])
    rows.append(["rows scored (model and baselines above)", *(str(baselines_from["model"][t]["n"]) for t in tasks)])
    return {"name": name, "caption": caption, "columns": ["model", *tasks], "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="shared data folder (WS4)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "nuclr", help="output folder")
    parser.add_argument("--payload", type=Path, default=None, help="payload JSON for tools/records.py (default OUT/record.json)")
    parser.add_argument("--device", default="cpu", help="cpu|cuda")
    parser.add_argument("--seeds", default="0,1", help="comma-separated training seeds")
    parser.add_argument("--k", type=int, default=5, help="folds of the k-fold protocols")
    parser.add_argument("--folds", type=int, default=None, help="run only the first FOLDS folds")
    parser.add_argument("--epochs", type=int, default=None, help="override TrainConfig.epochs")
    parser.add_argument("--width", type=int, default=None, help="override TrainConfig.width")
    parser.add_argument("--time-budget", type=float, default=3600.0, help="skip steps once this many seconds have passed")
    parser.add_argument("--residual-table", default="WS3", help="theory table of the residual variant")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="parallel training processes")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates of the intervals")
    parser.add_argument("--resume", action="store_true",
                        help="keep the validation and the finished runs of OUT/bench_models.json; run only the rest")
    parser.add_argument("--not-run-reason", default=None, help="why planned runs have no result (for the record)")
    parser.add_argument("--only", default=None, help="semicolon-separated run names (as in the plan) to run")
    parser.add_argument("--val-modes", default="heads,surface",
                        help="observable modes compared on validation: heads, surface, consistency:W (heads + a "
                             "consistency loss of weight W), comma-separated")
    parser.add_argument("--validation-from", type=Path, default=None,
                        help="with --resume: take the validation result from this bench_models.json (a validation "
                             "run made in another folder)")
    parser.add_argument("--extra-modes", default="",
                        help="comma-separated validation modes (e.g. consistency:0.1) also run on mass-closed and "
                             "AME2016->2020, every seed")
    parser.add_argument("--runs-from", type=Path, action="append", default=[],
                        help="with --resume: also take the finished runs of this bench_models.json (runs made in "
                             "another folder); repeatable")
    parser.add_argument("--revalidate", default="",
                        help="with --resume: comma-separated validation modes to train again")
    parser.add_argument("--run-seeds", default=None,
                        help="NAME=SEEDS;... override the seeds of named runs (e.g. 'mass-closed, surface=0')")
    args = parser.parse_args(argv)
    try:
        seeds = tuple(int(s) for s in args.seeds.split(","))
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    payload_path = args.payload or args.out / "record.json"
    ws4_path = args.data / "nuclear" / "ws4" / "WS4.txt"
    if not ws4_path.exists():
        parser.error(f"missing {ws4_path}; pass --data pointing at the shared data folder")
    extra = read_ws4(ws4_path)
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"{platform.processor() or 'CPU'} (2-core shared)"
    base = TrainConfig()
    over = {k: v for k, v in (("epochs", args.epochs), ("width", args.width)) if v is not None}
    base = replace(base, **over)
    report: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "device": device_name,
                    "seeds": list(seeds), "config": base.to_dict(), "runs": {}, "skipped": []}

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] {msg}", flush=True)

    def save() -> None:
        tables = []
        runs = report["runs"]
        chosen = report.get("validation", {}).get("chosen", "surface")
        other = "heads" if chosen == "surface" else "surface"
        bnames = ["SEMF (fitted)", "FRDM1995", "DZ1995", "HFB26", "WS3", "BSkG3", "WS4", "WS4+RBF"]
        extra_modes = sorted({name.split(", ", 1)[1] for name in runs if ", consistency:" in name})
        shown = (chosen, other, *extra_modes)

        def label(m: str) -> str:
            return f"NuCLR, {mode_label(m)}" + (" (default)" if m == chosen else "")

        mc = [(label(m), runs[f"mass-closed, {m}"]) for m in shown if f"mass-closed, {m}" in runs]
        if mc:
            r0 = mc[0][1]
            tables.append(protocol_table(
                "mass_closed",
                f"Mass-closed nucleus-level {r0['k']}-fold ({r0['folds_run']} folds run, seeds {r0['seeds']}): RMS "
                f"(keV; radius fm), mean over seeds [95% bootstrap interval over nuclei]; † = fitted to data containing "
                f"the test nuclei; dropped nuclei (Z or N never trained): {r0['dropped_nuclei']}", mc, r0, bnames))
        am = [(label(m), runs[f"ame2016-to-2020, {m}"]) for m in shown if f"ame2016-to-2020, {m}" in runs]
        res_key = f"ame2016-to-2020, residual to {args.residual_table}"
        if res_key in runs:
            am.append((f"NuCLR residual to {args.residual_table}, {chosen}", runs[res_key]))
        if am:
            r0 = am[0][1]
            tables.append(protocol_table(
                "ame2016_to_2020",
                f"AME2016 -> 2020: trained on NUBASE2016-measured nuclei, tested on the {r0['n_test_nuclei']} nuclei "
                f"first measured in 2020 (of {r0['folds'][0]['n_new_nuclei']} new; dropped {r0['dropped_nuclei']}); "
                f"seeds {r0['seeds']}; same rows for every column", am, r0, bnames))
            # like-with-like headline row
            if res_key in runs:
                rr = runs[res_key]
                entries = [rr["model"]["binding"], *(rr["baselines"][b]["binding"] for b in
                                                      ("WS4", "WS4+RBF", args.residual_table))]
                tables.append({"name": "headline",
                               "caption": "Binding RMS (keV) [95% CI] on the AME2016 -> 2020 nuclei, every column on "
                                          "the same nuclei (none of these tables was fitted to AME2020)",
                               "columns": ["nuclei", f"NuCLR residual to {args.residual_table}", "WS4", "WS4+RBF",
                                           args.residual_table],
                               "rows": [[entries[0]["n"], *(_cell(e) for e in entries)]]})
        lk = [(name, runs[name]) for name in ("nucleus-leaky-derived, " + chosen, "random, " + chosen) if name in runs]
        if lk:
            rows = []
            for label, res in lk:
                rows.append([label + " (LEAKS)", *(_cell(res["model"].get(t)) for t in SHOW if t in res["model"])])
                rows.append(["  WS3, same rows", *(_cell(res["baselines"]["WS3"].get(t)) for t in SHOW if t in res["model"])])
            tables.append({"name": "leaky", "caption": "Leaky protocols, for comparison with the papers (first seed)",
                           "columns": ["protocol", *[t for t in SHOW if t in lk[0][1]["model"]]], "rows": rows})
        cons_cols = [(f"{mode_label(m).replace('consistency loss', 'cons.')}, {plabel}", runs[f"{proto}, {m}"])
                     for proto, plabel in (("mass-closed", "mass-closed"), ("ame2016-to-2020", "AME2016->2020"))
                     for m in ("heads", "surface", *extra_modes) if f"{proto}, {m}" in runs]
        if cons_cols:
            def _cons(res):  # 0.2 records of heads runs have only heads_vs_surface_rms (the same number)
                return res.get("consistency_rms") or (res.get("heads_vs_surface_rms") if res["observables"] == "heads"
                                                      else {})
            obs = [t for t in _cons(cons_cols[0][1])]
            tables.append({"name": "consistency",
                           "caption": "Consistency, RMS (keV) between each S/Q value a model reports and the same value "
                                      "computed from the binding energies it reports (S_n vs B(Z,N) - B(Z,N-1), ...), "
                                      "on the test rows, mean over seeds; surface mode reads S/Q off its mass surface",
                           "columns": ["observable", *(label for label, _ in cons_cols)],
                           "rows": [[t, *(_cons(res).get(t, float("nan")) for _, res in cons_cols)] for t in obs],
                           "formats": {label: ".0f" for label, _ in cons_cols}})
        if "validation" in report:
            v = report["validation"]
            vmodes = ["heads", "surface", *sorted((m for m in v["rms"] if m not in ("heads", "surface")),
                                                  key=lambda m: -float(m.split(":", 1)[1]))]
            tasks_v = [t for t in SHOW if t in v["rms"]["heads"]]

            def _gap(m):
                g = v["rms"][m].get("_consistency_kev")
                return float(np.mean(list(g.values()))) if g else "–"

            tables.append({"name": "validation",
                           "caption": v["split"] + "; RMS (keV; radius fm); chosen default (heads or surface, the "
                                      "lower mean RMS / heads over the mass tasks): " + v["chosen"] + "; last column: "
                                      "mean over S/Q of the reported-vs-mass-surface RMS (surface: 0 by construction, "
                                      "not re-measured here)",
                           "columns": ["mode", *tasks_v, "mean RMS / heads", "S/Q vs own mass surface (keV)"],
                           "rows": [[mode_label(m), *(v["rms"][m][t]["rms"] for t in tasks_v),
                                     v["mean_relative_rms_vs_heads"][m], _gap(m)] for m in vmodes],
                           "formats": {t: ".0f" for t in SHOW if t != "charge_radius"} | {
                               "charge_radius": ".4f", "mean RMS / heads": ".3f", "S/Q vs own mass surface (keV)": ".0f"}})
        metrics = {name: {"model": res["model"], "baselines": res["baselines"], "dropped_nuclei": res["dropped_nuclei"],
                          "seeds": res["seeds"], "folds_run": res["folds_run"], "seconds": res.get("seconds")}
                   for name, res in runs.items()}
        metrics["validation"] = report.get("validation")
        metrics["skipped"] = report["skipped"]
        metrics["not_run"] = report.get("not_run", [])
        if report.get("not_run"):
            tables.append({"name": "not_run", "caption": "Planned runs without a result in this record",
                           "columns": ["run", "why"], "rows": [[name, report.get("not_run_reason", "skipped")]
                                                               for name in report["not_run"]]})
        payload = {"experiment": "nuclr_models", "seeds": list(seeds),
                   "config": {**base.to_dict(), "k": args.k, "folds": args.folds, "device": device_name,
                              "workers": args.workers, "n_boot": args.n_boot},
                   "metrics": metrics, "tables": tables}
        for path, obj in ((payload_path, payload), (args.out / "bench_models.json", report)):
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(obj, indent=2))
            os.replace(tmp, path)
        md = [f"Date {report['date']}, device: {report['device']}", ""]
        for name, res in runs.items():
            md += [f"### {name}", "", f"{res['seconds']:.0f} s", "", metrics_markdown(res), ""]
        (args.out / "bench_models.md").write_text("\n".join(md) + "\n")

    try:
        val_modes = tuple(check_mode(m.strip()) for m in args.val_modes.split(",") if m.strip())
    except ValueError as exc:
        parser.error(str(exc))
    if not {"heads", "surface"} <= set(val_modes):
        parser.error(f"--val-modes must include heads and surface; got {args.val_modes!r}")
    revalidate = {m.strip() for m in args.revalidate.split(",") if m.strip()}
    previous = args.out / "bench_models.json"
    if args.resume and previous.exists():
        old = json.loads(previous.read_text())
        report["validation"] = old["validation"]
        report["runs"] = old["runs"]
        report["date"] = old["date"] + " (resumed " + report["date"] + ")"
        for other in args.runs_from:
            for name, res in json.loads(other.read_text())["runs"].items():
                report["runs"].setdefault(name, res)
            report.setdefault("runs_from", []).append(str(other))
        if args.validation_from is not None:
            report["validation"] = json.loads(args.validation_from.read_text())["validation"]
            report["validation_from"] = str(args.validation_from)
        vv = report["validation"]
        if "consistency" in vv["rms"]:  # first version of this script: one weight, stored beside
            w = f"consistency:{vv.pop('consistency_weight', 1.0):g}"
            vv["rms"][w] = vv["rms"].pop("consistency")
            vv["mean_relative_rms_vs_heads"][w] = vv["mean_relative_rms_vs_heads"].pop("consistency")
            vv["retrained"] = [w if m == "consistency" else m for m in vv.get("retrained", [])]
        v = report["validation"]
        log(f"resumed: validation chose {v['chosen']}; finished runs {list(report['runs'])}")
        if revalidate or set(val_modes) - set(v["rms"]):
            kept = {**v, "rms": {m: r for m, r in v["rms"].items() if m not in revalidate}}
            new_modes = revalidate | (set(val_modes) - set(v["rms"]))
            v = validation(base, args.device, seeds[0], args.workers, modes=tuple(dict.fromkeys((*v["rms"], *val_modes))),
                           previous=kept)
            v["retrained"] = sorted(set(vv.get("retrained", [])) | new_modes)
            if v["chosen"] != old["validation"]["chosen"]:
                log(f"validation now chooses {v['chosen']} (was {old['validation']['chosen']}): finished runs "
                    "were made with the old default")
            report["validation"] = v
            log(f"validation: {v['mean_relative_rms_vs_heads']} -> default {v['chosen']}")
    else:
        v = validation(base, args.device, seeds[0], args.workers, modes=val_modes)
        report["validation"] = v
        log(f"validation: {v['mean_relative_rms_vs_heads']} -> default {v['chosen']}")
    save()
    only = None if args.only is None else {x.strip() for x in args.only.split(";")}
    seed_over = {}
    for item in (args.run_seeds or "").split(";"):
        if item.strip():
            key, val = item.rsplit("=", 1)
            seed_over[key.strip()] = tuple(int(x) for x in val.split(","))
    chosen = v["chosen"]
    other = "heads" if chosen == "surface" else "surface"
    plan = [
        (f"mass-closed, {chosen}", "mass-closed", replace(base, observables=chosen), seeds, True),
        (f"ame2016-to-2020, {chosen}", "ame2016-to-2020", replace(base, observables=chosen), seeds, False),
        (f"ame2016-to-2020, residual to {args.residual_table}", "ame2016-to-2020",
         replace(base, observables=chosen, residual_table=args.residual_table), seeds, False),
        (f"mass-closed, {other}", "mass-closed", replace(base, observables=other), seeds, False),
        (f"ame2016-to-2020, {other}", "ame2016-to-2020", replace(base, observables=other), seeds, False),
        *((f"{proto}, {m}", proto, mode_config(base, m), seeds, False)
          for m in (check_mode(x.strip()) for x in args.extra_modes.split(",") if x.strip())
          for proto in ("mass-closed", "ame2016-to-2020")),
        (f"nucleus-leaky-derived, {chosen}", "nucleus-leaky-derived", replace(base, observables=chosen), seeds[:1], False),
        (f"random, {chosen}", "random", replace(base, observables=chosen), seeds[:1], False),
    ]
    per_model: float | None = None
    for name, protocol, cfg, run_seeds, save_models in plan:
        if name in report["runs"] or (only is not None and name not in only):
            continue
        run_seeds = seed_over.get(name, run_seeds)
        n_models = len(run_seeds) * (1 if protocol == "ame2016-to-2020" else (args.folds or args.k))
        elapsed = time.perf_counter() - start
        if per_model is not None and elapsed + per_model * n_models / max(1, args.workers) > args.time_budget:
            report["skipped"].append(name)
            log(f"skip {name}")
            save()
            continue
        t0 = time.perf_counter()
        out = args.out / name.replace(", ", "_").replace(" ", "_")
        res = evaluate(protocol, cfg, k=args.k, folds_to_run=args.folds, seed=0, seeds=run_seeds, device=args.device,
                       extra_tables=extra, workers=args.workers, out_dir=out, save_models=save_models,
                       n_boot=args.n_boot)
        res.pop("_models")
        res["seconds"] = time.perf_counter() - t0
        per_model = max(per_model or 0.0, res["seconds"] * max(1, args.workers) / (len(run_seeds) * res["folds_run"]))
        report["runs"][name] = res
        b = res["model"]["binding"]
        log(f"{name}: binding {b['rms']:.0f} keV [{b['ci95'][0]:.0f}, {b['ci95'][1]:.0f}] on {b['n']} nuclei "
            f"({res['seconds']:.0f} s); dropped nuclei {res['dropped_nuclei']}")
        save()
    report["not_run"] = [name for name, *_ in plan if name not in report["runs"]]
    if args.not_run_reason:
        report["not_run_reason"] = args.not_run_reason
    save()
    print((args.out / "bench_models.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
